//! `Raft::check_invariants`: every invariant written on a field, checked at once
//! (O(log length)); the simulator calls it after every step.

use super::core::{Raft, Role};

impl Raft {
    /// Asserts every internal invariant (O(log length)); for tests and the simulator.
    pub fn check_invariants(&self) {
        self.log.check_invariants();
        self.check_indexes();
        match self.role {
            Role::Leader => self.check_leader(),
            Role::Candidate => self.check_candidate(),
            Role::Follower => self.check_follower(),
            Role::PreCandidate => self.check_pre_candidate(),
        }
        self.reads.check_invariants();
        self.check_forwarded_reads();
        if let Some(t) = self.transfer {
            assert_eq!(self.role, Role::Leader, "a non-leader transfers to {t:?}");
            assert_ne!(t.target, self.config.id, "a leader transfers to itself");
        }
        self.forwards.check_invariants(self.role == Role::Leader);
        assert!(
            self.installing.len() <= super::snapshot::MAX_INSTALLING,
            "{} snapshots remembered as being installed",
            self.installing.len()
        );
        assert!(
            self.persist.messages.len() <= super::persist::MAX_WAITING_MESSAGES,
            "{} messages wait for persistence",
            self.persist.messages.len()
        );
        assert!(
            self.persist.confirmed_seq <= self.persist.taken_seq,
            "batch {} confirmed but only {} taken",
            self.persist.confirmed_seq,
            self.persist.taken_seq
        );
    }

    /// Commit, apply and term bounds.
    fn check_indexes(&self) {
        let last = self.log.last_position();
        assert!(
            self.last_applied <= self.commit_index,
            "applied {} above commit {}",
            self.last_applied,
            self.commit_index
        );
        assert!(
            self.commit_index <= last.index,
            "commit {} above last index {}",
            self.commit_index,
            last.index
        );
        assert!(
            self.commit_index >= self.log.base().index,
            "commit {} below the base {}",
            self.commit_index,
            self.log.base().index
        );
        assert!(
            self.log.base().index <= self.snapshot.index
                && self.snapshot.index <= self.last_applied,
            "snapshot {} outside [log base {}, applied {}]",
            self.snapshot.index,
            self.log.base().index,
            self.last_applied
        );
        assert!(
            last.term <= self.current_term,
            "last entry term {} above current term {}",
            last.term,
            self.current_term
        );
    }

    /// A leader voted for itself, appended its no-op, and tracks every other voter.
    fn check_leader(&self) {
        let id = self.config.id;
        assert_eq!(self.leader, Some(id), "leader {id} does not name itself");
        assert_eq!(
            self.voted_for,
            Some(id),
            "leader {id} did not vote for itself"
        );
        let last = self.log.last_position();
        assert_eq!(
            last.term, self.current_term,
            "leader's last entry {last:?} is not of its term"
        );
        let tracked: Vec<_> = self.progress.keys().copied().collect();
        assert_eq!(
            tracked,
            self.peers(),
            "leader {id} tracks the wrong members"
        );
        for pr in self.progress.values() {
            pr.check_invariants(last.index, self.config.max_inflight_appends);
        }
        assert!(
            self.votes.is_empty(),
            "leader {id} keeps votes {:?}",
            self.votes
        );
    }

    /// Forwarded reads wait only on a follower, for the leader (and term) it follows.
    fn check_forwarded_reads(&self) {
        if self.forwarded.is_idle() {
            return;
        }
        let id = self.config.id;
        assert_eq!(
            self.role,
            Role::Follower,
            "{id} forwards reads but is not a follower"
        );
        let leader = self.leader;
        assert!(
            leader.is_some(),
            "follower {id} forwards reads to no leader"
        );
        if let Some(sent_to) = self.forwarded.in_flight_to() {
            assert_eq!(
                Some(sent_to),
                leader.map(|l| (l, self.current_term)),
                "follower {id} waits on a read batch sent to another leader or term"
            );
        }
    }

    /// A candidate voted for itself and knows no leader.
    fn check_candidate(&self) {
        let id = self.config.id;
        assert_eq!(
            self.voted_for,
            Some(id),
            "candidate {id} did not vote for itself"
        );
        assert_eq!(self.leader, None, "candidate {id} knows a leader");
        assert!(self.progress.is_empty(), "candidate {id} has progress");
        assert!(self.reads.is_idle(), "candidate {id} has reads");
    }

    /// A pre-candidate counts itself and knows no leader; its term and vote are a
    /// follower's.
    fn check_pre_candidate(&self) {
        let id = self.config.id;
        assert_eq!(self.leader, None, "pre-candidate {id} knows a leader");
        assert!(self.progress.is_empty(), "pre-candidate {id} has progress");
        assert!(self.reads.is_idle(), "pre-candidate {id} has reads");
        assert_eq!(
            self.votes.get(&id),
            Some(&true),
            "pre-candidate {id} does not count itself"
        );
    }

    /// A follower tracks nobody and serves no reads.
    fn check_follower(&self) {
        let id = self.config.id;
        assert_ne!(self.leader, Some(id), "follower {id} names itself leader");
        assert!(self.progress.is_empty(), "follower {id} has progress");
        assert!(self.reads.is_idle(), "follower {id} has reads");
        assert!(
            self.votes.is_empty(),
            "follower {id} keeps votes {:?}",
            self.votes
        );
    }
}
