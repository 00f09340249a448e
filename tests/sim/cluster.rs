//! The driver: a discrete-event loop that moves messages, finishes writes and ticks
//! members in simulated time, plus the operations scenarios use (crash, restart,
//! propose, read, partition).
//!
//! Each input to a member (a message, a tick, a finished write, a proposal, a read)
//! is one step; after each, `step.rs` drains the member's outputs and checks what the
//! step changed.

use std::fmt;

use raftkv::raft::{
    Config, ForwardRefused, InjectedBug, LogPosition, MembershipChange, Message, MessageBody,
    NodeId, NotLeader, PersistBatch, Raft, Role,
};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::history::History;
use super::invariants::{check_send, Checker, Slot};
use super::member::Member;
use super::network::{Brief, NetFaults, Network};
use super::storage::DurableStore;
use super::trace::{HardStateBrief, Trace};

/// Most events one cluster may process; a run that needs more is livelocked.
pub const MAX_EVENTS: u64 = 20_000_000;

/// How a cluster is built.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// Number of members (ids 1..=members).
    pub members: usize,
    /// Network faults at the start.
    pub net: NetFaults,
    /// Shortest time a batch takes to become durable.
    pub write_min_ms: u64,
    /// Longest time (inclusive).
    pub write_max_ms: u64,
    /// Whether a crash may leave the batch being written partly on disk.
    pub torn_writes: bool,
    /// Whether batches queued behind a write share the next one.
    pub group_commit: bool,
    /// `Config::max_entries_per_append` of every member.
    pub max_entries_per_append: usize,
    /// `Config::max_inflight_appends` of every member.
    pub max_inflight_appends: usize,
    /// `Config::max_bytes_per_append` of every member.
    pub max_bytes_per_append: usize,
    /// Chance (per mille), each time a member applies entries, that it takes a
    /// snapshot and compacts its log (0: never).
    pub snapshot_per_mille: u32,
    /// `Config::max_snapshot_chunk_bytes` of every member.
    pub snapshot_chunk_bytes: usize,
    /// Entries a member keeps before each snapshot when it compacts (the node's
    /// `--snapshot-catchup-entries`; 0 keeps none).
    pub snapshot_catchup_entries: u64,
    /// `Config::pre_vote` of every member.
    pub pre_vote: bool,
    /// Members `1..=voters` bootstrap the cluster; the others start outside it, as
    /// `--join` members do, until a membership change adds them.
    pub voters: usize,
    /// Whether the fault injector also makes random membership changes.
    pub membership_changes: bool,
    /// A membership rule switched off, to show the checks catch its absence.
    pub injected_bug: Option<InjectedBug>,
}

impl ClusterOptions {
    /// A reliable network, fast disks and the default configuration.
    pub fn reliable(members: usize) -> ClusterOptions {
        let defaults = Config::new(1, vec![1]);
        ClusterOptions {
            members,
            net: NetFaults::RELIABLE,
            write_min_ms: 1,
            write_max_ms: 3,
            torn_writes: false,
            group_commit: true,
            max_entries_per_append: defaults.max_entries_per_append,
            max_inflight_appends: defaults.max_inflight_appends,
            max_bytes_per_append: defaults.max_bytes_per_append,
            snapshot_per_mille: 0,
            snapshot_chunk_bytes: defaults.max_snapshot_chunk_bytes,
            snapshot_catchup_entries: 0,
            pre_vote: defaults.pre_vote,
            voters: members,
            membership_changes: false,
            injected_bug: None,
        }
    }

    fn config(&self, id: NodeId) -> Config {
        let voters = if id as usize <= self.voters {
            (1..=self.voters as NodeId).collect()
        } else {
            Vec::new()
        };
        let mut config = Config::new(id, voters);
        config.injected_bug = self.injected_bug;
        config.max_entries_per_append = self.max_entries_per_append;
        config.max_inflight_appends = self.max_inflight_appends;
        config.max_bytes_per_append = self.max_bytes_per_append;
        config.max_snapshot_chunk_bytes = self.snapshot_chunk_bytes;
        config.pre_vote = self.pre_vote;
        config
    }
}

/// A simulated cluster and everything observed about it.
pub struct Cluster {
    /// Simulated time.
    pub now_ms: u64,
    /// The one source of randomness; everything derives from the seed through it.
    pub rng: SmallRng,
    /// Members; `members[i].id == i + 1`.
    pub members: Vec<Member>,
    /// The network.
    pub net: Network,
    /// Safety checks.
    pub checker: Checker,
    /// Client history.
    pub history: History,
    /// Recent events.
    pub trace: Trace,
    /// Failed `AppendEntries` delivered (how much backing up happened).
    pub appends_rejected: u64,
    /// Membership changes the leader accepted.
    pub changes_accepted: u64,
    /// Leadership transfers the leader accepted (`sim/transfer.rs`).
    pub transfers_accepted: u64,
    /// Events processed.
    pub events: u64,
    /// How the cluster was built.
    pub opts: ClusterOptions,
}

impl Cluster {
    /// A cluster whose members all start at time 0 with empty storage.
    pub fn new(opts: ClusterOptions, seed: u64) -> Cluster {
        assert!(
            opts.members >= 1 && opts.write_min_ms >= 1 && opts.write_min_ms <= opts.write_max_ms
        );
        let mut cluster = Cluster {
            now_ms: 0,
            rng: SmallRng::seed_from_u64(seed),
            members: (1..=opts.members as NodeId)
                .map(|id| Member::new(opts.config(id), opts.group_commit))
                .collect(),
            net: Network::new(opts.members, opts.net, seed),
            checker: Checker::new(opts.members),
            history: History::new(opts.members),
            trace: Trace::new(),
            appends_rejected: 0,
            changes_accepted: 0,
            transfers_accepted: 0,
            events: 0,
            opts,
        };
        for id in 1..=cluster.members.len() as NodeId {
            cluster.restart(id);
        }
        cluster
    }

    /// The member with id `id`.
    pub fn member(&self, id: NodeId) -> &Member {
        &self.members[id as usize - 1]
    }

    /// The running Raft of `id`; panics if it is down.
    pub fn raft(&self, id: NodeId) -> &Raft {
        match &self.member(id).raft {
            Some(raft) => raft,
            None => panic!("n{id} is down"),
        }
    }

    /// Ids of running members.
    pub fn up(&self) -> Vec<NodeId> {
        self.members
            .iter()
            .filter(|m| m.is_up())
            .map(|m| m.id)
            .collect()
    }

    /// Running members that believe they lead.
    pub fn leaders(&self) -> Vec<NodeId> {
        let leads = |m: &&Member| m.raft.as_ref().is_some_and(|r| r.role() == Role::Leader);
        self.members.iter().filter(leads).map(|m| m.id).collect()
    }

    /// The running leader with the highest term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.leaders()
            .into_iter()
            .max_by_key(|&id| self.raft(id).term())
    }

    /// Records an event in the trace.
    pub fn note(&mut self, event: fmt::Arguments<'_>) {
        self.trace.record(self.now_ms, event);
    }

    /// Processes every event due up to `deadline_ms`, then sets the clock to it.
    pub fn advance_to(&mut self, deadline_ms: u64) {
        while let Some(next) = self.next_event_ms().filter(|&t| t <= deadline_ms) {
            self.now_ms = self.now_ms.max(next);
            self.process_due();
        }
        self.now_ms = self.now_ms.max(deadline_ms);
    }

    /// Runs for `ms` of simulated time.
    pub fn run_for(&mut self, ms: u64) {
        self.advance_to(self.now_ms + ms);
    }

    /// Runs until `done` holds (checked after every event time) or `timeout_ms` pass;
    /// returns whether `done` held.
    pub fn run_until(&mut self, timeout_ms: u64, mut done: impl FnMut(&Cluster) -> bool) -> bool {
        let deadline_ms = self.now_ms + timeout_ms;
        loop {
            if done(self) {
                return true;
            }
            match self.next_event_ms().filter(|&t| t <= deadline_ms) {
                Some(next) => self.advance_to(next),
                None => {
                    self.now_ms = deadline_ms;
                    return done(self);
                }
            }
        }
    }

    /// The earliest time something is due.
    pub fn next_event_ms(&self) -> Option<u64> {
        let ticks = self
            .members
            .iter()
            .filter_map(|m| m.raft.as_ref().map(Raft::next_tick_ms));
        let writes = self.members.iter().filter_map(|m| m.writer.next_due_ms());
        ticks.chain(writes).chain(self.net.next_due_ms()).min()
    }

    fn process_due(&mut self) {
        self.events += 1;
        assert!(
            self.events <= MAX_EVENTS,
            "more than {MAX_EVENTS} events: livelock?"
        );
        let now = self.now_ms;
        while let Some(msg) = self.net.pop_due(now) {
            self.deliver(msg);
        }
        for i in 0..self.members.len() {
            while let Some(batch) = self.members[i].writer.pop_due(now) {
                self.complete_write(i, batch);
            }
        }
        for i in 0..self.members.len() {
            let due = self.members[i]
                .raft
                .as_ref()
                .is_some_and(|r| r.next_tick_ms() <= now);
            if due {
                self.tick(i);
            }
        }
    }

    fn deliver(&mut self, msg: Message) {
        let i = msg.to as usize - 1;
        let now = self.now_ms;
        self.trace
            .record(now, format_args!("deliver {}", Brief(&msg)));
        if matches!(
            msg.body,
            MessageBody::AppendEntriesResponse { success: false, .. }
        ) {
            self.appends_rejected += 1;
        }
        let Some(raft) = self.members[i].raft.as_mut() else {
            return; // the receiver is down: the message is lost
        };
        raft.step(msg, now);
        self.drain(i);
    }

    fn tick(&mut self, i: usize) {
        let now = self.now_ms;
        let Some(raft) = self.members[i].raft.as_mut() else {
            return;
        };
        raft.tick(now);
        let next = raft.next_tick_ms();
        assert!(
            next > now,
            "n{}: after tick({now}) next_tick_ms is {next}",
            i + 1
        );
        self.drain(i);
    }

    fn complete_write(&mut self, i: usize, batch: PersistBatch) {
        let now = self.now_ms;
        let m = &mut self.members[i];
        m.store.write(batch.hard_state, &batch.entries);
        self.trace.record(
            now,
            format_args!(
                "n{} durable #{} last=({},{})",
                m.id, batch.token.seq, batch.token.last.term, batch.token.last.index
            ),
        );
        let Some(raft) = m.raft.as_mut() else {
            unreachable!("a crashed member's writes are discarded");
        };
        raft.on_persisted(batch.token, now);
        let vouched = m.vouched.pop_front().unwrap_or_default();
        for (k, msg) in batch.messages.into_iter().enumerate() {
            self.trace.record(now, format_args!("send {}", Brief(&msg)));
            check_send(m.id, &m.store, vouched.get(k).copied().flatten(), &msg);
            self.net.send(msg, now, &mut self.rng);
        }
        for chunk in &batch.snapshot_chunks {
            self.members[i].receive_chunk(chunk);
        }
        // Like the runtime's single writer, install once no batch is in flight; no
        // new batch is taken until then (see `drain`).
        if self.members[i].writer.pending() == 0 {
            if let Some((last, bytes)) = self.members[i].pending_install.take() {
                self.install_snapshot(i, last, &bytes);
            }
        }
        self.drain(i);
    }

    /// Member `i` wrote the final chunk of the snapshot at `last`: check it against the
    /// committed log (a snapshot holds only committed entries), install it in the
    /// durable store and tell Raft, as the runtime's writer does.
    fn install_snapshot(&mut self, i: usize, last: LogPosition, bytes: &[u8]) {
        let now = self.now_ms;
        let m = &mut self.members[i];
        let id = m.id;
        let Some(raft) = m.raft.as_mut() else {
            return;
        };
        if last.index <= m.store.base.index {
            raft.snapshot_rejected(last);
            return;
        }
        let Some(entries) = super::snapshots::decode(bytes, last) else {
            panic!("n{id}: the snapshot at {last:?} arrived damaged");
        };
        for entry in &entries {
            self.checker.check_applied(id, entry);
        }
        let holds = m.shadow.get(last.index as usize - 1).map(|s| s.term) == Some(last.term);
        if !holds {
            m.shadow = entries.iter().map(Slot::of).collect();
        }
        let digest = super::invariants::digest_of(&entries);
        m.store.install(last, entries);
        let restore = raft.snapshot_installed(last, now);
        if restore {
            m.applied = last.index;
            m.digest = digest;
            self.checker.check_digest(id, last.index, m.digest.value());
        }
        m.checked_commit = m.checked_commit.max(last.index);
        self.trace.record(
            now,
            format_args!(
                "n{id} installed snapshot ({},{}) restore={restore}",
                last.term, last.index
            ),
        );
    }

    /// Member `i` may take a snapshot at its applied index and compact, once every
    /// entry up to it is durable (as the runtime's writer waits for).
    pub(super) fn maybe_compact(&mut self, i: usize) {
        let chance = self.opts.snapshot_per_mille;
        if chance == 0 || !self.rng.gen_ratio(chance, 1000) {
            return;
        }
        let now = self.now_ms;
        let m = &mut self.members[i];
        let Some(raft) = m.raft.as_mut() else {
            return;
        };
        let through = m.applied;
        if through <= raft.log_base().index || raft.durable_index() < through {
            return;
        }
        let Some(term) = m.store.entry(through).map(|e| e.term) else {
            return;
        };
        let pos = LogPosition {
            term,
            index: through,
        };
        m.store.compact(pos);
        raft.compact_keeping(pos, self.opts.snapshot_catchup_entries, u64::MAX);
        self.trace.record(
            now,
            format_args!("n{} snapshot+compact ({},{})", m.id, term, through),
        );
    }

    /// Crashes `id`: its Raft value, unfinished writes and waiting clients are gone.
    pub fn crash(&mut self, id: NodeId) {
        let torn = self.opts.torn_writes && self.rng.gen_bool(0.5);
        let torn_entries = torn.then(|| self.rng.gen_range(0..=4));
        let lost = self.members[id as usize - 1].crash(torn_entries);
        self.history.on_crash(id);
        self.note(format_args!(
            "n{id} CRASH ({lost} unfinished batches, torn {torn_entries:?})"
        ));
        self.check_durable();
    }

    /// Starts a new incarnation of `id` from its durable store, with a fresh seed.
    pub fn restart(&mut self, id: NodeId) {
        let seed = self.rng.gen();
        let now = self.now_ms;
        let m = &mut self.members[id as usize - 1];
        m.start(seed, now);
        let (hs, len) = (m.store.hard_state, m.store.entries.len());
        self.note(format_args!(
            "n{id} START {} log={len}",
            HardStateBrief(Some(hs))
        ));
        self.drain(id as usize - 1);
    }

    /// Every committed entry is on a majority of durable stores.
    pub fn check_durable(&self) {
        let stores: Vec<&DurableStore> = self.members.iter().map(|m| &m.store).collect();
        self.checker
            .check_durable_majority(&stores, self.opts.voters);
    }

    /// Proposes `data` at `id`.
    pub fn propose(&mut self, id: NodeId, data: Vec<u8>) -> Result<LogPosition, NotLeader> {
        let now = self.now_ms;
        let Some(raft) = self.members[id as usize - 1].raft.as_mut() else {
            return Err(NotLeader { leader: None });
        };
        let result = raft.propose(data.clone(), now);
        if let Ok(pos) = result {
            assert_eq!(
                pos,
                raft.last_position(),
                "n{id}: propose returned a position not at the end"
            );
            assert_eq!(
                pos.term,
                raft.term(),
                "n{id}: propose returned another term"
            );
            self.history.proposed(id, &data, pos);
        }
        self.note(format_args!("n{id} propose -> {result:?}"));
        self.drain(id as usize - 1);
        result
    }

    /// Forwards `data` from follower `id` to its leader; returns the forward number.
    pub fn forward(&mut self, id: NodeId, data: Vec<u8>) -> Result<u64, ForwardRefused> {
        let now = self.now_ms;
        let m = &mut self.members[id as usize - 1];
        let Some(raft) = m.raft.as_mut() else {
            return Err(ForwardRefused::NoLeader);
        };
        let result = raft.forward(data.clone(), now);
        if let Ok(number) = result {
            m.forwarded.insert(number, data);
            self.history.stats.forwarded += 1;
        }
        self.note(format_args!("n{id} forward -> {result:?}"));
        self.drain(id as usize - 1);
        result
    }

    /// A client's fresh write at `id`: proposed if `id` leads, else forwarded.
    pub fn write_new(&mut self, id: NodeId, pad_bytes: usize) {
        let data = self.history.new_command(pad_bytes);
        if self.raft(id).role() == raftkv::raft::Role::Leader {
            let _ = self.propose(id, data);
        } else {
            let _ = self.forward(id, data);
        }
    }

    /// Proposes a fresh command with `pad_bytes` of filler at `id`.
    pub fn propose_new(&mut self, id: NodeId, pad_bytes: usize) -> Result<LogPosition, NotLeader> {
        let data = self.history.new_command(pad_bytes);
        self.propose(id, data)
    }

    /// Issues a linearizable read at `id`; returns its read id.
    pub fn read(&mut self, id: NodeId) -> Result<u64, NotLeader> {
        let now = self.now_ms;
        let read_id = self.history.next_read_id();
        let Some(raft) = self.members[id as usize - 1].raft.as_mut() else {
            return Err(NotLeader { leader: None });
        };
        let result = raft.read_index(read_id, now);
        if result.is_ok() {
            self.history.read_issued(id, read_id);
        }
        self.note(format_args!("n{id} read {read_id} issued -> {result:?}"));
        self.drain(id as usize - 1);
        result.map(|()| read_id)
    }

    /// Cuts links between groups (members in no group are isolated).
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        self.net.partition(groups);
        let cuts = self.net.describe_cuts();
        self.note(format_args!("PARTITION {groups:?}: cut {cuts}"));
    }

    /// Starts holding messages from `from` to `to`, as a receiver that stops reading
    /// that connection (a paused process: its socket buffer keeps them).
    pub fn hold(&mut self, from: NodeId, to: NodeId) {
        self.net.set_holding(from, to, true);
        self.note(format_args!("HOLD {from}->{to}"));
    }

    /// Stops holding messages from `from` to `to`; those already held stay held.
    pub fn unhold(&mut self, from: NodeId, to: NodeId) {
        self.net.set_holding(from, to, false);
        self.note(format_args!("UNHOLD {from}->{to}"));
    }

    /// Delivers the held messages from `from` to `to` now, oldest first, whatever the
    /// partition: they are already in the receiver's socket buffer.
    pub fn release_held(&mut self, from: NodeId, to: NodeId) -> usize {
        let held = self.net.take_held(from, to);
        let count = held.len();
        self.note(format_args!("RELEASE {count} held {from}->{to}"));
        for msg in held {
            self.deliver(msg);
        }
        count
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.net.heal();
        self.note(format_args!("HEAL"));
    }

    /// True when the current leader has committed its whole log and every running
    /// member has applied it.
    pub fn converged(&self) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let last = self.raft(leader).last_position().index;
        let leader_done = self.raft(leader).commit_index() == last;
        leader_done
            && self
                .members
                .iter()
                .filter(|m| m.is_up() && self.in_config(m.id))
                .all(|m| m.applied == last)
    }

    /// True if `id` is a member in the current leader's configuration (or if there
    /// is no leader): members outside it (removed, or never added) get no log.
    pub fn in_config(&self, id: NodeId) -> bool {
        self.leader()
            .is_none_or(|l| self.raft(l).membership().contains(id))
    }

    /// Asks leader `id` for a membership change; refusals are part of the game.
    pub fn change_membership(&mut self, id: NodeId, change: MembershipChange) {
        let now = self.now_ms;
        let Some(raft) = self.members[id as usize - 1].raft.as_mut() else {
            return;
        };
        let result = raft.propose_membership(change.clone(), now);
        self.changes_accepted += u64::from(result.is_ok());
        self.note(format_args!("n{id} membership {change:?} -> {result:?}"));
    }

    /// A summary of the run so far.
    pub fn summary(&self) -> String {
        let n = &self.net.stats;
        let h = &self.history.stats;
        format!(
            "t={}ms events={} committed={} leader-terms={} proposals={} acked={} lost={} reads={} ok={} refused={} \
             forwarded={} appended={} refused={} unknown={} \
             msgs sent={} delivered={} dropped={} dup={} cut={} long-delayed={} rejected-appends={}",
            self.now_ms,
            self.events,
            self.checker.committed().len(),
            self.checker.terms_with_leader(),
            h.proposed,
            h.acked,
            h.lost,
            h.reads,
            h.reads_ok,
            h.reads_refused,
            h.forwarded,
            h.forwards_appended,
            h.forwards_refused,
            h.forwards_unknown,
            n.sent,
            n.delivered,
            n.dropped,
            n.duplicated,
            n.cut,
            n.long_delayed,
            self.appends_rejected
        )
    }
}
