//! Cluster membership kept in the log (Ongaro thesis §4.2–4.4): single-server changes,
//! learners, and which configuration each index is under.
//!
//! A configuration is an ordinary log entry ([`Payload::Membership`]). A member uses
//! the latest configuration in its log, committed or not (§4.1), and falls back to
//! the previous one if that entry is truncated; the configuration as of the log base
//! travels with the snapshot. A leader appends a change only when:
//! - the previous change is committed (one change at a time, §4.2), and
//! - an entry of its own term is committed: the 2015 fix to the single-server
//!   algorithm (Ongaro, raft-dev, "bug in single-server membership changes"). Without
//!   it, a new leader can append a change while an uncommitted change of an earlier
//!   leader is still in some logs, and the two can form disjoint majorities.
//!
//! Learners receive the log and snapshots but count in no quorum and never campaign.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::core::{NotLeader, Raft, Role};
use super::progress::Progress;
use super::{Entry, Index, InjectedBug, LogPosition, Message, MessageBody, NodeId, Payload};

/// Most members (voters and learners together) in one configuration.
pub const MAX_MEMBERS: usize = 15;
/// Longest member address, in bytes.
pub const MAX_ADDRESS_BYTES: usize = 255;

/// One configuration: who votes, who only listens, how to reach each member, and the
/// highest id ever used (ids are never reused, so a removed id cannot come back).
/// Bounded by [`MAX_MEMBERS`] and [`MAX_ADDRESS_BYTES`], so it fits a message.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// Members that count in quorums and may campaign.
    pub voters: BTreeSet<NodeId>,
    /// Members that receive the log but do not vote.
    pub learners: BTreeSet<NodeId>,
    /// Each member's address as given when it was added (empty for bootstrap members,
    /// which the runtime reaches through its `--peers` list).
    pub addresses: BTreeMap<NodeId, String>,
    /// The highest id that has ever been a member: a new member's id must be above.
    pub max_id: NodeId,
}

impl Membership {
    /// The configuration a new cluster starts with: `voters`, no learners.
    pub fn bootstrap(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        let voters: BTreeSet<NodeId> = voters.into_iter().collect();
        Membership {
            max_id: voters.last().copied().unwrap_or(0),
            voters,
            ..Membership::default()
        }
    }

    /// True if `id` is a voter or a learner.
    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    /// True if `id` votes.
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// A majority of the voters (1 for an empty configuration, which never commits).
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The configuration after `change`, or why it cannot be made.
    pub fn apply(&self, change: &MembershipChange) -> Result<Membership, ChangeRefused> {
        let mut next = self.clone();
        match change {
            MembershipChange::AddLearner { id, address } => {
                if self.contains(*id) {
                    return Err(ChangeRefused::AlreadyMember(*id));
                }
                if *id <= self.max_id {
                    return Err(ChangeRefused::IdUsed {
                        id: *id,
                        max_id: self.max_id,
                    });
                }
                if self.voters.len() + self.learners.len() >= MAX_MEMBERS {
                    return Err(ChangeRefused::TooManyMembers);
                }
                if address.is_empty() || address.len() > MAX_ADDRESS_BYTES {
                    return Err(ChangeRefused::BadAddress(address.len()));
                }
                next.max_id = *id;
                next.learners.insert(*id);
                next.addresses.insert(*id, address.clone());
            }
            MembershipChange::Promote { id } => {
                if !next.learners.remove(id) {
                    return Err(ChangeRefused::NotLearner(*id));
                }
                next.voters.insert(*id);
            }
            MembershipChange::Remove { id } => {
                if !self.contains(*id) {
                    return Err(ChangeRefused::NotMember(*id));
                }
                if self.voters.len() == 1 && self.is_voter(*id) {
                    return Err(ChangeRefused::LastVoter(*id));
                }
                next.voters.remove(id);
                next.learners.remove(id);
                next.addresses.remove(id);
            }
        }
        Ok(next)
    }
}

/// One single-server change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add a new member, as a learner, reachable at `address`.
    AddLearner {
        /// Its id: never used before in this cluster.
        id: NodeId,
        /// Where peers reach it (`host:port`).
        address: String,
    },
    /// Make a caught-up learner a voter.
    Promote {
        /// The learner.
        id: NodeId,
    },
    /// Remove a voter or learner; its id is retired.
    Remove {
        /// The member.
        id: NodeId,
    },
}

/// Why a membership change was refused. Nothing was appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeRefused {
    /// This member is not the leader.
    NotLeader(NotLeader),
    /// The leader has not yet committed an entry of its own term (retry shortly).
    NoCommitInTerm,
    /// The change at this index is not committed yet: one change at a time.
    ChangeInProgress(Index),
    /// The id is already a member.
    AlreadyMember(NodeId),
    /// The id is not above the highest id ever used: ids are never reused.
    IdUsed {
        /// The id asked for.
        id: NodeId,
        /// The highest id ever used.
        max_id: NodeId,
    },
    /// The configuration already has [`MAX_MEMBERS`] members.
    TooManyMembers,
    /// The address is empty or longer than [`MAX_ADDRESS_BYTES`] (its length).
    BadAddress(usize),
    /// The id is not a member.
    NotMember(NodeId),
    /// The id is not a learner, so it cannot be promoted.
    NotLearner(NodeId),
    /// Removing the only voter would leave nobody to commit anything.
    LastVoter(NodeId),
    /// The learner holds `matched` of the leader's `last` entries: under 90%.
    LearnerBehind {
        /// The learner.
        id: NodeId,
        /// Its match index.
        matched: Index,
        /// The leader's last index.
        last: Index,
    },
    /// After the change, the voters heard from within an election timeout (the
    /// leader included) would be `live`, fewer than the `quorum` it needs.
    QuorumAtRisk {
        /// Live voters after the change.
        live: usize,
        /// The quorum after the change.
        quorum: usize,
    },
}

impl std::fmt::Display for ChangeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeRefused::NotLeader(nl) => match nl.leader {
                Some(l) => write!(f, "not the leader; n{l} is"),
                None => write!(f, "not the leader, and no leader is known"),
            },
            ChangeRefused::NoCommitInTerm => write!(
                f,
                "the leader has not committed an entry of its term yet; retry shortly"
            ),
            ChangeRefused::ChangeInProgress(i) => write!(
                f,
                "the change at index {i} is not committed yet; one change at a time"
            ),
            ChangeRefused::AlreadyMember(id) => write!(f, "n{id} is already a member"),
            ChangeRefused::IdUsed { id, max_id } => write!(
                f,
                "id {id} may have been a member before (ids up to {max_id} were used); \
                 ids are never reused, pick one above {max_id}"
            ),
            ChangeRefused::TooManyMembers => {
                write!(f, "the cluster already has {MAX_MEMBERS} members")
            }
            ChangeRefused::BadAddress(len) => write!(
                f,
                "an address must be 1 to {MAX_ADDRESS_BYTES} bytes, not {len}"
            ),
            ChangeRefused::NotMember(id) => write!(f, "n{id} is not a member"),
            ChangeRefused::NotLearner(id) => {
                write!(f, "n{id} is not a learner; only learners are promoted")
            }
            ChangeRefused::LastVoter(id) => write!(f, "n{id} is the only voter"),
            ChangeRefused::LearnerBehind { id, matched, last } => write!(
                f,
                "n{id} is behind: it holds {matched} of {last} entries (90% needed)"
            ),
            ChangeRefused::QuorumAtRisk { live, quorum } => write!(
                f,
                "only {live} voters would be live after the change, fewer than the \
                 quorum of {quorum}"
            ),
        }
    }
}

/// Which configuration each part of the log is under: the one as of the log base,
/// then every configuration entry in the log, in index order.
#[derive(Debug)]
pub(super) struct MembershipLog {
    /// The configuration as of the log base (from the snapshot, or bootstrap).
    base: Membership,
    /// `(index, configuration)` of each configuration entry after the base, ascending.
    changes: Vec<(Index, Membership)>,
}

impl MembershipLog {
    /// The configuration `base` at the log base, then those in `entries`.
    pub(super) fn new(base: Membership, entries: &[Entry]) -> MembershipLog {
        let mut log = MembershipLog {
            base,
            changes: Vec::new(),
        };
        entries.iter().for_each(|e| log.appended(e));
        log
    }

    /// The latest configuration, committed or not.
    pub(super) fn current(&self) -> &Membership {
        self.changes.last().map_or(&self.base, |(_, m)| m)
    }

    /// Index of the latest configuration entry (0 if it is the base's).
    pub(super) fn current_index(&self) -> Index {
        self.changes.last().map_or(0, |&(i, _)| i)
    }

    /// The configuration in force at `index` (at or after the base).
    pub(super) fn at(&self, index: Index) -> &Membership {
        self.changes
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or(&self.base, |(_, m)| m)
    }

    /// Notes an appended entry.
    pub(super) fn appended(&mut self, entry: &Entry) {
        if let Payload::Membership(m) = &entry.payload {
            self.changes.push((entry.index, m.clone()));
        }
    }

    /// Entries from `from` on were removed: their configurations no longer count.
    pub(super) fn truncated(&mut self, from: Index) {
        self.changes.retain(|&(i, _)| i < from);
    }

    /// The log base moved to `through`: fold earlier configurations into the base.
    pub(super) fn compacted(&mut self, through: Index) {
        let keep_from = self.changes.partition_point(|&(i, _)| i <= through);
        if let Some((_, m)) = self.changes.drain(..keep_from).next_back() {
            self.base = m;
        }
    }

    /// A snapshot replaced the whole log; `base` is its configuration.
    pub(super) fn reset(&mut self, base: Membership) {
        self.base = base;
        self.changes.clear();
    }
}

impl Raft {
    /// The latest configuration in the log, committed or not.
    pub fn membership(&self) -> &Membership {
        self.log.memberships().current()
    }

    /// The configuration as of the commit index: what this member knows is agreed.
    pub fn committed_membership(&self) -> &Membership {
        self.log.memberships().at(self.commit_index)
    }

    /// The configuration in force at `index` (the base's for an index at or below
    /// the log base): what a snapshot taken at `index` stores.
    pub fn membership_at(&self, index: Index) -> &Membership {
        self.log.memberships().at(index)
    }

    /// The configuration as of the latest snapshot: what the runtime stores with it
    /// and hands back in `InitialState::membership` on a restart.
    pub fn snapshot_membership(&self) -> &Membership {
        self.log.memberships().at(self.snapshot.index)
    }

    /// Leader: appends a single-server change (thesis §4.2) and returns its position;
    /// it takes effect at once, and the next may be proposed once it commits.
    pub fn propose_membership(
        &mut self,
        change: MembershipChange,
        now_ms: u64,
    ) -> Result<LogPosition, ChangeRefused> {
        self.observe_time(now_ms);
        if self.role != Role::Leader || self.transfer.is_some() {
            // During a leadership transfer a leader takes no proposal (`transfer.rs`).
            let leader = self.leader.filter(|_| self.transfer.is_none());
            return Err(ChangeRefused::NotLeader(NotLeader { leader }));
        }
        let own_term_rule = self.config.injected_bug != Some(InjectedBug::SkipOwnTermRule);
        if own_term_rule && self.log.term_at(self.commit_index) != Some(self.current_term) {
            return Err(ChangeRefused::NoCommitInTerm);
        }
        let pending = self.log.memberships().current_index();
        if pending > self.commit_index {
            return Err(ChangeRefused::ChangeInProgress(pending));
        }
        let next = self.membership().apply(&change)?;
        self.check_change_safety(&change, &next)?;
        let pos = self.append_and_replicate(Payload::Membership(next));
        self.sync_progress();
        Ok(pos)
    }

    /// Refuses a promotion of a learner under 90% of the log, and any change after
    /// which the voters heard from recently would not reach the new quorum.
    fn check_change_safety(
        &self,
        change: &MembershipChange,
        next: &Membership,
    ) -> Result<(), ChangeRefused> {
        let last = self.log.last_index();
        if let MembershipChange::Promote { id } = change {
            let matched = self.progress.get(id).map_or(0, |pr| pr.match_index);
            if matched.saturating_mul(10) < last.saturating_mul(9) {
                return Err(ChangeRefused::LearnerBehind {
                    id: *id,
                    matched,
                    last,
                });
            }
        }
        let recent = self
            .now_ms
            .saturating_sub(self.config.election_timeout_max_ms);
        let live = next
            .voters
            .iter()
            .filter(|&&v| {
                v == self.config.id
                    || self
                        .progress
                        .get(&v)
                        .is_some_and(|pr| pr.last_heard_ms >= recent)
            })
            .count();
        if live < next.quorum() {
            return Err(ChangeRefused::QuorumAtRisk {
                live,
                quorum: next.quorum(),
            });
        }
        Ok(())
    }

    /// Leader: one progress record per member of the latest configuration or of the
    /// committed one (a removed member still hears of its removal), no others; then
    /// confirms the read rounds the new quorum already acknowledged.
    pub(super) fn sync_progress(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let targets = self.replication_targets();
        self.progress.retain(|id, _| targets.contains(id));
        let (base, now_ms) = (self.log.base().index, self.now_ms);
        for id in targets {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.progress.entry(id) {
                // A new member most likely holds nothing: start probing at the
                // base, so it gets the whole log (or, if it rejects, the snapshot).
                slot.insert(Progress::new(base, now_ms));
                self.send_append(id);
            }
        }
        // The quorum may have shrunk: read rounds waiting for a voter that left (and
        // may never answer) can hold already (membership sweep seed 3089).
        self.confirm_reads();
    }

    /// Every other member of the latest configuration or of the committed one.
    pub(super) fn replication_targets(&self) -> BTreeSet<NodeId> {
        let memberships = self.log.memberships();
        let current = memberships.current();
        let committed = memberships.at(self.commit_index);
        current
            .voters
            .iter()
            .chain(&current.learners)
            .chain(&committed.voters)
            .chain(&committed.learners)
            .copied()
            .filter(|&id| id != self.config.id)
            .collect()
    }

    /// Leader, after its commit index advanced: drops progress of members whose
    /// removal committed, and steps down if its own removal (or demotion) committed
    /// (thesis §4.2.2).
    pub(super) fn membership_committed(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let memberships = self.log.memberships();
        if memberships.current_index() > self.commit_index {
            return;
        }
        if !memberships.current().is_voter(self.config.id) {
            self.become_follower(self.current_term, None);
            return;
        }
        self.sync_progress();
    }

    /// True if `msg` must be dropped unread: it asks for a vote and comes from a
    /// member removed by a committed change (an id used before and no longer in the
    /// committed configuration), or it is a RequestVote of a higher term while this
    /// follower heard from its leader within the minimum election timeout (thesis
    /// §4.2.3: a removed member that does not know it was removed must not depose a
    /// healthy leader by bumping terms) that the leader did not ask for with
    /// `TimeoutNow` (`transfer.rs`). Everything else is heard: a leader's
    /// AppendEntries must be, even from a member an uncommitted change here removed
    /// (a new leader truncates that change; simulator seed 16 of `membership_sweep`).
    pub(super) fn ignores(&self, msg: &Message) -> bool {
        let asks_vote = matches!(
            msg.body,
            MessageBody::RequestVote { .. } | MessageBody::PreVote { .. }
        );
        let m = self.log.memberships().at(self.commit_index);
        if asks_vote && msg.from <= m.max_id && !m.contains(msg.from) {
            return true;
        }
        let lease = self
            .leader_heard_ms
            .saturating_add(self.config.election_timeout_min_ms);
        let transfer = matches!(
            msg.body,
            MessageBody::RequestVote {
                leadership_transfer: true,
                ..
            }
        );
        matches!(msg.body, MessageBody::RequestVote { .. })
            && !transfer
            && msg.term > self.current_term
            && self.role == Role::Follower
            && self.leader.is_some()
            && self.now_ms < lease
    }

    /// True if this member may start an election: it votes in its latest
    /// configuration, or in the committed one (thesis §4.2.2: a member whose removal
    /// is not committed may still be needed to commit it; once it knows the removal
    /// committed, it never campaigns again). Learners never campaign.
    pub(super) fn may_campaign(&self) -> bool {
        let id = self.config.id;
        self.is_voter() || self.log.memberships().at(self.commit_index).is_voter(id)
    }

    /// True if this member votes in its latest configuration.
    pub(super) fn is_voter(&self) -> bool {
        self.membership().is_voter(self.config.id)
    }

    /// The other voters of the latest configuration.
    pub(super) fn voter_peers(&self) -> Vec<NodeId> {
        let id = self.config.id;
        self.membership()
            .voters
            .iter()
            .copied()
            .filter(|&v| v != id)
            .collect()
    }

    /// Leader: how many other voters must agree for a quorum (the leader counts
    /// itself only while it is a voter; a leader being removed does not).
    pub(super) fn peers_needed(&self) -> usize {
        self.quorum() - usize::from(self.is_voter())
    }
}
