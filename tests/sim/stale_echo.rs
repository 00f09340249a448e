//! Named scenarios about messages from a member's previous incarnation: an old
//! leader's AppendEntries that wait in a paused follower's socket buffer until after
//! the leader restarted and won a later term.

use raftkv::raft::{NodeId, Role};

use super::cluster::{Cluster, ClusterOptions};
use super::history::Fate;
use super::run::{liveness_phase, scenario};

const ELECTION_MS: u64 = 5_000;
const ONE_MS: u64 = 10_000;

/// Issue 13, critical 1. A leads term T with a high ReadIndex round; its
/// AppendEntries to B wait unread in B's socket buffer while A crashes, restarts (its
/// round counter back at 0) and wins a later term T'. B learns T' from the new A, then
/// reads the old frames and rejects them in term T'. Those rejections must not count
/// as B confirming the new A's rounds: A, cut off while B and C elect a leader that
/// commits a write, must not serve a read that misses the write.
#[test]
fn stale_echo_after_leader_restart_confirms_no_read() {
    scenario(
        "stale_echo_after_leader_restart_confirms_no_read",
        5,
        ClusterOptions::reliable(3),
        |c| {
            let a = c.expect_settled_leader(ELECTION_MS);
            let (b, cc) = others(a);
            c.one(3, ONE_MS);
            let round_reads = 30;
            for _ in 0..round_reads {
                read_and_wait(c, a);
            }
            // B stops reading its connection from A; A's heartbeats of term T carry
            // its round. Then A gets an entry C lacks, so only A can win next.
            c.hold(a, b);
            c.run_for(100);
            c.partition(&[vec![a, b], vec![cc]]);
            c.propose_new(a, 4).expect("A still leads");
            let last = c.raft(a).last_position().index;
            assert!(c.run_until(100, |c| c.raft(a).durable_index() == last));
            let old_term = c.raft(a).term();
            c.crash(a);
            c.unhold(a, b);
            c.partition(&[vec![a, cc], vec![b]]);
            c.restart(a);
            c.expect_leader_in(&[a], old_term, ELECTION_MS);
            let new_term = c.raft(a).term();
            c.heal();
            let caught_up = |c: &Cluster| {
                c.raft(b).term() == new_term && c.member(b).applied == c.member(a).applied
            };
            assert!(c.run_until(ELECTION_MS, caught_up), "B never followed A");
            // B reads the old frames now, and A stops reading its connection from B.
            c.hold(b, a);
            let stale = c.release_held(a, b);
            assert!(stale > 0, "no stale AppendEntries were held");
            c.run_for(10);
            // A is cut off; B and C elect a leader that commits a write.
            c.partition(&[vec![a], vec![b, cc]]);
            let l2 = c.expect_leader_in(&[b, cc], new_term, ELECTION_MS);
            c.propose_new(l2, 8)
                .expect("the new leader accepts a write");
            let number = c.history.proposals().len() - 1;
            assert!(
                c.run_until(ONE_MS, |c| c.fate(number) == Fate::Acked),
                "write at n{l2} not acknowledged"
            );
            assert_eq!(
                (c.raft(a).role(), c.raft(a).term()),
                (Role::Leader, new_term),
                "precondition: A still believes it leads term {new_term}"
            );
            let reads_ok = c.history.stats.reads_ok;
            c.read(a).expect("A accepts the read");
            // A reads what B sent it meanwhile: the rejections of the stale frames
            // among them. The history checker panics on a read that misses the write.
            c.unhold(b, a);
            c.release_held(b, a);
            c.run_for(2 * ELECTION_MS);
            assert_eq!(
                c.history.stats.reads_ok, reads_ok,
                "the cut-off leader released a read"
            );
            c.heal();
            liveness_phase(c);
        },
    );
}

/// The other two members of a three-member cluster.
fn others(id: NodeId) -> (NodeId, NodeId) {
    let rest: Vec<NodeId> = (1..=3).filter(|&x| x != id).collect();
    (rest[0], rest[1])
}

/// Issues a read at `id` and runs until it is served.
fn read_and_wait(c: &mut Cluster, id: NodeId) {
    let ok = c.history.stats.reads_ok;
    c.read(id).expect("the leader accepts a read");
    assert!(
        c.run_until(ELECTION_MS, |c| c.history.stats.reads_ok > ok),
        "read at n{id} not served"
    );
}
