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
use crate::kv::{CommandResult, KvError};
use crate::raft::{Index, NodeId, Raft, Role, Term};

/// How a client write ended, as seen by the connection thread waiting for it.
#[derive(Debug)]
pub enum WriteOutcome {
    /// The entry was committed and applied; this is the state machine's answer.
    Applied(Result<CommandResult, KvError>),
    /// Another entry was committed at this index: this proposal was never applied.
    Overwritten,
    /// The node is shutting down; the write may or may not commit later.
    Shutdown,
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
        }
    }

    /// Records that the applier applied everything up to `index`, and hands back the
    /// reads that were waiting for it, for the caller to complete once it has released
    /// the core lock (waking a thread is a syscall; see `applier::run`).
    #[must_use = "the returned reads must be completed"]
    pub fn advance_applied(&mut self, index: Index) -> Vec<Completion<ReadOutcome>> {
        assert!(
            index >= self.applied_index,
            "applied index went back from {} to {index}",
            self.applied_index
        );
        self.applied_index = index;
        let later = self.reads_awaiting_apply.split_off(&(index + 1));
        let ready = std::mem::replace(&mut self.reads_awaiting_apply, later);
        ready.into_values().flatten().collect()
    }

    /// Takes the write waiting at `index`, if any, now that the entry of `term` there
    /// was applied with `result`, with the outcome to complete it with once the caller
    /// has released the core lock.
    #[must_use = "the returned write must be completed"]
    pub fn finish_write(
        &mut self,
        index: Index,
        term: Term,
        result: Option<&Result<CommandResult, KvError>>,
    ) -> Option<(Completion<WriteOutcome>, WriteOutcome)> {
        let pending = self.pending_writes.remove(&index)?;
        let outcome = match result {
            Some(result) if pending.term == term => WriteOutcome::Applied(result.clone()),
            _ => WriteOutcome::Overwritten,
        };
        Some((pending.done, outcome))
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
