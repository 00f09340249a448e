//! Check-quorum (Ongaro thesis §6.2, etcd's `CheckQuorum`): a leader steps down when
//! it has not heard from a majority, itself included, for an election timeout.
//!
//! Why: a leader cut off from the majority keeps its role forever otherwise. Its
//! ReadIndex rounds and writes can never complete, so they are safe, but its clients
//! wait out their whole deadline instead of being redirected. Stepping down makes it
//! answer "not leader" and lets the clients move on to the majority's leader.
//! The timeout is the longest election timeout: by then a majority that stopped
//! hearing from us may well have elected someone else.

use super::core::{Raft, Role};

impl Raft {
    /// Leader: the time at which, hearing nothing more, it will have lost its quorum.
    /// `u64::MAX` when check-quorum is off or the leader is its own majority.
    pub(super) fn check_quorum_deadline_ms(&self) -> u64 {
        let needed = self.peers_needed();
        if !self.config.check_quorum || self.role != Role::Leader || needed == 0 {
            return u64::MAX;
        }
        let voters = &self.membership().voters;
        let mut heard: Vec<u64> = self
            .progress
            .iter()
            .filter(|(id, _)| voters.contains(id))
            .map(|(_, pr)| pr.last_heard_ms)
            .collect();
        heard.sort_unstable_by(|a, b| b.cmp(a));
        // The leader counts itself while it votes; other voters make up the rest.
        let nth = heard.get(needed - 1).copied().unwrap_or(0);
        nth.saturating_add(self.config.election_timeout_max_ms)
    }

    /// Leader: true if no majority has been heard within the election timeout.
    pub(super) fn lost_quorum(&self) -> bool {
        self.now_ms >= self.check_quorum_deadline_ms()
    }
}
