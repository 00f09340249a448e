//! `CoreState`: everything guarded by the node's one Raft mutex — the Raft state
//! machine, the applied index and the requests waiting on them.
//!
//! Invariant kept by every caller: after any call that can change Raft (step, tick,
//! propose, read_index, on_persisted, take_committed), the caller runs
//! [`Shared::dispatch`](super::shared::Shared::dispatch) before releasing the lock, so no
//! output is left behind with nobody woken to handle it.

use super::pending::PendingRequests;
use crate::raft::{Index, NodeId, Raft, Role, Term};

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
    /// Client requests waiting on Raft or the applier.
    pub pending: PendingRequests,
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
            pending: PendingRequests::default(),
            observed: (Role::Follower, 0, None),
            timer_sleep_until_ms: 0,
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
        self.pending.applied(index);
    }
}
