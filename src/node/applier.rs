//! The applier thread: applies committed entries to the KV store in log order, answers
//! the client writes waiting for them, takes snapshots, and installs the state machines
//! of snapshots received from the leader.
//!
//! Waits on: `Shared::apply_wanted` (paired with the core lock) while nothing is
//! committed and unapplied and no received snapshot waits. Woken by: `dispatch` when
//! the commit index advances; the writer when it installed a received snapshot;
//! shutdown. Takes the core lock to take work, then (released) the KV lock to apply
//! it, then the core lock again to record the applied index and take the decided
//! waiters — never both at once — and wakes those waiters with no lock held.
//!
//! Snapshots: after a batch, once `--snapshot-entries` entries or `--snapshot-bytes`
//! command bytes were applied since the last snapshot, the applier serializes the KV
//! store under the KV lock only — never the Raft mutex, so elections, replication and
//! commits go on meanwhile; only applying (and reads, which need the KV lock) pause
//! for the encoding. A clone under the lock would cost as much time as encoding and
//! twice the memory. The bytes go to the writer as a `SnapshotJob`.

use super::core_state::SnapshotJob;
use super::shared::Shared;
use crate::kv::{CommandResult, KvError, KvStore};
use crate::raft::{Entry, Index, LogPosition, Payload, Term};

/// Most entries applied under one hold of the KV lock.
pub const MAX_APPLY_BATCH: usize = 1024;

/// What the applier does next.
enum Work {
    Apply(Vec<Entry>),
    Restore(Index, KvStore),
}

/// Progress towards the next snapshot.
struct SinceSnapshot {
    entries: u64,
    bytes: u64,
    /// This round's thresholds: the configured ones stretched by a random factor in
    /// [1, 1.25). Saving a snapshot holds up the writer's log appends for its write
    /// (tens of ms for a few MB); members applying the same entries with the same
    /// thresholds would all pause at once, and commits need a majority. Spread out at
    /// random, two members rarely pause together, and the others keep committing.
    max_entries: u64,
    max_bytes: u64,
}

impl SinceSnapshot {
    fn start(shared: &Shared) -> SinceSnapshot {
        let stretch = |n: u64| n.saturating_add((n as f64 * rand::random::<f64>() / 4.0) as u64);
        SinceSnapshot {
            entries: 0,
            bytes: 0,
            max_entries: stretch(shared.config.snapshot_entries),
            max_bytes: stretch(shared.config.snapshot_bytes),
        }
    }

    fn due(&self) -> bool {
        self.entries >= self.max_entries || self.bytes >= self.max_bytes
    }
}

/// Runs until shutdown.
pub fn run(shared: &Shared) {
    let mut since = SinceSnapshot::start(shared);
    while let Some(work) = next_work(shared) {
        match work {
            Work::Apply(entries) => {
                let results = apply(shared, &entries);
                shared.metrics.proposals_applied.add(entries.len() as u64);
                since.entries += entries.len() as u64;
                since.bytes += entries.iter().map(|e| e.size_bytes() as u64).sum::<u64>();
                finish(shared, &results);
                if let Some(last) = entries.last() {
                    maybe_snapshot(shared, &mut since, last);
                }
            }
            Work::Restore(index, kv) => {
                restore(shared, index, kv);
                since = SinceSnapshot::start(shared);
            }
        }
    }
}

/// One applied entry: index, term and the state machine's result (`None`: a no-op).
pub(super) type Applied = (Index, Term, Option<Result<CommandResult, KvError>>);

/// Waits for work; `None` on shutdown. A received snapshot goes before any entry, so
/// no entry after it is applied to the state machine it replaces.
fn next_work(shared: &Shared) -> Option<Work> {
    let mut core = shared.lock_core();
    loop {
        if core.shutdown {
            return None;
        }
        if let Some((index, kv)) = core.kv_restore.take() {
            return Some(Work::Restore(index, kv));
        }
        if core.raft.has_committed() {
            let entries = core.raft.take_committed(MAX_APPLY_BATCH);
            let wakeups = shared.dispatch_deferred(&mut core);
            drop(core);
            wakeups.deliver(shared);
            return Some(Work::Apply(entries));
        }
        core = shared.apply_wanted.wait(core);
    }
}

/// Records the applied index and answers the writes and reads waiting for these
/// entries.
fn finish(shared: &Shared, results: &[Applied]) {
    let wakeups = {
        let mut core = shared.lock_core();
        for (index, term, result) in results {
            core.pending.write_applied(*index, *term, result.as_ref());
        }
        if let Some((last, _, _)) = results.last() {
            core.advance_applied(*last);
        }
        super::integrity::after_apply(shared, &mut core, results);
        shared.dispatch_deferred(&mut core)
    };
    // Wake the waiting connection threads after releasing the core lock: each wake is a
    // futex syscall, and a batch of them under the lock held every other thread out
    // (the applier was the leader's busiest thread at 64 clients).
    wakeups.deliver(shared);
}

/// Applies entries to the KV store (KV lock only).
fn apply(shared: &Shared, entries: &[Entry]) -> Vec<Applied> {
    let mut kv = shared.lock_kv();
    let mut results = Vec::with_capacity(entries.len());
    for entry in entries {
        let result = match &entry.payload {
            // The core tracks configurations itself; to the store it is a no-op.
            Payload::Noop | Payload::Membership(_) => {
                kv.apply_noop(entry.index);
                None
            }
            Payload::Command(data) => {
                let result = kv.apply(entry.index, data);
                if let Err(err) = &result {
                    shared.log.warn(format_args!(
                        "entry {} could not be applied: {err}",
                        entry.index
                    ));
                }
                Some(result)
            }
        };
        results.push((entry.index, entry.term, result));
    }
    results
}

/// Takes a snapshot at `last` if a threshold is passed and none is in progress.
fn maybe_snapshot(shared: &Shared, since: &mut SinceSnapshot, last: &Entry) {
    if !since.due() {
        return;
    }
    if shared.lock_core().snapshot_in_progress {
        return; // the next batch checks again
    }
    let started = std::time::Instant::now();
    let data = {
        let kv = shared.lock_kv();
        assert_eq!(
            kv.applied_index(),
            last.index,
            "snapshot of a store not at the last applied entry"
        );
        kv.snapshot()
    };
    let encode_ms = started.elapsed().as_millis();
    let position = LogPosition {
        term: last.term,
        index: last.index,
    };
    *since = SinceSnapshot::start(shared);
    let mut core = shared.lock_core();
    core.snapshot_in_progress = true;
    let membership = core.raft.membership_at(position.index).clone();
    core.snapshot_job = Some(SnapshotJob {
        last: position,
        data,
        membership,
        encode_ms,
    });
    shared.persist_wanted.notify_one();
}

/// Replaces the KV store by one decoded from a snapshot at `index` from the leader.
fn restore(shared: &Shared, index: Index, kv: KvStore) {
    {
        let mut current = shared.lock_kv();
        if current.applied_index() < index {
            *current = kv;
        }
    }
    let mut core = shared.lock_core();
    core.pending.supersede_writes(index);
    if core.applied_index < index {
        core.advance_applied(index);
    }
    shared.dispatch(&mut core);
}
