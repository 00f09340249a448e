//! Scenarios of serving clients on any member and of catching up: writes forwarded by
//! followers, linearizable reads while a partitioned old leader still believes it
//! leads, and a snapshot catch-up with a crash in the middle of the transfer.

use raftkv::raft::{NodeId, Role};

use super::cluster::{Cluster, ClusterOptions};
use super::history::Fate;
use super::run::{liveness_phase, scenario};
use super::{ELECTION_MS, ONE_MS};

/// Writes forwarded by followers: each follower forwards five; the leader appends
/// them, each follower acknowledges its own once it has applied them; then the leader
/// is cut off while a follower still forwards to it: those end unknown once the
/// follower follows a new leader; a follower of the new leader forwards to it.
#[test]
fn forwarded_writes_through_followers() {
    scenario(
        "forwarded_writes_through_followers",
        43,
        ClusterOptions::reliable(3),
        |c| {
            let leader = c.expect_settled_leader(ELECTION_MS);
            c.one(3, ONE_MS);
            let followers: Vec<NodeId> = (1..=3).filter(|&id| id != leader).collect();
            let first = c.history.proposals().len();
            for &f in &followers {
                for _ in 0..5 {
                    let data = c.history.new_command(8);
                    c.forward(f, data)
                        .expect("a follower with a leader forwards");
                }
            }
            let acked = c.run_until(ONE_MS, |c| {
                c.history.proposals().len() == first + 10
                    && (first..first + 10).all(|n| c.fate(n) == Fate::Acked)
            });
            assert!(
                acked,
                "forwarded writes not all acknowledged by their followers"
            );
            for n in first..first + 10 {
                let p = c.history.proposals()[n];
                assert!(followers.contains(&p.proposer), "{p:?}");
            }
            let (cut, kept) = (followers[0], followers[1]);
            // The leader is cut off; `cut` still follows it and forwards into the void.
            let term = c.raft(leader).term();
            c.partition(&[vec![leader], vec![cut, kept]]);
            let unknown = c.history.stats.forwards_unknown;
            for _ in 0..3 {
                let data = c.history.new_command(8);
                c.forward(cut, data)
                    .expect("it still follows the old leader");
            }
            let new = c.expect_leader_in(&[cut, kept], term, 4 * ELECTION_MS);
            assert_eq!(
                c.history.stats.forwards_unknown,
                unknown + 3,
                "forwards to a lost leader must end unknown"
            );
            let other = if new == cut { kept } else { cut };
            let follows = c.run_until(ELECTION_MS, |c| c.raft(other).leader() == Some(new));
            assert!(follows, "n{other} never learned of leader n{new}");
            let before = c.history.stats.forwards_appended;
            let data = c.history.new_command(8);
            c.forward(other, data)
                .expect("a follower of the new leader forwards");
            let answered = c.run_until(ONE_MS, |c| c.history.stats.forwards_appended > before);
            assert!(
                answered,
                "n{other} never heard where n{new} appended its write"
            );
            liveness_phase(c);
        },
    );
}

/// ReadIndex under a partition: the old leader, cut off with a minority, still
/// believes it leads but must not release a read once a newer leader acknowledged a
/// write; after healing the read fails and a read at the new leader sees the write.
#[test]
fn linearizable_reads_under_partitioned_old_leader() {
    scenario(
        "linearizable_reads_under_partitioned_old_leader",
        41,
        ClusterOptions::reliable(5),
        |c| {
            let l1 = c.expect_settled_leader(ELECTION_MS);
            c.one(5, ONE_MS);
            let f1 = l1 % 5 + 1;
            let rest: Vec<NodeId> = (1..=5).filter(|&id| id != l1 && id != f1).collect();
            c.partition(&[vec![l1, f1], rest.clone()]);
            let l2 = c.expect_leader_in(&rest, c.raft(l1).term(), ELECTION_MS);
            let write = c
                .propose_new(l2, 8)
                .expect("the new leader accepts a write");
            let number = c.history.proposals().len() - 1;
            assert!(
                c.run_until(ONE_MS, |c| c.fate(number) == Fate::Acked),
                "write at n{l2} not acknowledged"
            );
            assert_eq!(
                c.raft(l1).role(),
                Role::Leader,
                "the old leader should still believe it leads"
            );
            let reads_ok = c.history.stats.reads_ok;
            c.read(l1).expect("the old leader accepts the read");
            c.run_for(2 * ELECTION_MS);
            assert_eq!(
                c.history.stats.reads_ok, reads_ok,
                "a deposed leader released a read"
            );
            c.heal();
            let released = c.run_until(ELECTION_MS, |c| c.history.reads_waiting(l1) == 0);
            assert!(
                released,
                "the deposed leader never answered its pending read"
            );
            assert_eq!(c.history.stats.reads_ok, reads_ok);
            let leader = c.expect_settled_leader(ELECTION_MS);
            c.read(leader).expect("the settled leader accepts a read");
            let served = c.run_until(ELECTION_MS, |c| c.history.stats.reads_ok == reads_ok + 1);
            assert!(served, "no read released at the settled leader");
            assert!(c.history.max_acked_index >= write.index);
            liveness_phase(c);
        },
    );
}

/// Snapshots (§7): a follower that was down while every other member compacted its
/// log catches up through InstallSnapshot in small chunks, crashes in the middle of a
/// second transfer and restarts cleanly, and a member restarted from its own snapshot
/// rejoins with the snapshot as its log base.
#[test]
fn snapshot_catch_up_and_crash_mid_transfer() {
    let mut opts = ClusterOptions::reliable(3);
    opts.snapshot_per_mille = 1000; // compact whenever entries are applied
    opts.snapshot_chunk_bytes = 64;
    scenario("snapshot_catch_up_and_crash_mid_transfer", 61, opts, |c| {
        let leader = c.expect_settled_leader(ELECTION_MS);
        let lagging = if leader == 3 { 2 } else { 3 };
        c.crash(lagging);
        for _ in 0..20 {
            c.one(2, ONE_MS);
        }
        let base = c.raft(leader).log_base().index;
        assert!(base > 10, "the leader compacted only to {base}");
        c.restart(lagging);
        let caught_up =
            |c: &Cluster| c.member(lagging).is_up() && c.raft(lagging).log_base().index >= base;
        assert!(
            c.run_until(5_000, caught_up),
            "n{lagging} never installed a snapshot"
        );
        // Fall behind again, then crash while the next transfer is under way.
        c.crash(lagging);
        for _ in 0..20 {
            c.one(2, ONE_MS);
        }
        c.restart(lagging);
        let receiving = |c: &Cluster| c.raft(lagging).incoming_snapshot().is_some();
        assert!(c.run_until(5_000, receiving), "no second transfer started");
        c.crash(lagging);
        c.restart(lagging);
        assert_eq!(
            c.raft(lagging).incoming_snapshot(),
            None,
            "a transfer survived a crash"
        );
        let new_base = c.raft(c.leader().unwrap_or(leader)).log_base().index;
        let caught_up = |c: &Cluster| c.raft(lagging).log_base().index >= new_base;
        assert!(
            c.run_until(5_000, caught_up),
            "n{lagging} never caught up again"
        );
        // Restart a member from its own snapshot: the base survives.
        let own_base = c.raft(lagging).log_base().index;
        c.crash(lagging);
        c.restart(lagging);
        assert_eq!(c.raft(lagging).log_base().index, own_base);
        c.one(3, ONE_MS);
        liveness_phase(c);
    });
}
