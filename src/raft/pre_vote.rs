//! Pre-vote (Ongaro thesis §9.6): a member whose election timer fires first asks the
//! others whether they would vote for it, and starts a real election (term + 1, §5.2)
//! only on a majority of yeses.
//!
//! Why: without it, a member cut off from the cluster (or paused) bumps its term on
//! every timeout; when it can talk again, its higher term makes the healthy leader
//! step down (§5.1) and the cluster is unavailable for an election it did not need.
//! A pre-vote promises nothing, so neither side changes its term, vote or election
//! deadline, and nothing waits for storage.
//!
//! A member grants a pre-vote iff it could grant the real vote (§5.4.1 up-to-date log,
//! and no other vote or leader in that term) and it has no live leader: it is not the
//! leader itself, and it has not heard from the leader within the minimum election
//! timeout (the leader lease; a follower that hears its leader would not time out).

use super::core::{Raft, Role};
use super::{LogPosition, Message, MessageBody, NodeId, Term};

impl Raft {
    /// The election deadline passed: ask for pre-votes first when pre-vote is on and
    /// someone else's answer is needed; otherwise campaign at once.
    pub(super) fn election_timeout(&mut self) {
        if self.config.pre_vote && self.peers_needed() > 0 {
            self.pre_campaign();
        } else {
            self.campaign();
        }
    }

    /// Becomes a pre-candidate and sends PreVote for the next term to every peer. Our
    /// term and vote stay; a fresh deadline bounds the round like an election.
    fn pre_campaign(&mut self) {
        assert_ne!(
            self.role,
            Role::Leader,
            "a leader of term {} cannot campaign",
            self.current_term
        );
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.config.id, true);
        self.reset_election_deadline();
        let last = self.log.last_position();
        for peer in self.voter_peers() {
            let msg = Message {
                from: self.config.id,
                to: peer,
                term: self.current_term + 1,
                body: MessageBody::PreVote {
                    last_log_index: last.index,
                    last_log_term: last.term,
                },
            };
            // Promises nothing durable: may leave before our term is even persisted.
            self.messages.push(msg);
        }
    }

    /// Handles what pre-vote exempts from §5.1's term rule; returns true if `msg` was
    /// fully handled. A PreVote never changes our term (whatever term it carries), and
    /// a granted PreVoteResponse carries the term we have not entered yet. Rejections
    /// go the usual way: a higher term in one makes us follow it (as etcd does).
    pub(super) fn step_pre_vote(&mut self, msg: &Message) -> bool {
        match msg.body {
            MessageBody::PreVote {
                last_log_index,
                last_log_term,
            } => {
                let last = LogPosition {
                    term: last_log_term,
                    index: last_log_index,
                };
                self.handle_pre_vote(msg.from, msg.term, last);
                true
            }
            MessageBody::PreVoteResponse { vote_granted: true } => {
                if msg.term == self.current_term + 1 {
                    self.handle_pre_vote_response(msg.from, true);
                }
                true // a grant for any other term is stale
            }
            _ => false,
        }
    }

    /// Answers a PreVote for `term` from `candidate`, changing nothing here.
    fn handle_pre_vote(&mut self, candidate: NodeId, term: Term, last: LogPosition) {
        let grant = self.could_vote_in(term, candidate)
            && !self.in_leader_lease()
            && self.is_up_to_date(last);
        // A grant speaks for the asked term; a refusal tells the sender our term.
        let reply_term = if grant { term } else { self.current_term };
        self.messages.push(Message {
            from: self.config.id,
            to: candidate,
            term: reply_term,
            body: MessageBody::PreVoteResponse {
                vote_granted: grant,
            },
        });
    }

    /// True if a RequestVote of `term` from `candidate` could be granted as far as
    /// terms and votes go: a later term, or this term with our vote free for it and
    /// no leader known (the same rules as `handle_request_vote`).
    fn could_vote_in(&self, term: Term, candidate: NodeId) -> bool {
        term > self.current_term
            || (term == self.current_term
                && self.voted_for.is_none_or(|v| v == candidate)
                && self.leader.is_none())
    }

    /// True while a leader is known to be alive: we lead, or we heard from the
    /// leader within the minimum election timeout.
    pub(super) fn in_leader_lease(&self) -> bool {
        self.role == Role::Leader
            || (self.leader.is_some()
                && self.now_ms
                    < self
                        .leader_heard_ms
                        .saturating_add(self.config.election_timeout_min_ms))
    }

    /// An answer to our PreVote: a majority of grants starts the real election; a
    /// majority of refusals ends the round (wait for a leader or the next timeout).
    pub(super) fn handle_pre_vote_response(&mut self, voter: NodeId, granted: bool) {
        if self.role != Role::PreCandidate {
            return; // already campaigning, or stepped down
        }
        self.votes.entry(voter).or_insert(granted);
        if self.granted_votes() >= self.quorum() {
            self.campaign();
        } else if self.refused_votes() >= self.quorum() {
            self.become_follower(self.current_term, None);
        }
    }
}
