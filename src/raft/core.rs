//! The `Raft` state machine: its inputs and outputs. (Stub signatures; the
//! consensus-core work fills the bodies in and may split them over more files.)

use super::{Config, Entry, HardState, Index, LogPosition, Message, NodeId, Term};

/// What a member recovered from stable storage when it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialState {
    /// Term and vote as last persisted.
    pub hard_state: HardState,
    /// The last position covered by the snapshot (the log base); index 0 if none.
    pub log_base: LogPosition,
    /// Entries after the base, consecutive from `log_base.index + 1`.
    pub entries: Vec<Entry>,
}

/// The three roles of §5.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Answers leaders and candidates.
    Follower,
    /// Asking for votes.
    Candidate,
    /// Takes proposals and replicates them.
    Leader,
}

/// A proposal or read was refused because this member is not the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLeader {
    /// The leader this member knows of in its current term, if any.
    pub leader: Option<NodeId>,
}

/// Something to make durable, and the messages that must wait for it.
///
/// Contract: persist `entries` (first removing any stored entries at or after
/// `entries[0].index`) and `hard_state`, then call [`Raft::on_persisted`] with
/// [`PersistBatch::token`], then send `messages`. Batches must be persisted in the order
/// they were taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistBatch {
    /// The new hard state, if it changed since the last batch.
    pub hard_state: Option<HardState>,
    /// Entries to append; may start at or before the stored last index (a truncation).
    pub entries: Vec<Entry>,
    /// Messages that may be sent only once this batch is durable.
    pub messages: Vec<Message>,
    /// Identifies the batch to [`Raft::on_persisted`].
    pub token: PersistToken,
}

/// Proof handed back to [`Raft::on_persisted`] that a batch is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersistToken {
    /// Sequence number of the batch.
    pub seq: u64,
    /// The last log position the batch wrote (or the log's last position when it wrote
    /// no entries).
    pub last: LogPosition,
}

/// The answer to a [`Raft::read_index`] request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's id for the read.
    pub read_id: u64,
    /// `Ok(index)`: serve the read once the state machine has applied `index`.
    /// `Err`: leadership was lost before it could be confirmed.
    pub result: Result<Index, NotLeader>,
}

/// A snapshot of a member's progress, for `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This member.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of in this term.
    pub leader: Option<NodeId>,
    /// Highest index known committed.
    pub commit_index: Index,
    /// Highest index handed out by [`Raft::take_committed`].
    pub applied_index: Index,
    /// First index held in the log (log base + 1).
    pub first_index: Index,
    /// Last index in the log (durable or not).
    pub last_index: Index,
    /// Index of the log base (the snapshot's last index).
    pub snapshot_index: Index,
    /// On a leader: each other member's match index, by id.
    pub match_index: Vec<(NodeId, Index)>,
}

/// One Raft member. See the module documentation for the input/output contract.
pub struct Raft {
    _private: (),
}

impl Raft {
    /// Starts a member as a follower from recovered state. `seed` drives the randomized
    /// election timeouts; `now_ms` is the caller's clock.
    pub fn new(_config: Config, _initial: InitialState, _seed: u64, _now_ms: u64) -> Raft {
        todo!()
    }

    /// Advances time: starts an election when the election deadline passes, sends
    /// heartbeats that are due.
    pub fn tick(&mut self, _now_ms: u64) {
        todo!()
    }

    /// The earliest time at which [`Raft::tick`] has something to do.
    pub fn next_tick_ms(&self) -> u64 {
        todo!()
    }

    /// Handles a message from a peer. Messages from unknown members or addressed to
    /// another member are dropped.
    pub fn step(&mut self, _msg: Message, _now_ms: u64) {
        todo!()
    }

    /// Appends a command on the leader; returns where it will be if it commits.
    pub fn propose(&mut self, _data: Vec<u8>, _now_ms: u64) -> Result<LogPosition, NotLeader> {
        todo!()
    }

    /// Asks for a linearizable read (ReadIndex, thesis §6.4). The answer comes later
    /// through [`Raft::take_read_states`].
    pub fn read_index(&mut self, _read_id: u64, _now_ms: u64) -> Result<(), NotLeader> {
        todo!()
    }

    /// Messages that may be sent at once.
    pub fn take_messages(&mut self) -> Vec<Message> {
        todo!()
    }

    /// True if [`Raft::take_persist_batch`] would return a batch.
    pub fn has_persist_work(&self) -> bool {
        todo!()
    }

    /// The next batch to make durable, if any.
    pub fn take_persist_batch(&mut self) -> Option<PersistBatch> {
        todo!()
    }

    /// Reports a batch durable.
    pub fn on_persisted(&mut self, _token: PersistToken, _now_ms: u64) {
        todo!()
    }

    /// True if committed entries wait to be taken.
    pub fn has_committed(&self) -> bool {
        todo!()
    }

    /// Up to `max` committed entries not yet taken, in index order.
    pub fn take_committed(&mut self, _max: usize) -> Vec<Entry> {
        todo!()
    }

    /// Reads whose fate is now known.
    pub fn take_read_states(&mut self) -> Vec<ReadState> {
        todo!()
    }

    /// The current role, term, indexes and progress.
    pub fn status(&self) -> Status {
        todo!()
    }

    /// This member's id.
    pub fn id(&self) -> NodeId {
        todo!()
    }

    /// The current role.
    pub fn role(&self) -> Role {
        todo!()
    }

    /// The current term.
    pub fn term(&self) -> Term {
        todo!()
    }

    /// The vote cast in the current term, if any.
    pub fn voted_for(&self) -> Option<NodeId> {
        todo!()
    }

    /// The leader known in the current term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        todo!()
    }

    /// Highest index known committed.
    pub fn commit_index(&self) -> Index {
        todo!()
    }

    /// The log base: the last position covered by a snapshot (index 0 if none).
    pub fn log_base(&self) -> LogPosition {
        todo!()
    }

    /// The last position in the log, durable or not.
    pub fn last_position(&self) -> LogPosition {
        todo!()
    }

    /// Entries from `from` (greater than the base index) to the end of the log; empty if
    /// `from` is past the end.
    pub fn entries_from(&self, _from: Index) -> &[Entry] {
        todo!()
    }

    /// Asserts every internal invariant (O(log length)); for tests and the simulator.
    pub fn check_invariants(&self) {
        todo!()
    }
}
