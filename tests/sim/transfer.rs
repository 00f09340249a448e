//! Leadership transfer (thesis §3.10) and the membership scenarios around elections:
//! the random transfers the membership sweep makes under every fault, a transfer to a
//! member that is behind, a removed member that keeps campaigning, and the 2015
//! single-server bug, which the simulator must catch once the own-term rule is off.

use raftkv::raft::{InjectedBug, MembershipChange, NodeId, NotLeader, Role, TransferRefused};
use rand::Rng;

use super::cluster::{Cluster, ClusterOptions};
use super::history::Fate;
use super::run::{liveness_phase, scenario};
use super::{ELECTION_MS, ONE_MS};

impl Cluster {
    /// Asks leader `id` to hand leadership to `target` (`None`: the most up-to-date
    /// voter); refusals are part of the game.
    pub fn transfer_leadership(
        &mut self,
        id: NodeId,
        target: Option<NodeId>,
    ) -> Result<NodeId, TransferRefused> {
        let now = self.now_ms;
        let Some(raft) = self.members[id as usize - 1].raft.as_mut() else {
            return Err(TransferRefused::NotLeader(NotLeader { leader: None }));
        };
        let result = raft.transfer_leadership(target, now);
        self.transfers_accepted += u64::from(result.is_ok());
        self.note(format_args!("n{id} transfer to {target:?} -> {result:?}"));
        self.drain(id as usize - 1);
        result
    }
}

/// A random transfer at `leader`: to the most up-to-date voter, or to any member
/// (a learner or the leader itself is refused).
pub fn random_transfer(cluster: &mut Cluster, leader: NodeId, members: &[NodeId]) {
    let target = if members.is_empty() || cluster.rng.gen_bool(0.3) {
        None
    } else {
        Some(members[cluster.rng.gen_range(0..members.len())])
    };
    let _ = cluster.transfer_leadership(leader, target);
}

/// Thesis §3.10: the target lacks the latest entries when the transfer starts. The
/// leader refuses proposals, brings it up to date, and only then does it campaign; it
/// wins the very next term, and no committed entry is lost.
#[test]
fn transfer_to_a_member_that_is_behind() {
    scenario(
        "transfer_to_a_member_that_is_behind",
        51,
        ClusterOptions::reliable(3),
        |c| {
            let old = c.expect_settled_leader(ELECTION_MS);
            let target = if old == 3 { 2 } else { 3 };
            c.one(3, ONE_MS);
            c.net.set_blocked(old, target, true);
            let numbers = c.propose_many(old, 20);
            let last = c.raft(old).last_position().index;
            assert!(c.run_until(ONE_MS, |c| c.raft(old).commit_index() == last));
            assert!(c.raft(target).last_position().index < last, "not behind");
            let term = c.raft(old).term();
            c.net.set_blocked(old, target, false);
            assert_eq!(c.transfer_leadership(old, Some(target)), Ok(target));
            let refused = c.propose_new(old, 8);
            assert_eq!(
                refused,
                Err(NotLeader { leader: None }),
                "a proposal mid-transfer"
            );
            assert!(c.run_until(ELECTION_MS, |c| c.raft(target).term() > term));
            assert!(
                c.raft(target).last_position().index >= last,
                "n{target} campaigned before it held the leader's log"
            );
            assert!(c.run_until(ELECTION_MS, |c| c.leader() == Some(target)));
            assert_eq!(c.raft(target).term(), term + 1, "more than one election");
            for number in numbers {
                assert_eq!(c.fate(number), Fate::Acked, "proposal {number}");
            }
            c.one(3, ONE_MS);
            liveness_phase(c);
        },
    );
}

/// A member removed while cut off never learns it (thesis §4.2.3). Without pre-vote it
/// bumps its term on every timeout; once it can talk again, the others must ignore its
/// vote requests: their term stays, the leader stays, and writes go on.
#[test]
fn a_removed_member_that_keeps_campaigning() {
    let opts = ClusterOptions {
        pre_vote: false,
        ..ClusterOptions::reliable(4)
    };
    scenario("a_removed_member_that_keeps_campaigning", 53, opts, |c| {
        let leader = c.expect_settled_leader(ELECTION_MS);
        let removed = if leader == 4 { 3 } else { 4 };
        c.one(4, ONE_MS);
        let others: Vec<NodeId> = (1..=4).filter(|&id| id != removed).collect();
        c.partition(&[others.clone(), vec![removed]]);
        c.change_membership(leader, MembershipChange::Remove { id: removed });
        assert_eq!(c.changes_accepted, 1, "the removal was refused");
        c.one(3, ONE_MS);
        assert!(!c.raft(leader).membership().contains(removed));
        c.run_for(3 * ELECTION_MS);
        let term = c.raft(leader).term();
        assert!(
            c.raft(removed).term() > term + 2,
            "n{removed} did not campaign while cut off"
        );
        c.heal();
        for _ in 0..10 {
            c.one(3, ONE_MS);
            c.run_for(500);
            for &id in &others {
                assert_eq!(c.raft(id).term(), term, "n{removed} moved n{id}'s term");
            }
            assert_eq!(c.leader(), Some(leader), "n{removed} deposed the leader");
            assert_ne!(c.raft(removed).role(), Role::Leader);
        }
        liveness_phase(c);
    });
}

/// The 2015 bug of the single-server algorithm (Ongaro, raft-dev): voters {1,2,3,4}
/// and learner 5. Leader n1 promotes n5 (D = {1..5}), reaching only n5. n2 wins the
/// next term with n3 and n4, and n4 is cut off before n2's no-op reaches it. Without
/// the own-term rule, n2 at once removes n1 (E = {2,3,4}) and commits E with n3 alone.
/// n1 or n5 then wins a later term under D with n4 and overwrites E: a committed
/// entry lost. With the rule, n2 may not append E before its no-op commits, which it
/// cannot without n4, so nothing is committed that n1 could overwrite.
fn single_server_bug_of_2015(bug: Option<InjectedBug>) {
    let opts = ClusterOptions {
        voters: 4,
        injected_bug: bug,
        ..ClusterOptions::reliable(5)
    };
    scenario("membership_2015_bug", 57, opts, |c| {
        c.elect(1, &[2, 3, 4, 5], ELECTION_MS);
        c.heal();
        c.one(4, ONE_MS);
        let add = MembershipChange::AddLearner {
            id: 5,
            address: "sim:5".to_string(),
        };
        c.change_membership(1, add);
        c.one(5, ONE_MS);
        c.partition(&[vec![1, 5], vec![2, 3, 4]]);
        c.change_membership(1, MembershipChange::Promote { id: 5 });
        assert_eq!(c.changes_accepted, 2, "the promotion was refused");
        assert!(c.run_until(ONE_MS, |c| c.raft(5).membership().is_voter(5)));
        let d_term = c.raft(1).term();
        c.star(2, &[3, 4]);
        c.expect_leader_in(&[2], d_term, ELECTION_MS);
        // n2's no-op is on its way: n4 never gets it.
        c.partition(&[vec![2, 3], vec![4], vec![1, 5]]);
        c.change_membership(2, MembershipChange::Remove { id: 1 });
        let accepted = c.changes_accepted == 3;
        assert_eq!(accepted, bug.is_some(), "the own-term rule did not decide");
        c.run_for(ELECTION_MS / 5);
        c.partition(&[vec![2, 3], vec![1, 4, 5]]);
        let e_term = c.raft(2).term();
        c.expect_leader_in(&[1, 5], e_term, 4 * ELECTION_MS);
        c.run_for(ELECTION_MS / 5);
        liveness_phase(c);
    });
}

/// With the own-term rule, the 2015 sequence commits nothing that is later lost.
#[test]
fn membership_2015_bug_is_prevented_by_the_own_term_rule() {
    single_server_bug_of_2015(None);
}

/// Without it (`InjectedBug::SkipOwnTermRule`), the same sequence loses a committed
/// entry, and a safety check (not a liveness one) says so.
#[test]
fn membership_2015_bug_is_caught_without_the_own_term_rule() {
    let bug = Some(InjectedBug::SkipOwnTermRule);
    let panic = std::panic::catch_unwind(|| single_server_bug_of_2015(bug))
        .expect_err("the simulator missed the 2015 bug");
    let what = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    let first = what
        .lines()
        .find(|l| l.contains("simulation failed"))
        .unwrap_or_default();
    println!("caught: {first}");
    assert!(
        first.contains("committed") && !first.contains("liveness"),
        "not caught by a safety check: {first}"
    );
}
