//! State digest checks carried by replication messages: Raft itself knows nothing of
//! the state machine; the runtime tells it its latest check (the index of a check
//! entry and the state digest there) and Raft attaches it to every AppendEntries and
//! AppendEntriesResponse it sends. What peers attach is collected for the runtime,
//! which compares (see `node::integrity`). No extra message is ever sent for a check.

use serde::{Deserialize, Serialize};

use super::core::{Raft, Role};
use super::message::{Message, MessageBody};
use super::types::{Index, NodeId};

/// Most reports kept between two [`Raft::take_digest_reports`]; older ones are dropped
/// (each member re-sends its latest check on every message, so nothing is lost for
/// good).
pub const MAX_DIGEST_REPORTS: usize = 64;

/// A member's state digest at the index of a check entry it applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestCheck {
    /// Index of the check entry.
    pub index: Index,
    /// The member's state digest right after applying it.
    pub digest: u64,
}

/// This member's latest check and the peers' reports not yet taken.
#[derive(Debug, Default)]
pub(super) struct DigestChecks {
    /// Attached to outgoing AppendEntries and AppendEntriesResponse.
    pub(super) local: Option<DigestCheck>,
    /// (sender, its check), oldest first, at most [`MAX_DIGEST_REPORTS`].
    reports: Vec<(NodeId, DigestCheck)>,
    /// Set by [`Raft::withdraw`]: never campaign.
    withdrawn: bool,
}

impl Raft {
    /// Sets the check attached to this member's replication messages from now on: the
    /// latest check entry it applied and its digest there.
    pub fn set_digest_check(&mut self, check: DigestCheck) {
        self.digests.local = Some(check);
    }

    /// The checks peers attached to the messages stepped since the last call, oldest
    /// first: from the leader on a follower, from followers on the leader.
    pub fn take_digest_reports(&mut self) -> Vec<(NodeId, DigestCheck)> {
        std::mem::take(&mut self.digests.reports)
    }

    /// A member whose state diverged withdraws from leadership for good (until it
    /// restarts): a leader becomes a follower of its current term (its log and vote
    /// are untouched), and it never starts an election again; it still votes and
    /// replicates, so the others keep their majority.
    pub fn withdraw(&mut self) {
        self.digests.withdrawn = true;
        if self.role == Role::Leader {
            self.become_follower(self.current_term, None);
        }
    }

    /// True unless [`Raft::withdraw`] was called: this member may lead.
    pub(super) fn may_lead(&self) -> bool {
        !self.digests.withdrawn
    }

    /// An election timeout: campaigns, unless [`Raft::withdraw`] was called.
    pub(super) fn election_timeout_unless_withdrawn(&mut self) {
        if self.digests.withdrawn {
            self.reset_election_deadline();
        } else {
            self.election_timeout();
        }
    }

    /// Collects the check a current-term AppendEntries or its response carries.
    pub(super) fn note_digest_report(&mut self, msg: &Message) {
        let check = match &msg.body {
            MessageBody::AppendEntries { check, .. } => *check,
            MessageBody::AppendEntriesResponse { check, .. } => *check,
            _ => None,
        };
        if let Some(check) = check {
            if self.digests.reports.len() >= MAX_DIGEST_REPORTS {
                self.digests.reports.remove(0);
            }
            self.digests.reports.push((msg.from, check));
        }
    }
}
