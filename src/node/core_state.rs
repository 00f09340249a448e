//! `CoreState`: everything guarded by the node's one Raft mutex — the Raft state
//! machine, the applied index and the requests waiting on them.
//!
//! Invariant kept by every caller: after any call that can change Raft (step, tick,
//! propose, read_index, on_persisted, take_committed), the caller runs
//! [`Shared::dispatch`](super::shared::Shared::dispatch) before releasing the lock, so no
//! output is left behind with nobody woken to handle it.

use super::deferred_log::DeferredLog;
use super::integrity::Integrity;
use super::members::Members;
use super::pending::PendingRequests;
use crate::kv::KvStore;
use crate::raft::{Index, LogPosition, Membership, NodeId, Raft, Role, Term};

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
    /// Log lines decided under this lock, written after it is released (bounded).
    pub deferred_log: DeferredLog,
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
    /// State digest checks and the alarm (module `node::integrity`).
    pub integrity: Integrity,
    /// Set while a leader that is shutting down waits for its hand-off
    /// (`node::handoff`); completed by `dispatch` once another member leads.
    pub handoff: Option<super::completion::Completion<()>>,
    /// The links to the members and their addresses (module `node::members`).
    pub members: Members,
}

/// A snapshot of the state machine taken by the applier, waiting for the writer.
pub struct SnapshotJob {
    /// The last entry it covers.
    pub last: LogPosition,
    /// The encoded KV store (`KvStore::snapshot`).
    pub data: Vec<u8>,
    /// The configuration as of `last`, stored with the snapshot.
    pub membership: Membership,
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
            pending: PendingRequests::default(),
            observed: (Role::Follower, 0, None),
            deferred_log: DeferredLog::default(),
            timer_sleep_until_ms: 0,
            snapshot_job: None,
            snapshot_in_progress: false,
            kv_restore: None,
            integrity: Integrity::default(),
            handoff: None,
            members: Members::default(),
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
