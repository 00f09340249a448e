//! Integrity checks through the log: the leader appends a state digest check entry
//! every `--digest-check-entries` entries; every member records its digest when it
//! applies one and attaches its latest check to its AppendEntries (leader) or
//! AppendEntriesResponse (follower) — no extra message. Each side compares what it
//! receives with its own digest at that index:
//!
//! - a follower whose digest differs from the leader's marks itself corrupt: it stops
//!   serving reads and its `status` shows `alarm: CORRUPT n<self> at index <i>`. It
//!   cannot tell alone whether it or the leader diverged, so the mark is lifted if a
//!   leader's later check agrees with it (after a leader in the minority withdrew and
//!   a member of the majority was elected);
//! - a leader that sees a follower differ raises `alarm: CORRUPT n<id> at index <i>`;
//!   if a majority of the voters differ from it, the leader is the odd one out: it
//!   marks itself corrupt and withdraws (steps down and never campaigns again).
//!
//! Everything here runs under the core lock (it is part of `CoreState`); what must be
//! logged is queued in `unlogged`, which `Shared::dispatch` moves into the deferred
//! log lines, written by whichever thread releases the lock next.

use std::collections::{BTreeMap, BTreeSet};

use super::core_state::CoreState;
use super::shared::Shared;
use crate::kv::{encode_check, CommandResult};
use crate::raft::{DigestCheck, Index, NodeId, Role};

/// Default of `--digest-check-entries`.
pub const DEFAULT_DIGEST_CHECK_ENTRIES: u64 = 1000;

/// Own digests kept for comparison: checks older than the newest this many are
/// forgotten (a report about one of them is ignored).
const MAX_LEDGER: usize = 64;

/// Bound on queued log lines (more are counted, not kept).
const MAX_UNLOGGED: usize = 16;

/// The integrity state of one member, behind the core lock.
#[derive(Debug, Default)]
pub struct Integrity {
    /// Own digest at recent check indexes.
    ledger: BTreeMap<Index, u64>,
    /// Leader: the members found to differ from this one, per check index.
    differs: BTreeMap<Index, BTreeSet<NodeId>>,
    /// Leader: the last log index at which this member proposed a check.
    last_proposed: Index,
    /// The divergence alarm, as `status` shows it (`CORRUPT n<id> at index <i>`).
    pub alarm: Option<String>,
    /// True while this member's state is believed divergent: it serves no reads.
    pub self_corrupt: bool,
    /// Follower: the check index at which its digest differed from its leader's.
    differed_at: Option<Index>,
    /// Set when a majority disagreed with this member as leader: permanent.
    withdrawn: bool,
    /// Lines to log once the core lock is released (at most [`MAX_UNLOGGED`]).
    pub unlogged: Vec<String>,
}

impl Integrity {
    /// Records this member's digest after applying the check entry at `index`.
    pub fn record(&mut self, index: Index, digest: u64) {
        self.ledger.insert(index, digest);
        while self.ledger.len() > MAX_LEDGER {
            self.ledger.pop_first();
        }
        while self.differs.len() > MAX_LEDGER {
            self.differs.pop_first();
        }
    }

    /// Leader: true if a check is due, given the log's last index and the interval
    /// (0: never); the caller then proposes one.
    pub fn check_due(&mut self, last_index: Index, every: u64) -> bool {
        if every == 0 || last_index < self.last_proposed.saturating_add(every) {
            return false;
        }
        self.last_proposed = last_index + 1;
        true
    }

    fn say(&mut self, line: String) {
        if self.unlogged.len() < MAX_UNLOGGED {
            self.unlogged.push(line);
        }
    }

    fn raise(&mut self, member: NodeId, index: Index) {
        if self.alarm.is_none() {
            self.alarm = Some(format!("CORRUPT n{member} at index {index}"));
        }
    }
}

/// Compares the checks peers attached to the messages stepped since the last call with
/// this member's own digests, raising alarms (see the module documentation).
pub fn compare(core: &mut CoreState, me: NodeId, voters: usize) {
    let reports = core.raft.take_digest_reports();
    for (from, check) in reports {
        compare_one(core, me, voters, from, check);
    }
}

fn compare_one(core: &mut CoreState, me: NodeId, voters: usize, from: NodeId, check: DigestCheck) {
    let integrity = &mut core.integrity;
    let Some(&own) = integrity.ledger.get(&check.index) else {
        return; // not applied here yet, or forgotten
    };
    let index = check.index;
    let follower = core.raft.role() != Role::Leader;
    if own == check.digest {
        if follower && !integrity.withdrawn && integrity.differed_at.is_some_and(|i| i < index) {
            integrity.self_corrupt = false;
            integrity.differed_at = None;
            integrity.alarm = None;
            integrity.say(format!(
                "the leader n{from}'s state digest at index {index} agrees with this \
                 member's: alarm cleared"
            ));
        }
        return;
    }
    if follower {
        if !integrity.self_corrupt {
            integrity.self_corrupt = true;
            integrity.differed_at = Some(index);
            integrity.raise(me, index);
            integrity.say(format!(
                "CORRUPT: this member's state digest at index {index} is {own:#018x}, the \
                 leader n{from}'s is {:#018x}: this member's data diverged. It stops serving \
                 reads. Replace it: `raftkv client member remove {me}`, then add a node \
                 with an empty data directory under a new id (`member add ID ADDR \
                 --learner`, then `member promote ID`); see README, Alarms",
                check.digest
            ));
        }
        return;
    }
    let differing = integrity.differs.entry(index).or_default();
    if !differing.insert(from) {
        return;
    }
    let count = differing.len();
    integrity.raise(from, index);
    integrity.say(format!(
        "CORRUPT: member n{from}'s state digest at index {index} is {:#018x}, this leader's \
         is {own:#018x}: n{from}'s data diverged. Remove n{from} from the cluster \
         (`raftkv client member remove {from}`) and add a node with an empty data directory \
         under a new id in its place; see README, Alarms",
        check.digest
    ));
    if count > voters / 2 && !integrity.withdrawn {
        integrity.self_corrupt = true;
        integrity.withdrawn = true;
        integrity.alarm = Some(format!("CORRUPT n{me} at index {index}"));
        integrity.say(format!(
            "CORRUPT: {count} of {voters} members disagree with this leader's state digest \
             at index {index}: this leader's data diverged; stepping down and serving no \
             reads. Remove this member (`raftkv client member remove {me}`) and add a node \
             with an empty data directory under a new id in its place; see README, Alarms"
        ));
        core.raft.withdraw();
    }
}

/// After the applier applied a batch (core lock held): records the digests of the
/// check entries in it, attaches the latest to this member's replication messages,
/// and, on the leader, proposes the next check once it is due. The caller dispatches.
pub fn after_apply(shared: &Shared, core: &mut CoreState, results: &[super::applier::Applied]) {
    for (index, _, result) in results {
        if let Some(Ok(CommandResult::Checked { digest })) = result {
            core.integrity.record(*index, *digest);
            core.raft.set_digest_check(DigestCheck {
                index: *index,
                digest: *digest,
            });
        }
    }
    let last = core.raft.last_position().index;
    if core.raft.role() == Role::Leader
        && core
            .integrity
            .check_due(last, shared.config.digest_check_entries)
    {
        // A refusal (no longer leader) is fine: the next leader proposes its own.
        let _ = core.raft.propose(encode_check(), shared.now_ms());
    }
}
