//! The durability side of the core: persist batches, and which messages must wait
//! for one.
//!
//! A vote, a vote response and an AppendEntries response each promise something about
//! this member's stable state (Figure 2: "respond to RPCs only after updating stable
//! storage"). Such a message leaves immediately only when nothing is unpersisted and no
//! taken batch is still unconfirmed; otherwise it rides in the next batch, which the
//! runtime's single writer persists after every earlier one.

use super::core::{Raft, Role};
use super::{HardState, LogPosition, Message, PersistBatch, PersistToken, SnapshotChunk};

/// Most messages waiting for the next persist batch. A follower whose disk stalls
/// would otherwise queue an answer to every heartbeat and retransmission without
/// bound; past this, a new answer is dropped like a lost message (the leader
/// retransmits what is not acknowledged).
pub const MAX_WAITING_MESSAGES: usize = 1024;

/// Bookkeeping of batches handed to storage.
#[derive(Debug)]
pub(super) struct PersistQueue {
    /// The hard state as of the last batch taken (or as recovered).
    pub(super) taken_hard_state: HardState,
    /// Sequence number of the last batch taken.
    /// Invariant: `confirmed_seq <= taken_seq`.
    pub(super) taken_seq: u64,
    /// Sequence number of the last batch reported durable.
    pub(super) confirmed_seq: u64,
    /// Messages that leave with the next batch.
    /// Invariant: at most `MAX_WAITING_MESSAGES`.
    pub(super) messages: Vec<Message>,
    /// Messages dropped because `messages` was full.
    pub(super) dropped_messages: u64,
    /// Snapshot chunks received, to write with the next batch.
    pub(super) chunks: Vec<SnapshotChunk>,
    /// Sequence number of the last batch taken that carried a hard state (0: the
    /// recovered one, durable already).
    pub(super) hard_state_seq: u64,
}

impl PersistQueue {
    /// Nothing pending, starting from the recovered hard state.
    pub(super) fn new(hard_state: HardState) -> PersistQueue {
        PersistQueue {
            taken_hard_state: hard_state,
            taken_seq: 0,
            confirmed_seq: 0,
            messages: Vec::new(),
            dropped_messages: 0,
            chunks: Vec::new(),
            hard_state_seq: 0,
        }
    }
}

impl Raft {
    /// The hard state as it is in memory now.
    pub(super) fn hard_state(&self) -> HardState {
        HardState {
            current_term: self.current_term,
            voted_for: self.voted_for,
        }
    }

    /// True if the hard state changed since the last batch was taken.
    fn hard_state_dirty(&self) -> bool {
        self.hard_state() != self.persist.taken_hard_state
    }

    /// True if a message sent now could promise something not yet on disk.
    fn durability_pending(&self) -> bool {
        self.hard_state_dirty()
            || self.log.has_unpersisted()
            || !self.persist.chunks.is_empty()
            || self.persist.taken_seq != self.persist.confirmed_seq
    }

    /// Sends a message that depends on this member's stable state: at once if all of
    /// it is durable, else with the next persist batch.
    /// A message that would overflow the wait queue is dropped (see
    /// [`MAX_WAITING_MESSAGES`]).
    pub(super) fn send_durable(&mut self, msg: Message) {
        if self.durability_pending() {
            if self.persist.messages.len() < MAX_WAITING_MESSAGES {
                self.persist.messages.push(msg);
            } else {
                self.persist.dropped_messages += 1;
            }
        } else {
            self.messages.push(msg);
        }
    }

    /// Sends a message that promises only this member's current term (a follower's
    /// read-index request or forwarded write: they vouch for no entry and no vote):
    /// at once if the term is durable, else with the next persist batch, which the
    /// writer makes durable after the batch that carries the term. Unlike
    /// [`Raft::send_durable`] it does not wait for entries still being written, so
    /// under write load a follower's requests do not wait for its fsync.
    pub(super) fn send_after_term_durable(&mut self, msg: Message) {
        let term_durable =
            !self.hard_state_dirty() && self.persist.confirmed_seq >= self.persist.hard_state_seq;
        if term_durable {
            self.messages.push(msg);
        } else if self.persist.messages.len() < MAX_WAITING_MESSAGES {
            self.persist.messages.push(msg);
        } else {
            self.persist.dropped_messages += 1;
        }
    }

    /// Messages dropped because too many waited for persistence (a stalled disk).
    pub fn dropped_waiting_messages(&self) -> u64 {
        self.persist.dropped_messages
    }

    /// True if `take_persist_batch` would return a batch.
    pub(super) fn persist_work(&self) -> bool {
        self.hard_state_dirty()
            || self.log.has_unpersisted()
            || !self.persist.messages.is_empty()
            || !self.persist.chunks.is_empty()
    }

    /// Cuts the next batch: the unpersisted entries, the hard state if it changed, and
    /// the messages waiting for them.
    pub(super) fn cut_persist_batch(&mut self) -> Option<PersistBatch> {
        if !self.persist_work() {
            return None;
        }
        let hard_state = self.hard_state_dirty().then(|| self.hard_state());
        self.persist.taken_hard_state = self.hard_state();
        if hard_state.is_some() {
            self.persist.hard_state_seq = self.persist.taken_seq + 1;
        }
        let entries = self.log.take_unpersisted();
        let last = match entries.last() {
            Some(e) => LogPosition {
                term: e.term,
                index: e.index,
            },
            None => self.log.last_position(),
        };
        self.persist.taken_seq += 1;
        let token = PersistToken {
            seq: self.persist.taken_seq,
            last,
        };
        let messages = std::mem::take(&mut self.persist.messages);
        let snapshot_chunks = std::mem::take(&mut self.persist.chunks);
        Some(PersistBatch {
            hard_state,
            entries,
            messages,
            snapshot_chunks,
            token,
        })
    }

    /// Storage made a batch durable: move the durable index and, on a leader, see if
    /// that completes a quorum (the leader counts itself only up to its durable index).
    pub(super) fn persisted(&mut self, token: PersistToken) {
        assert!(
            token.seq == self.persist.confirmed_seq + 1,
            "batch {} confirmed after {}: batches must be persisted in order",
            token.seq,
            self.persist.confirmed_seq
        );
        assert!(
            token.seq <= self.persist.taken_seq,
            "batch {} confirmed but only {} taken",
            token.seq,
            self.persist.taken_seq
        );
        self.persist.confirmed_seq = token.seq;
        let term_durable = !self.hard_state_dirty() && token.seq == self.persist.taken_seq;
        if self.role == Role::Candidate && term_durable && self.granted_votes() >= self.quorum() {
            // A single voter that won alone, with learners (see `campaign`).
            self.become_leader();
        }
        if self.log.persisted_to(token.last) {
            self.maybe_commit();
        }
    }
}
