//! `CoreState`: everything guarded by the node's one Raft mutex — the Raft state
//! machine and the tables of client requests waiting on it — and `dispatch`, which hands
//! Raft's outputs to the threads that act on them.
//!
//! Invariant kept by every caller: after any call that can change Raft (step, tick,
//! propose, read_index, on_persisted, take_committed), the caller runs
//! [`Shared::dispatch`](super::shared::Shared::dispatch) before releasing the lock, so no
//! output is left behind with nobody woken to handle it.

use std::collections::{BTreeMap, HashMap};

use super::completion::Completion;
use crate::kv::{CommandResult, KvError, KvStore};
use crate::raft::{Index, LogPosition, NodeId, Raft, Role, Term};

/// How a client write ended, as seen by the connection thread waiting for it.
#[derive(Debug)]
pub enum WriteOutcome {
    /// The entry was committed and applied; this is the state machine's answer.
    Applied(Result<CommandResult, KvError>),
    /// Another entry was committed at this index: this proposal was never applied.
    Overwritten,
    /// The node is shutting down; the write may or may not commit later.
    Shutdown,
    /// A snapshot replaced the state machine past the write's index before its
    /// result was known: it may or may not have been applied.
    Superseded,
}

/// How a linearizable read's wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Leadership was confirmed and the state machine has applied the read index:
    /// serve the read from the local state machine now.
    Ready,
    /// Leadership was lost before it could be confirmed.
    NotLeader(Option<NodeId>),
    /// The node is shutting down.
    Shutdown,
}

/// A proposal waiting to be applied.
pub struct PendingWrite {
    /// The term the entry was proposed in; a different term at its index means it was
    /// overwritten.
    pub term: Term,
    /// Filled in by the applier (or shutdown).
    pub done: Completion<WriteOutcome>,
}

/// The state behind the Raft mutex.
pub struct CoreState {
    /// The consensus state machine.
    pub raft: Raft,
    /// Set once by shutdown; every thread waiting on a Condvar paired with this mutex
    /// re-checks it after waking.
    pub shutdown: bool,
    /// Highest index the applier has applied to the KV store.
    /// Invariant: applied_index <= raft.commit_index().
    pub applied_index: Index,
    /// Writes waiting to be applied, by log index.
    pub pending_writes: BTreeMap<Index, PendingWrite>,
    /// Reads waiting for Raft to confirm leadership, by read id.
    pub pending_reads: HashMap<u64, Completion<ReadOutcome>>,
    /// Reads whose leadership check passed, waiting for `applied_index` to reach their
    /// read index.
    pub reads_awaiting_apply: BTreeMap<Index, Vec<Completion<ReadOutcome>>>,
    /// Id of the next linearizable read.
    pub next_read_id: u64,
    /// Role, term and leader as last logged, so `dispatch` logs each change once.
    pub observed: (Role, Term, Option<NodeId>),
    /// The time (ms on the node clock) until which the election timer thread sleeps;
    /// dispatch wakes it when Raft needs a tick earlier.
    pub timer_sleep_until_ms: u64,
    /// A snapshot the applier serialized, for the writer to save (applier → writer;
    /// the writer is woken through `persist_wanted`).
    pub snapshot_job: Option<SnapshotJob>,
    /// True from when the applier hands a snapshot job over until the writer has
    /// saved (or dropped) it, so at most one is in progress.
    pub snapshot_in_progress: bool,
    /// A state machine decoded from a snapshot received from the leader, to replace
    /// the KV store (writer → applier; the applier is woken through `apply_wanted`).
    pub kv_restore: Option<(Index, KvStore)>,
}

/// A snapshot of the state machine taken by the applier, waiting for the writer.
pub struct SnapshotJob {
    /// The last entry it covers.
    pub last: LogPosition,
    /// The encoded KV store (`KvStore::snapshot`).
    pub data: Vec<u8>,
    /// How long the applier took to encode it, for the log.
    pub encode_ms: u128,
}

impl CoreState {
    /// Wraps a freshly started Raft whose state machine has applied `applied_index`.
    pub fn new(raft: Raft, applied_index: Index) -> CoreState {
        CoreState {
            raft,
            shutdown: false,
            applied_index,
            pending_writes: BTreeMap::new(),
            pending_reads: HashMap::new(),
            reads_awaiting_apply: BTreeMap::new(),
            next_read_id: 1,
            observed: (Role::Follower, 0, None),
            timer_sleep_until_ms: 0,
            snapshot_job: None,
            snapshot_in_progress: false,
            kv_restore: None,
        }
    }

    /// Records that the applier applied everything up to `index`, and releases the
    /// reads that were waiting for it.
    pub fn advance_applied(&mut self, index: Index) {
        assert!(
            index >= self.applied_index,
            "applied index went back from {} to {index}",
            self.applied_index
        );
        self.applied_index = index;
        let later = self.reads_awaiting_apply.split_off(&(index + 1));
        let ready = std::mem::replace(&mut self.reads_awaiting_apply, later);
        for done in ready.into_values().flatten() {
            done.complete(ReadOutcome::Ready);
        }
    }

    /// Completes the write waiting at `index`, if any, now that the entry of `term`
    /// there was applied with `result`.
    pub fn finish_write(
        &mut self,
        index: Index,
        term: Term,
        result: Option<&Result<CommandResult, KvError>>,
    ) {
        let Some(pending) = self.pending_writes.remove(&index) else {
            return;
        };
        match result {
            Some(result) if pending.term == term => {
                pending.done.complete(WriteOutcome::Applied(result.clone()))
            }
            _ => pending.done.complete(WriteOutcome::Overwritten),
        }
    }

    /// The state machine jumped to `index` by a snapshot: writes waiting at or below it
    /// will never be answered by the applier, so their outcome is unknown.
    pub fn supersede_writes(&mut self, index: Index) {
        let later = self.pending_writes.split_off(&(index + 1));
        for (_, pending) in std::mem::replace(&mut self.pending_writes, later) {
            pending.done.complete(WriteOutcome::Superseded);
        }
    }

    /// Fails every waiting request because the node is shutting down.
    pub fn fail_all_waiters(&mut self) {
        for (_, pending) in std::mem::take(&mut self.pending_writes) {
            pending.done.complete(WriteOutcome::Shutdown);
        }
        for (_, done) in self.pending_reads.drain() {
            done.complete(ReadOutcome::Shutdown);
        }
        for done in std::mem::take(&mut self.reads_awaiting_apply)
            .into_values()
            .flatten()
        {
            done.complete(ReadOutcome::Shutdown);
        }
    }
}
