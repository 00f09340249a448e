//! Leadership transfer (Ongaro thesis §3.10): a leader hands its role to a chosen
//! voter, so a planned restart or a move costs no election timeout.
//!
//! 1. The leader stops taking new proposals: a proposal is refused like one made to a
//!    follower, with no leader named ([`NotLeader`] with `leader: None`), so clients
//!    retry elsewhere or later. Reads are still served: they append nothing.
//! 2. It brings the target fully up to date (ordinary replication, snapshots included).
//! 3. Once the target holds its whole log, it sends `TimeoutNow`.
//! 4. The target campaigns at once, without pre-vote, and its RequestVotes carry
//!    `leadership_transfer: true`, so voters that heard from the leader moments ago do
//!    not drop them as disruptive (thesis §4.2.3, see `Raft::ignores`). Since its log
//!    is as up to date as the leader's, it wins unless something else moved.
//! 5. The transfer is abandoned, and proposals resume, if the leader is still leading
//!    after the longest election timeout.

use std::fmt;

use super::core::{NotLeader, Raft, Role};
use super::{MessageBody, NodeId};

/// A leadership transfer in progress, on the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Transfer {
    /// The voter that is to lead.
    pub(super) target: NodeId,
    /// When the leader gives up and takes proposals again.
    pub(super) deadline_ms: u64,
}

/// Why [`Raft::transfer_leadership`] was refused. Nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferRefused {
    /// This member is not the leader.
    NotLeader(NotLeader),
    /// The target already leads: this member.
    AlreadyLeader(NodeId),
    /// The target is in the configuration as a learner: learners never lead.
    NotVoter(NodeId),
    /// The target is not a member of the latest configuration.
    NotMember(NodeId),
    /// No target was named and the leader is the only voter.
    NoOtherVoter,
    /// A transfer to another voter is in progress.
    InProgress(NodeId),
}

impl fmt::Display for TransferRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransferRefused::NotLeader(nl) => match nl.leader {
                Some(l) => write!(f, "not the leader; n{l} is"),
                None => write!(f, "not the leader, and no leader is known"),
            },
            TransferRefused::AlreadyLeader(id) => write!(f, "n{id} already leads"),
            TransferRefused::NotVoter(id) => {
                write!(
                    f,
                    "n{id} is a learner; only a voter can lead (promote it first)"
                )
            }
            TransferRefused::NotMember(id) => write!(f, "n{id} is not a member of the cluster"),
            TransferRefused::NoOtherVoter => {
                write!(
                    f,
                    "this leader is the only voter: there is nobody to hand over to"
                )
            }
            TransferRefused::InProgress(id) => {
                write!(f, "a transfer to n{id} is in progress; wait for it to end")
            }
        }
    }
}

impl Raft {
    /// Leader: starts handing leadership to `target`, or, if `None`, to the voter
    /// whose log is the most up to date (the highest match index; the lowest id on a
    /// tie). Returns the target. Asking again for the transfer in progress is not an
    /// error. From now until it ends, [`Raft::propose`] refuses; it ends when this
    /// member stops leading, or after the longest election timeout.
    pub fn transfer_leadership(
        &mut self,
        target: Option<NodeId>,
        now_ms: u64,
    ) -> Result<NodeId, TransferRefused> {
        self.observe_time(now_ms);
        if self.role != Role::Leader {
            return Err(TransferRefused::NotLeader(NotLeader {
                leader: self.leader,
            }));
        }
        let target = match target {
            Some(id) => self.check_transfer_target(id)?,
            None => self
                .most_up_to_date_voter()
                .ok_or(TransferRefused::NoOtherVoter)?,
        };
        match self.transfer {
            Some(t) if t.target == target => return Ok(target),
            Some(t) => return Err(TransferRefused::InProgress(t.target)),
            None => {}
        }
        self.transfer = Some(Transfer {
            target,
            deadline_ms: self
                .now_ms
                .saturating_add(self.config.election_timeout_max_ms),
        });
        if !self.send_timeout_now_if_caught_up(target) {
            // Bring it up to date; its acknowledgements lead back here.
            while self.send_append(target) {}
        }
        Ok(target)
    }

    /// The target of the transfer in progress, if any.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|t| t.target)
    }

    /// `id` if it may be handed leadership: another voter of the latest configuration.
    fn check_transfer_target(&self, id: NodeId) -> Result<NodeId, TransferRefused> {
        let m = self.membership();
        if id == self.config.id {
            Err(TransferRefused::AlreadyLeader(id))
        } else if m.is_voter(id) {
            Ok(id)
        } else if m.contains(id) {
            Err(TransferRefused::NotVoter(id))
        } else {
            Err(TransferRefused::NotMember(id))
        }
    }

    /// The other voter with the highest match index (the lowest id on a tie).
    fn most_up_to_date_voter(&self) -> Option<NodeId> {
        self.voter_peers().into_iter().max_by_key(|id| {
            let matched = self.progress.get(id).map_or(0, |pr| pr.match_index);
            (matched, std::cmp::Reverse(*id))
        })
    }

    /// Leader: sends `TimeoutNow` to `peer` if it is the transfer's target and holds
    /// the whole log. Sent again on each later acknowledgement while the transfer
    /// lasts, in case one was lost; a copy arriving after the target campaigned is of
    /// an older term and is dropped there.
    pub(super) fn send_timeout_now_if_caught_up(&mut self, peer: NodeId) -> bool {
        if self.transfer.map(|t| t.target) != Some(peer) {
            return false;
        }
        let last = self.log.last_index();
        if self.progress.get(&peer).map(|pr| pr.match_index) != Some(last) {
            return false;
        }
        let msg = self.message_to(peer, MessageBody::TimeoutNow);
        self.messages.push(msg);
        true
    }

    /// Leader, on a tick: gives up a transfer whose time is up; proposals resume.
    pub(super) fn expire_transfer(&mut self) {
        if self.transfer.is_some_and(|t| self.now_ms >= t.deadline_ms) {
            self.transfer = None;
        }
    }

    /// Leader: when the transfer in progress will be given up (`u64::MAX` if none).
    pub(super) fn transfer_deadline_ms(&self) -> u64 {
        self.transfer.map_or(u64::MAX, |t| t.deadline_ms)
    }

    /// `TimeoutNow` of the current term: the leader asks us to take over. A voter
    /// that may campaign does so at once, skipping pre-vote; anyone else ignores it.
    pub(super) fn handle_timeout_now(&mut self, from: NodeId) {
        let leader_asks = self.leader.is_none_or(|l| l == from);
        if self.role == Role::Follower
            && leader_asks
            && self.is_voter()
            && self.may_campaign()
            && self.may_lead()
        {
            self.campaign_with(true);
        }
    }
}
