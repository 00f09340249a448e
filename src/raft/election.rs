//! Leader election (§5.2, §5.4.1): role changes, RequestVote and its answers.

use super::core::{Raft, Role};
use super::progress::Progress;
use super::{LogPosition, MessageBody, NodeId, Payload, Term};

impl Raft {
    /// Start an election in a new term (§5.2): the election deadline passed, or (with
    /// pre-vote) a majority said it would vote for us.
    pub(super) fn campaign(&mut self) {
        self.campaign_with(false);
    }

    /// [`Raft::campaign`]; `leadership_transfer` marks the RequestVotes of a campaign
    /// the leader asked for (`TimeoutNow`, see `transfer.rs`).
    pub(super) fn campaign_with(&mut self, leadership_transfer: bool) {
        self.become_candidate();
        if self.granted_votes() >= self.quorum() {
            // A single voter is its own majority. With learners to talk to, it leads
            // only once its new term is durable (see `persisted`): every message it
            // sends as leader carries that term.
            if self.peers().is_empty() {
                self.become_leader();
            }
            return;
        }
        let last = self.log.last_position();
        for peer in self.voter_peers() {
            let body = MessageBody::RequestVote {
                last_log_index: last.index,
                last_log_term: last.term,
                leadership_transfer,
            };
            let msg = self.message_to(peer, body);
            // The new term and self-vote must be durable before anyone hears of them.
            self.send_durable(msg);
        }
    }

    /// Follower or (pre-)candidate -> candidate of the next term, voting for itself.
    fn become_candidate(&mut self) {
        assert_ne!(
            self.role,
            Role::Leader,
            "a leader of term {} cannot campaign",
            self.current_term
        );
        self.current_term += 1;
        self.voted_for = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes.clear();
        self.votes.insert(self.config.id, true);
        self.reset_election_deadline();
    }

    /// Candidate -> leader: set up follower progress and append the no-op of §8, whose
    /// commit also commits every earlier entry (§5.4.2) and unblocks ReadIndex (§6.4).
    pub(super) fn become_leader(&mut self) {
        assert_eq!(
            self.role,
            Role::Candidate,
            "only a candidate becomes leader (term {})",
            self.current_term
        );
        assert!(self.reads.is_idle(), "a new leader starts with no reads");
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.votes.clear();
        let last_index = self.log.last_index();
        let now_ms = self.now_ms;
        self.progress = self
            .peers()
            .into_iter()
            .map(|p| (p, Progress::new(last_index, now_ms)))
            .collect();
        // Forwards this member sent as a follower now have an unknown outcome.
        self.settle_forwards();
        self.forwards.new_term();
        self.append_and_replicate(Payload::Noop);
    }

    /// Any role -> follower of `term` (at least the current one), which knows `leader`.
    /// A term change clears the vote (§5.1). A leader's pending reads fail.
    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        assert!(
            term >= self.current_term,
            "become_follower({term}) below current term {}",
            self.current_term
        );
        if term > self.current_term {
            self.current_term = term;
            self.voted_for = None;
        }
        let was = self.role;
        self.role = Role::Follower;
        self.transfer = None;
        self.leader = leader;
        self.votes.clear();
        if was == Role::Leader {
            self.progress.clear();
            self.reads.fail_all(leader);
            self.refuse_received_forwards();
        }
        if was != Role::Follower {
            // A fresh timeout, so a deposed leader does not campaign at once.
            self.reset_election_deadline();
        }
    }

    /// RequestVote of the current term (§5.2, §5.4.1).
    pub(super) fn handle_request_vote(&mut self, candidate: NodeId, candidate_last: LogPosition) {
        let free = self.voted_for.is_none_or(|v| v == candidate);
        // Knowing a leader of this term means it already won; a vote elsewhere could
        // only disrupt it (etcd does the same).
        let no_other_leader = self.leader.is_none_or(|l| l == candidate);
        let grant = free && no_other_leader && self.is_up_to_date(candidate_last);
        if grant {
            if self.role == Role::PreCandidate {
                // Our vote in this term is given: stop asking for the next one.
                self.become_follower(self.current_term, None);
            }
            self.voted_for = Some(candidate);
            self.reset_election_deadline();
        }
        let msg = self.message_to(
            candidate,
            MessageBody::RequestVoteResponse {
                vote_granted: grant,
            },
        );
        // A grant changed the hard state, so this waits for the vote to be durable.
        self.send_durable(msg);
    }

    /// §5.4.1: the candidate's log is at least as up-to-date as ours: a later last
    /// term, or the same last term and at least as long.
    pub(super) fn is_up_to_date(&self, candidate_last: LogPosition) -> bool {
        let ours = self.log.last_position();
        candidate_last.term > ours.term
            || (candidate_last.term == ours.term && candidate_last.index >= ours.index)
    }

    /// An answer to our RequestVote in the current term.
    pub(super) fn handle_request_vote_response(&mut self, voter: NodeId, granted: bool) {
        if self.role != Role::Candidate {
            return; // already won, or stepped down
        }
        self.votes.entry(voter).or_insert(granted);
        if self.granted_votes() >= self.quorum() {
            self.become_leader();
        } else if self.refused_votes() >= self.quorum() {
            // Lost this election; wait for a leader or a fresh timeout.
            self.become_follower(self.current_term, None);
        }
    }

    /// Votes granted to us in this election by voters, our own included.
    pub(super) fn granted_votes(&self) -> usize {
        self.counted_votes(true)
    }

    /// Votes refused us in this election by voters.
    pub(super) fn refused_votes(&self) -> usize {
        self.counted_votes(false)
    }

    /// Answers equal to `granted` from voters of the latest configuration.
    fn counted_votes(&self, granted: bool) -> usize {
        let voters = &self.membership().voters;
        self.votes
            .iter()
            .filter(|&(id, &g)| g == granted && voters.contains(id))
            .count()
    }
}
