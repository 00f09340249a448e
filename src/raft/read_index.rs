//! Linearizable reads without writing to the log: ReadIndex (thesis §6.4).
//!
//! A read is safe to serve at index `i` once (1) `i` is the leader's commit index at
//! the time the read arrived, (2) the leader has committed an entry of its own term, so
//! that commit index is at least that of any previous leader (§6.4 step 1), and (3) a
//! majority acknowledged a message sent after the read arrived, proving no newer leader
//! existed then (§6.4 step 3). Rounds batch (3): every read recorded before a round's
//! heartbeats go out shares that round, as etcd's `read_only.go` shares one heartbeat.
//!
//! At most one round is in flight: reads arriving while a round awaits its majority
//! gather in an open round, whose heartbeats leave when the one in flight is confirmed
//! (as etcd's `linearizableReadLoop` batches). Under load that is one heartbeat per
//! follower per round trip instead of one per read; a read waits at most for the round
//! in flight plus its own. If a round's heartbeats are lost, any later message carries
//! the closed round number, so the next heartbeat tick confirms it.
//!
//! Safety of the numbering: a message carries `read_round`, the latest *closed* round.
//! An open round is numbered `read_round + 1` and is closed (the counter moves) only
//! when its heartbeats are generated, so every message carrying a round was created
//! after every read of that round was recorded.

use super::{Index, MessageBody, NodeId, NotLeader, ReadState};

/// Most follower requests (`follower_read.rs`) a leader keeps waiting at once. A
/// correct follower has one in flight; more come only from a broken peer, and are
/// dropped (the follower sends again).
pub(super) const MAX_REMOTE_READS: usize = 1024;

/// Whose read it is: the caller's own, or a follower's batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ReadRef {
    /// A read the caller asked for with [`super::Raft::read_index`].
    Local(u64),
    /// A follower's request for a read index, by batch number.
    Remote { from: NodeId, batch: u64 },
}

/// A read waiting for its round to be confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PendingRead {
    who: ReadRef,
    read_index: Index,
    round: u64,
}

/// The leader's ReadIndex bookkeeping. Empty on followers and candidates.
#[derive(Debug, Default)]
pub(super) struct ReadIndexes {
    /// Reads that arrived before the leader committed an entry of its term (§6.4 step 1).
    held: Vec<ReadRef>,
    /// Reads waiting for a majority to acknowledge their round; rounds ascending.
    pending: Vec<PendingRead>,
    /// The latest closed round: every AppendEntries sent carries it. Not durable: it
    /// starts at 0 with each incarnation (and grows only within it), so rounds of
    /// different incarnations overlap. That is safe because only an
    /// `AppendEntriesResponse` of the leader's current term is counted, and it
    /// answers an AppendEntries of that same term, which only this incarnation sent
    /// (a member leads a term at most once; its vote is durable). A request of an
    /// older term is answered by a `StaleTerm` notice, which carries no round.
    /// Invariant: every pending read's `round <= read_round + 1`, with equality only
    /// while `round_unsent`.
    pub(super) read_round: u64,
    /// True if reads wait in the open round `read_round + 1`, not yet sent.
    pub(super) round_unsent: bool,
    /// Reads whose fate is decided, for `take_read_states`.
    pub(super) ready: Vec<ReadState>,
    /// Followers' requests confirmed, to answer: (follower, batch, read index).
    pub(super) remote_ready: Vec<(NodeId, u64, Index)>,
}

impl ReadIndexes {
    /// Parks a read until the leader commits an entry of its own term.
    pub(super) fn hold(&mut self, who: ReadRef) {
        self.held.push(who);
    }

    /// Reads parked by `hold`, to be recorded now that they may be.
    pub(super) fn take_held(&mut self) -> Vec<ReadRef> {
        std::mem::take(&mut self.held)
    }

    /// Records a read at `commit_index` in the open round (opening one if needed).
    pub(super) fn record(&mut self, who: ReadRef, commit_index: Index) {
        self.round_unsent = true;
        self.pending.push(PendingRead {
            who,
            read_index: commit_index,
            round: self.read_round + 1,
        });
    }

    /// Closes the open round if no earlier round is still in flight; returns true if
    /// it did (its heartbeats must be sent now).
    pub(super) fn close_open_round(&mut self) -> bool {
        let in_flight = self
            .lowest_pending_round()
            .is_some_and(|round| round <= self.read_round);
        if !self.round_unsent || in_flight {
            return false;
        }
        self.read_round += 1;
        self.round_unsent = false;
        true
    }

    /// Serves at once (a single-voter cluster is its own majority).
    pub(super) fn confirm_now(&mut self, who: ReadRef, commit_index: Index) {
        self.confirmed(who, commit_index);
    }

    /// Hands a confirmed read to its owner.
    fn confirmed(&mut self, who: ReadRef, read_index: Index) {
        match who {
            ReadRef::Local(read_id) => self.ready.push(ReadState {
                read_id,
                result: Ok(read_index),
            }),
            ReadRef::Remote { from, batch } => self.remote_ready.push((from, batch, read_index)),
        }
    }

    /// How many followers' requests wait (held or pending).
    pub(super) fn remote_count(&self) -> usize {
        let pending = self.pending.iter().map(|r| r.who);
        let waiting = self.held.iter().copied().chain(pending);
        waiting
            .filter(|who| matches!(who, ReadRef::Remote { .. }))
            .count()
    }

    /// Releases every pending read of a round `<= round`.
    pub(super) fn confirm_through(&mut self, round: u64) {
        let split = self.pending.iter().take_while(|r| r.round <= round).count();
        let confirmed: Vec<PendingRead> = self.pending.drain(..split).collect();
        for r in confirmed {
            self.confirmed(r.who, r.read_index);
        }
    }

    /// The lowest round still waiting, if any.
    pub(super) fn lowest_pending_round(&self) -> Option<u64> {
        self.pending.first().map(|r| r.round)
    }

    /// Leadership is lost: every held or pending read fails, naming the new leader.
    /// Followers' requests are dropped unanswered: each follower fails its reads
    /// when it learns of the new term, or sends its request again.
    pub(super) fn fail_all(&mut self, leader: Option<NodeId>) {
        let err = Err(NotLeader { leader });
        let pending = self.pending.drain(..).map(|r| r.who);
        let all: Vec<ReadRef> = self.held.drain(..).chain(pending).collect();
        for who in all {
            if let ReadRef::Local(read_id) = who {
                self.ready.push(ReadState {
                    read_id,
                    result: err,
                });
            }
        }
        self.remote_ready.clear();
        self.round_unsent = false;
    }

    /// True if reads wait for anything.
    pub(super) fn is_idle(&self) -> bool {
        self.held.is_empty() && self.pending.is_empty() && self.remote_ready.is_empty()
    }

    /// Asserts the bookkeeping's invariants.
    pub(super) fn check_invariants(&self) {
        let mut prev = 0;
        for r in &self.pending {
            assert!(
                r.round >= prev,
                "pending rounds not ascending: {:?}",
                self.pending
            );
            let open = self.read_round + u64::from(self.round_unsent);
            assert!(
                r.round <= open,
                "pending round {} above the open round {open}",
                r.round,
            );
            prev = r.round;
        }
    }
}

impl super::core::Raft {
    /// Leader: takes a read, holding it if no entry of this term is committed yet.
    pub(super) fn start_read(&mut self, who: ReadRef) {
        if self.log.term_at(self.commit_index) == Some(self.current_term) {
            self.record_read(who);
        } else {
            self.reads.hold(who);
        }
    }

    /// Leader: takes a follower's request for a read index (`follower_read.rs`),
    /// unless too many wait already.
    pub(super) fn start_remote_read(&mut self, from: NodeId, batch: u64) {
        if self.reads.remote_count() < MAX_REMOTE_READS {
            self.start_read(ReadRef::Remote { from, batch });
        }
    }

    /// Leader: answers the followers' requests whose round is confirmed.
    pub(super) fn answer_remote_reads(&mut self) {
        for (to, batch, read_index) in std::mem::take(&mut self.reads.remote_ready) {
            let body = MessageBody::ReadIndexResponse { batch, read_index };
            let msg = self.message_to(to, body);
            self.messages.push(msg);
        }
    }

    /// Records a read at the current commit index in the open round.
    fn record_read(&mut self, who: ReadRef) {
        if self.peers_needed() == 0 {
            self.reads.confirm_now(who, self.commit_index);
        } else {
            self.reads.record(who, self.commit_index);
        }
    }

    /// Leader: the first entry of this term committed; held reads may proceed.
    pub(super) fn release_held_reads(&mut self) {
        for who in self.reads.take_held() {
            self.record_read(who);
        }
    }

    /// Sends the heartbeats of the open round at once, rather than on the next tick,
    /// unless an earlier round is still in flight (its confirmation flushes this one).
    pub(super) fn flush_read_round(&mut self) {
        if !self.reads.close_open_round() {
            return;
        }
        for peer in self.peers() {
            self.send_heartbeat(peer);
        }
    }

    /// Leader: releases every round a majority (self included) has acknowledged.
    pub(super) fn confirm_reads(&mut self) {
        if self.reads.lowest_pending_round().is_none() {
            return;
        }
        let needed = self.peers_needed();
        let voters = &self.membership().voters;
        let mut acked: Vec<u64> = self
            .progress
            .iter()
            .filter(|(id, _)| voters.contains(id))
            .map(|(_, pr)| pr.acked_read_round)
            .collect();
        acked.sort_unstable_by(|a, b| b.cmp(a));
        // The leader counts itself while it votes; other voters (only) make up the rest.
        let confirmed = match needed {
            0 => u64::MAX,
            n => acked.get(n - 1).copied().unwrap_or(0),
        };
        self.reads.confirm_through(confirmed);
    }
}
