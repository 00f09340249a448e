//! Linearizable reads on a follower: it asks the leader for a read index (thesis §6.4,
//! as etcd's `MsgReadIndex`), waits until it has applied that index, then serves the
//! read from its own state machine.
//!
//! The leader treats a follower's request like one of its own reads: it records its
//! commit index when the request arrives, after an entry of its term is committed, and
//! answers only once a majority has acknowledged a heartbeat round sent after that
//! (`read_index.rs`). Any write acknowledged before the follower's read was issued was
//! committed before the request reached the leader, so the index covers it.
//!
//! Batching: a follower keeps at most one request in flight. Reads arriving while it
//! waits gather and leave together in the next request, so under load a follower
//! sends one request per round trip, not one per read.
//!
//! Failure: a request belongs to the leader and term it was sent to. If the follower
//! stops following that leader in that term (a new term, an election, a leader it no
//! longer knows), every forwarded read fails with [`NotLeader`], as a leader's own
//! reads fail when it steps down. A request unanswered within the maximum election
//! timeout (lost on the way) is sent again under a new batch number, its reads kept.
//!
//! Batch numbers start at a random value in each incarnation, so an answer to a
//! request of an earlier incarnation (which carries an older index) is never taken for
//! the answer to a new one.

use super::fault::MAX_INDEX;
use super::{Index, MessageBody, NodeId, NotLeader, ReadState, Role, Term};

/// Most reads a follower keeps waiting for a read index (sent or not). Past it a
/// read is refused with [`NotLeader`] naming the leader, so the client goes there.
/// Without it, reads the runtime gave up on (their client timed out) would pile up
/// while requests to a leader that still sends heartbeats go unanswered (a one-way
/// cut).
pub(super) const MAX_FORWARDED_READS: usize = 4096;

/// A request for a read index in flight to the leader.
#[derive(Debug)]
struct Batch {
    /// Its number, echoed by the leader's answer.
    id: u64,
    /// The leader it was sent to and the term it was sent in.
    leader: NodeId,
    term: Term,
    /// The reads it carries.
    reads: Vec<u64>,
    /// When it was sent.
    sent_ms: u64,
}

/// A follower's reads waiting for a read index from the leader.
#[derive(Debug)]
pub(super) struct ForwardedReads {
    /// Reads not yet sent (they leave with the next batch).
    waiting: Vec<u64>,
    /// The one batch in flight, if any.
    in_flight: Option<Batch>,
    /// The number of the next batch.
    next_batch: u64,
}

impl ForwardedReads {
    /// Empty, numbering batches from `first_batch` (random per incarnation).
    pub(super) fn new(first_batch: u64) -> ForwardedReads {
        ForwardedReads {
            waiting: Vec::new(),
            in_flight: None,
            next_batch: first_batch,
        }
    }

    /// How many reads wait, sent or not.
    pub(super) fn len(&self) -> usize {
        self.waiting.len() + self.in_flight.as_ref().map_or(0, |b| b.reads.len())
    }

    /// True if no read waits.
    pub(super) fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.in_flight.is_none()
    }

    /// The leader and term of the batch in flight, if any.
    pub(super) fn in_flight_to(&self) -> Option<(NodeId, Term)> {
        self.in_flight.as_ref().map(|b| (b.leader, b.term))
    }
}

impl super::core::Raft {
    /// Follower: takes a read to ask the leader about, unless
    /// [`MAX_FORWARDED_READS`] wait already. The caller checked that a leader is known.
    pub(super) fn forward_read(&mut self, read_id: u64) -> Result<(), NotLeader> {
        if self.forwarded.len() >= MAX_FORWARDED_READS {
            return Err(NotLeader {
                leader: self.leader,
            });
        }
        self.forwarded.waiting.push(read_id);
        Ok(())
    }

    /// Fails every forwarded read if this member no longer follows the leader (in the
    /// term) its batch went to; called after every input.
    pub(super) fn settle_forwarded_reads(&mut self) {
        if self.forwarded.is_idle() {
            return;
        }
        let following = match self.role {
            Role::Follower => self.leader.map(|l| (l, self.current_term)),
            Role::Leader | Role::Candidate | Role::PreCandidate => None,
        };
        let batch_ok = self
            .forwarded
            .in_flight_to()
            .is_none_or(|sent_to| Some(sent_to) == following);
        if following.is_some() && batch_ok {
            return;
        }
        let err = Err(NotLeader {
            leader: self.leader,
        });
        let batch = self.forwarded.in_flight.take();
        let reads = batch.into_iter().flat_map(|b| b.reads);
        let all: Vec<u64> = reads.chain(self.forwarded.waiting.drain(..)).collect();
        for read_id in all {
            self.reads.ready.push(ReadState {
                read_id,
                result: err,
            });
        }
    }

    /// Follower: sends the waiting reads as one batch if none is in flight, or sends
    /// the batch in flight again under a new number if it went unanswered too long.
    pub(super) fn flush_forwarded_reads(&mut self) {
        let Some(leader) = self.leader.filter(|_| self.role == Role::Follower) else {
            return;
        };
        let now = self.now_ms;
        let timeout = self.config.election_timeout_max_ms;
        let f = &mut self.forwarded;
        let mut reads = match f.in_flight.take() {
            Some(b) if now.saturating_sub(b.sent_ms) < timeout => {
                f.in_flight = Some(b);
                return;
            }
            Some(b) => b.reads,
            None => Vec::new(),
        };
        reads.append(&mut f.waiting);
        if reads.is_empty() {
            return;
        }
        let id = f.next_batch;
        f.next_batch = f.next_batch.wrapping_add(1);
        f.in_flight = Some(Batch {
            id,
            leader,
            term: self.current_term,
            reads,
            sent_ms: now,
        });
        let msg = self.message_to(leader, MessageBody::ReadIndexRequest { batch: id });
        // It carries our term, which may have just been adopted and not yet durable:
        // it leaves once the term is (it promises nothing else).
        self.send_after_term_durable(msg);
    }

    /// Follower: the leader's answer to a batch. An answer to any other batch (an
    /// earlier one, sent again; a duplicate) is ignored.
    pub(super) fn handle_read_index_response(&mut self, from: NodeId, batch: u64, index: Index) {
        let term = self.current_term;
        let matches = self
            .forwarded
            .in_flight
            .as_ref()
            .is_some_and(|b| b.id == batch && b.leader == from && b.term == term);
        if !matches || self.role != Role::Follower {
            return;
        }
        if index > MAX_INDEX {
            let what = format!("answers a read with index {index}, above {MAX_INDEX}");
            self.peer_fault(from, term, what);
            return;
        }
        let Some(b) = self.forwarded.in_flight.take() else {
            return;
        };
        for read_id in b.reads {
            self.reads.ready.push(ReadState {
                read_id,
                result: Ok(index),
            });
        }
    }

    /// Leader: a follower's request for a read index, taken like a read of its own.
    /// Anyone else ignores it (the follower sees the change of leader and fails its
    /// reads, or sends the request again).
    pub(super) fn handle_read_index_request(&mut self, from: NodeId, batch: u64) {
        if self.role == Role::Leader {
            self.start_remote_read(from, batch);
        }
    }
}
