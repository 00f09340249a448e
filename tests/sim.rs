//! The deterministic Raft simulator: the consensus core driven through its public API
//! over a simulated network and simulated disks, with Raft's safety properties checked
//! after every step.
//!
//! One seed determines a whole run. `RAFTKV_SIM_SEEDS=N` sets how many seeds the
//! `sweep` test runs (default 300, starting at `RAFTKV_SIM_SEED_BASE`, default 0);
//! `RAFTKV_SIM_SEED=S` replays exactly seed S. The named scenarios below mirror the
//! MIT 6.5840 Raft lab tests; those of leadership transfer and of elections across
//! membership changes are in `sim/transfer.rs`.

#[path = "sim/cluster.rs"]
mod cluster;
#[path = "sim/faults.rs"]
mod faults;
#[path = "sim/history.rs"]
mod history;
#[path = "sim/invariants.rs"]
mod invariants;
#[path = "sim/member.rs"]
mod member;
#[path = "sim/membership.rs"]
mod membership;
#[path = "sim/membership_scenarios.rs"]
mod membership_scenarios;
#[path = "sim/network.rs"]
mod network;
#[path = "sim/ops.rs"]
mod ops;
#[path = "sim/params.rs"]
mod params;
#[path = "sim/run.rs"]
mod run;
#[path = "sim/serving_scenarios.rs"]
mod serving_scenarios;
#[path = "sim/snapshots.rs"]
mod snapshots;
#[path = "sim/stale_echo.rs"]
mod stale_echo;
#[path = "sim/step.rs"]
mod step;
#[path = "sim/storage.rs"]
mod storage;
#[path = "sim/trace.rs"]
mod trace;
#[path = "sim/transfer.rs"]
mod transfer;

use cluster::{Cluster, ClusterOptions};
use history::Fate;
use network::NetFaults;
use params::SimParams;
use raftkv::raft::{NodeId, Role};
use rand::Rng;
use run::{liveness_phase, scenario};

/// How long a healthy cluster may take to elect a leader (MIT: 5 s for 3 servers).
const ELECTION_MS: u64 = 5_000;
/// How long `one()` may take.
const ONE_MS: u64 = 10_000;

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    match value.parse() {
        Ok(n) => Some(n),
        Err(_) => panic!("{name}={value:?} is not a number"),
    }
}

/// The randomized sweep: safety under faults, then liveness with faults healed.
#[test]
fn sweep() {
    if let Some(seed) = env_u64("RAFTKV_SIM_SEED") {
        println!("{}", run::run_seed(seed));
        return;
    }
    let count = env_u64("RAFTKV_SIM_SEEDS").unwrap_or(300);
    let base = env_u64("RAFTKV_SIM_SEED_BASE").unwrap_or(0);
    if std::env::var_os("RAFTKV_SIM_KEEP_GOING").is_some() {
        return sweep_keep_going(base, count);
    }
    for seed in base..base + count {
        let summary = run::run_seed(seed);
        println!("sim seed={seed} ok: {summary}");
    }
}

/// With `RAFTKV_SIM_KEEP_GOING` set, runs every seed and lists all that failed, with
/// the first line of each failure (to see which checks a deliberate bug trips).
fn sweep_keep_going(base: u64, count: u64) {
    let mut failed = Vec::new();
    for seed in base..base + count {
        let outcome = std::panic::catch_unwind(|| run::run_seed(seed));
        if let Err(panic) = outcome {
            let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            let what = text
                .lines()
                .find(|l| l.starts_with("=== "))
                .unwrap_or("?")
                .to_string();
            failed.push(format!("seed {seed}: {what}"));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// Seeds that once failed, replayed on every run. Each exposed a flaw of the
/// simulator's own model, not of the core (see the commit log); the parameter stream
/// has changed since, so they now replay different runs, kept as extra coverage.
#[test]
fn regression_seeds() {
    for seed in [3, 22, 353, 425, 482, 4036, 5429, 5547, 6110, 7207, 9344] {
        run::run_seed(seed);
    }
}

/// Seeds that found a flaw of the core, replayed on every run with the parameters
/// they failed with. 1445 (with long delays, 64-byte snapshot chunks, no trailing
/// entries): duplicated snapshot answers each restarted a chunk/answer exchange that
/// never ended, millions of messages; a duplicate now asks for the chunk in flight
/// and is ignored. The run must also stay cheap: a storm shows as a message count.
#[test]
fn core_regression_seeds() {
    let mut seed_1445 = SimParams::from_seed(1445);
    seed_1445.cluster.snapshot_chunk_bytes = 64;
    seed_1445.cluster.snapshot_catchup_entries = 0;
    let regressions: Vec<SimParams> = vec![seed_1445];
    for params in regressions {
        let seed = params.seed;
        let summary = run::run_params(seed, params, "core_regression_seeds", |_| String::new());
        println!("sim seed={seed} ok: {summary}");
        let sent: u64 = summary
            .split_whitespace()
            .find_map(|w| w.strip_prefix("sent=")?.parse().ok())
            .unwrap_or(u64::MAX);
        assert!(sent < 1_000_000, "seed {seed}: a message storm: {summary}");
    }
}

/// TestInitialElection: one leader emerges, and without faults it stays.
#[test]
fn initial_election() {
    for seed in 1..=3 {
        scenario("initial_election", seed, ClusterOptions::reliable(3), |c| {
            let leader = c.expect_settled_leader(ELECTION_MS);
            let term = c.raft(leader).term();
            c.run_for(2_000);
            assert_eq!(c.leader(), Some(leader), "leadership moved without faults");
            assert!(
                c.terms().iter().all(|&(_, t)| t == term),
                "terms moved without faults: {:?}",
                c.terms()
            );
            assert_eq!(c.checker.terms_with_leader(), 1);
            liveness_phase(c);
        });
    }
}

/// TestReElection: a new leader after the leader is cut off; the old one rejoins as
/// a follower; no leader without a quorum; one again once a quorum is back.
#[test]
fn reelection_after_leader_loss() {
    scenario(
        "reelection_after_leader_loss",
        7,
        ClusterOptions::reliable(3),
        |c| {
            let l1 = c.expect_settled_leader(ELECTION_MS);
            let others: Vec<NodeId> = (1..=3).filter(|&id| id != l1).collect();
            c.partition(&[vec![l1], others.clone()]);
            let l2 = c.expect_leader_in(&others, c.raft(l1).term(), ELECTION_MS);
            c.heal();
            let settled = c.expect_settled_leader(ELECTION_MS);
            assert!(
                c.raft(l1).term() > 1 && (settled != l1 || c.raft(l1).term() > c.raft(l2).term())
            );

            // Cut the leader and one follower off from everyone: no quorum anywhere.
            let x = (1..=3).find(|&id| id != settled).unwrap_or(1);
            let y = 6 - settled - x;
            c.partition(&[vec![settled], vec![x], vec![y]]);
            let leader_terms = c.checker.terms_with_leader();
            c.run_for(2 * ELECTION_MS);
            assert_eq!(
                c.checker.terms_with_leader(),
                leader_terms,
                "a leader was elected without a quorum"
            );
            c.partition(&[vec![settled], vec![x, y]]);
            c.expect_leader_in(&[x, y], c.raft(x).term().min(c.raft(y).term()), ELECTION_MS);
            c.heal();
            liveness_phase(c);
        },
    );
}

/// What [`cut_off_and_rejoin`] saw: the leader's term before and after, and the
/// cut-off member's term before and after.
#[derive(Debug)]
struct Rejoin {
    leader_terms: (u64, u64),
    cut_terms: (u64, u64),
    still_leader: bool,
}

/// Cuts one follower off for twenty election timeouts (a write commits meanwhile),
/// heals, lets the cluster settle and has the member catch up.
fn cut_off_and_rejoin(c: &mut Cluster, members: usize) -> Rejoin {
    let leader = c.expect_settled_leader(ELECTION_MS);
    c.one(members, ONE_MS);
    let cut = leader % members as NodeId + 1;
    let rest: Vec<NodeId> = (1..=members as NodeId).filter(|&id| id != cut).collect();
    let before = (c.raft(leader).term(), c.raft(cut).term());
    c.partition(&[vec![cut], rest]);
    c.run_for(20 * 550);
    c.one(members - 1, ONE_MS);
    let cut_term = c.raft(cut).term();
    c.heal();
    c.run_for(2 * 550);
    c.one(members, ONE_MS);
    Rejoin {
        leader_terms: (before.0, c.raft(leader).term()),
        cut_terms: (before.1, cut_term),
        still_leader: c.leader() == Some(leader),
    }
}

/// Pre-vote (thesis §9.6): a follower cut off for many election timeouts asks for
/// pre-votes it never gets, so its term does not grow; healed, it does not depose
/// the healthy leader (without pre-vote its higher term would, §5.1).
#[test]
fn rejoining_member_does_not_depose_the_leader() {
    for (members, seed) in [(3, 53), (5, 59)] {
        let name = "rejoining_member_does_not_depose_the_leader";
        scenario(name, seed, ClusterOptions::reliable(members), |c| {
            let seen = cut_off_and_rejoin(c, members);
            let (before, after) = seen.cut_terms;
            assert_eq!(before, after, "the cut-off member's term grew: {seen:?}");
            let (before, after) = seen.leader_terms;
            assert_eq!(before, after, "the leader's term changed: {seen:?}");
            assert!(seen.still_leader, "the leader was deposed: {seen:?}");
            liveness_phase(c);
        });
    }
}

/// The control for the scenario above: with pre-vote off, the same run does grow the
/// cut-off member's term and depose the leader, so the assertions there can fail.
#[test]
fn without_pre_vote_a_rejoining_member_deposes_the_leader() {
    let mut opts = ClusterOptions::reliable(3);
    opts.pre_vote = false;
    scenario(
        "without_pre_vote_a_rejoining_member_deposes_the_leader",
        53,
        opts,
        |c| {
            let seen = cut_off_and_rejoin(c, 3);
            assert!(seen.cut_terms.1 > seen.cut_terms.0, "{seen:?}");
            assert!(seen.leader_terms.1 > seen.leader_terms.0, "{seen:?}");
            liveness_phase(c);
        },
    );
}

/// TestFailNoAgree: with 3 of 5 followers cut off nothing commits; after healing it does.
#[test]
fn no_agreement_without_quorum() {
    scenario(
        "no_agreement_without_quorum",
        11,
        ClusterOptions::reliable(5),
        |c| {
            c.expect_settled_leader(ELECTION_MS);
            c.one(5, ONE_MS);
            let leader = c.expect_settled_leader(ELECTION_MS);
            let followers: Vec<NodeId> = (1..=5).filter(|&id| id != leader).collect();
            let groups: Vec<Vec<NodeId>> = vec![
                vec![leader, followers[0]],
                vec![followers[1]],
                vec![followers[2]],
                vec![followers[3]],
            ];
            c.partition(&groups);
            let pos = c
                .propose_new(leader, 8)
                .expect("the leader accepts while partitioned");
            c.run_for(2 * ELECTION_MS);
            assert!(
                (c.checker.committed().len() as u64) < pos.index,
                "index {} committed without a quorum",
                pos.index
            );
            c.heal();
            c.one(5, ONE_MS);
            liveness_phase(c);
        },
    );
}

/// TestRejoin: a leader cut off with proposals of its own comes back after a new
/// leader committed; its stale entries are overwritten.
#[test]
fn rejoin_partitioned_leader() {
    scenario(
        "rejoin_partitioned_leader",
        13,
        ClusterOptions::reliable(3),
        |c| {
            let l1 = c.expect_settled_leader(ELECTION_MS);
            c.one(3, ONE_MS);
            let others: Vec<NodeId> = (1..=3).filter(|&id| id != l1).collect();
            c.partition(&[vec![l1], others.clone()]);
            let stale = c.propose_many(l1, 3);
            let l2 = c.expect_leader_in(&others, c.raft(l1).term(), ELECTION_MS);
            c.one(2, ONE_MS);
            let third = others
                .iter()
                .copied()
                .find(|&id| id != l2)
                .unwrap_or_default();
            c.partition(&[vec![l2], vec![l1, third]]);
            c.expect_leader_in(&[l1, third], c.raft(l2).term(), ELECTION_MS);
            c.one(2, ONE_MS);
            c.heal();
            c.one(3, ONE_MS);
            liveness_phase(c);
            for number in stale {
                assert_eq!(
                    c.fate(number),
                    Fate::Lost,
                    "a stale proposal of the cut-off leader survived"
                );
            }
        },
    );
}

/// TestBackup: leaders with many conflicting uncommitted entries; followers must back
/// up over them quickly (a term per round trip, not an entry).
#[test]
fn backup_over_conflicting_entries() {
    let mut opts = ClusterOptions::reliable(5);
    opts.max_entries_per_append = 16;
    scenario("backup_over_conflicting_entries", 17, opts, |c| {
        let l1 = c.expect_settled_leader(ELECTION_MS);
        c.one(5, ONE_MS);
        let f1 = l1 % 5 + 1;
        let rest: Vec<NodeId> = (1..=5).filter(|&id| id != l1 && id != f1).collect();
        c.partition(&[vec![l1, f1], rest.clone()]);
        c.propose_many(l1, 50);
        c.run_for(500);
        c.partition(std::slice::from_ref(&rest));
        let l2 = c.expect_leader_in(&rest, c.raft(l1).term(), ELECTION_MS);
        for _ in 0..50 {
            c.one(3, ONE_MS);
        }
        let l2 = c.leader().unwrap_or(l2);
        let other = rest
            .iter()
            .copied()
            .find(|&id| id != l2)
            .unwrap_or_default();
        let third = rest
            .iter()
            .copied()
            .find(|&id| id != l2 && id != other)
            .unwrap_or_default();
        c.partition(&[vec![l2, third]]);
        c.propose_many(l2, 50);
        c.run_for(500);
        c.partition(&[vec![l1, f1, other]]);
        let rejected = c.appends_rejected;
        c.expect_leader_in(&[l1, f1, other], c.raft(other).term(), ELECTION_MS);
        for _ in 0..50 {
            c.one(3, ONE_MS);
        }
        c.heal();
        c.one(5, ONE_MS);
        let backups = c.appends_rejected - rejected;
        assert!(
            backups <= 12,
            "{backups} rejected appends to back up over conflicting entries"
        );
        liveness_phase(c);
    });
}

/// One round of the MIT Figure 8 tests: every member that believes it leads gets a
/// proposal, then time runs for a mostly short, sometimes long pause. Returns the last
/// member that accepted a proposal.
fn figure8_round(c: &mut Cluster) -> Option<NodeId> {
    let mut leader = None;
    for id in c.leaders() {
        if c.propose_new(id, 8).is_ok() {
            leader = Some(id);
        }
    }
    let pause = if c.rng.gen_bool(0.1) {
        c.rng.gen_range(0..275)
    } else {
        c.rng.gen_range(0..13)
    };
    c.run_for(pause);
    leader
}

/// TestFigure8: leaders crash right after proposing, losing unpersisted state, while
/// fewer than a majority may be down; the log must still converge.
#[test]
fn figure8_with_crashes() {
    let mut opts = ClusterOptions::reliable(5);
    opts.torn_writes = true;
    opts.write_max_ms = 10;
    // One entry per append, so a new leader's old-term entries can reach a majority
    // before its no-op does: the window Figure 8 is about.
    opts.max_entries_per_append = 1;
    for seed in 0..20 {
        scenario("figure8_with_crashes", seed, opts.clone(), |c| {
            c.one(1, ONE_MS);
            for _ in 0..1000 {
                let leader = figure8_round(c);
                if let Some(id) = leader.filter(|&id| c.member(id).is_up()) {
                    c.crash(id);
                }
                if c.up().len() < 3 {
                    let down: Vec<NodeId> = (1..=5).filter(|&id| !c.member(id).is_up()).collect();
                    let id = down[c.rng.gen_range(0..down.len())];
                    c.restart(id);
                }
            }
            liveness_phase(c);
            c.one(5, ONE_MS);
        });
    }
}

/// Figure 8 of the Raft paper, built step by step. S1 leads, replicates A to S2 only
/// and crashes; S5 wins a term with an entry of its own at A's index and is cut off
/// at once; S1 returns in a later term and replicates A to S3 — a majority holds A,
/// but A is of an older term, so S1 must not count it as committed (§5.4.2). S1 is
/// cut off before its own no-op reaches a majority; S5 wins again and overwrites A.
/// A core that counts old-term replicas commits A and is caught by the leader
/// completeness check when S5 wins.
#[test]
fn figure8_paper_sequence() {
    let mut opts = ClusterOptions::reliable(5);
    opts.max_entries_per_append = 1;
    scenario("figure8_paper_sequence", 43, opts, |c| {
        let (s1, s2, s3, s4, s5) = (1, 2, 3, 4, 5);
        c.elect(s1, &[s2, s3, s4, s5], ELECTION_MS);
        c.one(5, ONE_MS);
        c.partition(&[vec![s1, s2], vec![s3, s4, s5]]);
        let a = c.propose_new(s1, 8).expect("S1 leads");
        assert!(
            c.run_until(ONE_MS, |c| c.match_index(s1, s2) >= a.index),
            "A did not reach S2"
        );
        c.crash(s1);

        // S5 wins a term with S3 and S4 and is cut off before its no-op leaves; the
        // no-op becomes durable on S5 alone.
        c.elect(s5, &[s3, s4], ELECTION_MS);
        c.partition(&[]);
        c.run_for(50);
        assert_eq!(
            c.raft(s5).last_position().index,
            a.index,
            "S5's no-op is not at A's index"
        );

        // S1 returns, wins a later term with S2, S3 and S4, and sends A to S3.
        c.restart(s1);
        c.elect(s1, &[s2, s3, s4], ELECTION_MS);
        let sent = c.run_until(ONE_MS, |c| c.match_index(s1, s3) >= a.index);
        assert!(sent, "A did not reach S3");
        c.crash(s1);

        // S5 wins with S3 and S4: A is overwritten, legal only because it was never
        // committed.
        c.elect(s5, &[s3, s4], ELECTION_MS);
        c.one(3, ONE_MS);
        c.restart(s1);
        liveness_phase(c);
        let final_term = c.checker.committed()[a.index as usize - 1].slot.term;
        assert_ne!(
            final_term, a.term,
            "A survived; the sequence did not build Figure 8"
        );
    });
}

/// A vote must be durable before it is sent (Figure 2). B grants A its vote and
/// crashes before the vote reaches its disk; restarted, B may vote again in that
/// term (for C or itself), since A never heard of the first vote. A core that sends
/// the grant at once lets A and another member both lead that term, which the
/// election safety check reports.
#[test]
fn vote_survives_crash() {
    scenario(
        "vote_survives_crash",
        47,
        ClusterOptions::reliable(3),
        |c| {
            let cc = 3;
            c.crash(cc);
            c.partition(&[vec![1, 2]]);
            // Whichever of 1 and 2 times out first is A; the other, B, grants the vote.
            let granted = |c: &Cluster, b: NodeId| {
                let a = 3 - b;
                let (ra, rb) = (c.raft(a), c.raft(b));
                rb.voted_for() == Some(a) && rb.term() == ra.term() && ra.role() == Role::Candidate
            };
            let asked = c.run_until(ELECTION_MS, |c| granted(c, 1) || granted(c, 2));
            assert!(asked, "no vote granted");
            let b = if granted(c, 1) { 1 } else { 2 };
            let a = 3 - b;
            let term = c.raft(b).term();
            c.crash(b);
            let vote = c.member(b).store.hard_state;
            assert_ne!(
                (vote.current_term, vote.voted_for),
                (term, Some(a)),
                "setup: the vote was durable"
            );
            c.run_for(100);
            c.star(cc, &[b]);
            c.restart(b);
            c.restart(cc);
            c.expect_leader_in(&[b, cc], 0, ELECTION_MS);
            c.heal();
            liveness_phase(c);
        },
    );
}

/// TestFigure8Unreliable: the same churn of leaders on a lossy, reordering network,
/// with partitions instead of crashes.
#[test]
fn figure8_unreliable() {
    let mut opts = ClusterOptions::reliable(5);
    opts.net = NetFaults {
        drop_per_mille: 100,
        dup_per_mille: 50,
        delay_min_ms: 1,
        delay_max_ms: 300,
        long_delay_per_mille: 0,
    };
    scenario("figure8_unreliable", 23, opts, |c| {
        c.net.faults = NetFaults::RELIABLE;
        c.one(5, ONE_MS);
        c.net.faults = NetFaults {
            drop_per_mille: 100,
            dup_per_mille: 50,
            delay_min_ms: 1,
            delay_max_ms: 300,
            long_delay_per_mille: 0,
        };
        let mut connected: Vec<NodeId> = (1..=5).collect();
        for _ in 0..1000 {
            let leader = figure8_round(c);
            if let Some(id) = leader.filter(|id| connected.contains(id) && c.rng.gen_bool(0.5)) {
                connected.retain(|&x| x != id);
            }
            if connected.len() < 3 {
                let cut: Vec<NodeId> = (1..=5).filter(|id| !connected.contains(id)).collect();
                connected.push(cut[c.rng.gen_range(0..cut.len())]);
            }
            c.partition(&[connected.clone()]);
        }
        liveness_phase(c);
        c.one(5, ONE_MS);
    });
}

/// TestUnreliableChurn: clients everywhere, crashes, restarts and partitions on a lossy
/// network; afterwards everything acknowledged is there and the logs converge.
#[test]
fn unreliable_churn() {
    let mut opts = ClusterOptions::reliable(5);
    opts.net = NetFaults {
        drop_per_mille: 100,
        dup_per_mille: 50,
        delay_min_ms: 1,
        delay_max_ms: 60,
        long_delay_per_mille: 0,
    };
    opts.torn_writes = true;
    opts.write_max_ms = 20;
    scenario("unreliable_churn", 31, opts, |c| {
        for step in 0..1_000 {
            for id in c.up() {
                if c.rng.gen_bool(0.3) {
                    let _ = c.propose_new(id, 16);
                }
            }
            let pause = c.rng.gen_range(1..20);
            c.run_for(pause);
            if step % 30 == 0 {
                faults::inject(c, 3);
            }
        }
        liveness_phase(c);
        assert!(
            c.history.stats.acked > 50,
            "too little got through: {}",
            c.summary()
        );
    });
}

/// TestPersist1: every member crashes and restarts from disk; terms, votes and the
/// committed log survive.
#[test]
fn persistence_across_full_restart() {
    scenario(
        "persistence_across_full_restart",
        31,
        ClusterOptions::reliable(3),
        |c| {
            c.expect_settled_leader(ELECTION_MS);
            for _ in 0..10 {
                c.one(3, ONE_MS);
            }
            let before: Vec<(NodeId, u64)> = c.terms();
            let committed = c.checker.committed().len() as u64;
            for id in 1..=3 {
                c.crash(id);
            }
            c.run_for(1_000);
            for (id, term) in before {
                c.restart(id);
                assert!(c.raft(id).term() >= term, "n{id} forgot its term {term}");
                assert_eq!(
                    c.raft(id).term(),
                    c.member(id).store.hard_state.current_term
                );
            }
            let index = c.one(3, ONE_MS);
            assert!(
                index > committed,
                "a new command at {index}, inside the old log of {committed}"
            );
            let leader = c.expect_settled_leader(ELECTION_MS);
            c.crash(leader);
            c.restart(leader);
            c.one(3, ONE_MS);
            liveness_phase(c);
            assert!(c.history.stats.acked >= 12);
        },
    );
}

/// TestConcurrentStarts: proposals made at the same instant get distinct, consecutive
/// indexes in one term and all commit.
#[test]
fn concurrent_proposals() {
    scenario(
        "concurrent_proposals",
        37,
        ClusterOptions::reliable(3),
        |c| {
            let leader = c.expect_settled_leader(ELECTION_MS);
            c.one(3, ONE_MS);
            let term = c.raft(leader).term();
            let numbers = c.propose_many(leader, 5);
            let positions: Vec<_> = numbers
                .iter()
                .map(|&n| c.history.proposals()[n].pos)
                .collect();
            for pair in positions.windows(2) {
                assert_eq!(
                    pair[1].index,
                    pair[0].index + 1,
                    "non-consecutive indexes {positions:?}"
                );
            }
            assert!(positions.iter().all(|p| p.term == term));
            let all_acked = c.run_until(ONE_MS, |c| {
                numbers.iter().all(|&n| c.fate(n) == Fate::Acked)
            });
            assert!(all_acked, "concurrent proposals did not all commit");
            assert_eq!(c.raft(leader).term(), term, "the term moved without faults");
            liveness_phase(c);
        },
    );
}
