//! The membership tests of the simulator: the randomized membership sweep, the seeds
//! it once failed on, the injected bug it must catch, and the named scenarios
//! (removing the leader, a learner that never catches up).

use raftkv::raft::Role;

use super::cluster::ClusterOptions;
use super::membership;
use super::run::{liveness_phase, scenario};
use super::{env_u64, ELECTION_MS, ONE_MS};

/// Random membership changes under every fault (see `sim/membership.rs`):
/// `RAFTKV_SIM_SEEDS` seeds (default 100), or `RAFTKV_SIM_SEED` alone.
#[test]
fn membership_sweep() {
    if let Some(seed) = env_u64("RAFTKV_SIM_SEED") {
        println!("{}", membership::run(seed, None));
        return;
    }
    let count = env_u64("RAFTKV_SIM_SEEDS").unwrap_or(100);
    let base = env_u64("RAFTKV_SIM_SEED_BASE").unwrap_or(0);
    for seed in base..base + count {
        let summary = membership::run(seed, None);
        println!("sim membership seed={seed} ok: {summary}");
    }
}

/// Membership seeds that once failed, replayed on every run. 2031: a leader removing
/// itself committed with the new configuration's quorum (n1 alone of {1}) before that
/// configuration was durable anywhere; the durability check wrongly asked for a strict
/// majority of the old configuration {1, 3}, though n1 is in every quorum of it.
/// 6622: a learner added late, with no snapshot and one 64-byte entry per append,
/// was still catching up entry by entry when the fixed liveness deadline ran out.
#[test]
fn membership_regression_seeds() {
    let seeds: Vec<u64> = vec![2031, 6622];
    for seed in seeds {
        let summary = membership::run(seed, None);
        println!("sim membership seed={seed} ok: {summary}");
    }
}

/// The deliberately injected bug `LearnersCountInCommit` (learners counted in commit
/// quorums): the membership sweep must catch it within its first seeds.
#[test]
fn membership_sweep_catches_learners_counted_in_commit() {
    let bug = Some(raftkv::raft::InjectedBug::LearnersCountInCommit);
    let caught = (0..100).find_map(|seed| {
        let panic = std::panic::catch_unwind(|| membership::run(seed, bug)).err()?;
        let what = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        let first = what
            .lines()
            .find(|l| l.contains("simulation failed"))?
            .to_string();
        Some((seed, first))
    });
    let Some((seed, first)) = caught else {
        panic!("no seed caught learners counted in commit quorums");
    };
    println!("seed {seed} caught it: {first}");
    assert!(
        !first.contains("liveness"),
        "caught by a liveness check, not a safety check: {first}"
    );
}

/// Removing the leader (thesis §4.2.2): it keeps leading until its removal commits,
/// then steps down and never campaigns again; the other two elect a leader and commit.
#[test]
fn membership_remove_the_leader() {
    scenario(
        "membership_remove_the_leader",
        41,
        ClusterOptions::reliable(3),
        |c| {
            let old = c.expect_settled_leader(ELECTION_MS);
            c.one(3, ONE_MS);
            c.change_membership(old, raftkv::raft::MembershipChange::Remove { id: old });
            assert_eq!(c.changes_accepted, 1, "the removal was refused");
            let moved = c.run_until(ONE_MS, |c| {
                c.leader().is_some_and(|l| l != old) && c.raft(old).role() == Role::Follower
            });
            assert!(moved, "no new leader after removing n{old}");
            c.run_for(5 * ELECTION_MS / 2);
            let new = c.leader().expect("a leader");
            assert_ne!(new, old);
            assert!(!c.raft(new).membership().contains(old));
            assert_eq!(
                c.raft(old).role(),
                Role::Follower,
                "a removed member campaigned"
            );
            liveness_phase(c);
        },
    );
}

/// A member added as a learner that never hears from the leader (its inbound link is
/// cut) stays a learner: its promotion is refused as behind, and the cluster commits
/// writes without it.
#[test]
fn membership_learner_that_never_catches_up() {
    let opts = ClusterOptions {
        voters: 3,
        ..ClusterOptions::reliable(4)
    };
    scenario("membership_learner_that_never_catches_up", 43, opts, |c| {
        let leader = c.expect_settled_leader(ELECTION_MS);
        for id in 1..=3 {
            c.net.set_blocked(id, 4, true);
        }
        c.one(3, ONE_MS);
        let add = raftkv::raft::MembershipChange::AddLearner {
            id: 4,
            address: "sim:4".to_string(),
        };
        c.change_membership(leader, add);
        c.one(3, ONE_MS);
        c.change_membership(leader, raftkv::raft::MembershipChange::Promote { id: 4 });
        assert_eq!(
            c.changes_accepted, 1,
            "a learner that holds nothing was promoted"
        );
        assert!(c.raft(leader).membership().learners.contains(&4));
        c.one(3, ONE_MS);
        assert_eq!(c.raft(4).last_position().index, 0, "n4 got entries");
    });
}
