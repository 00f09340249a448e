//! Fault injection for randomized runs: crashes, restarts and partitions of every
//! shape (leader in the minority, symmetric, one-way, a bridge node, one node cut off).

use raftkv::raft::{MembershipChange, NodeId};
use rand::seq::SliceRandom;
use rand::Rng;

use super::cluster::Cluster;
use super::transfer::random_transfer;

/// Performs one random fault (or repair). `max_down` bounds how many members may be
/// down at once.
pub fn inject(cluster: &mut Cluster, max_down: usize) {
    if cluster.opts.membership_changes && cluster.rng.gen_bool(0.3) {
        return change_membership(cluster);
    }
    let up = cluster.up();
    let down: Vec<NodeId> = cluster
        .members
        .iter()
        .filter(|m| !m.is_up())
        .map(|m| m.id)
        .collect();
    match cluster.rng.gen_range(0..100) {
        0..=24 if down.len() < max_down && !up.is_empty() => {
            let victim = pick(cluster, &up);
            cluster.crash(victim);
        }
        0..=49 if !down.is_empty() => {
            let lucky = pick(cluster, &down);
            cluster.restart(lucky);
        }
        0..=79 => partition(cluster),
        _ => cluster.heal(),
    }
}

fn pick(cluster: &mut Cluster, ids: &[NodeId]) -> NodeId {
    ids[cluster.rng.gen_range(0..ids.len())]
}

/// Replaces the current partition with a random one.
fn partition(cluster: &mut Cluster) {
    let n = cluster.members.len();
    let mut ids: Vec<NodeId> = (1..=n as NodeId).collect();
    ids.shuffle(&mut cluster.rng);
    match cluster.rng.gen_range(0..5) {
        0 => leader_in_minority(cluster, ids),
        1 => {
            let k = cluster.rng.gen_range(1..n);
            let (a, b) = ids.split_at(k);
            cluster.partition(&[a.to_vec(), b.to_vec()]);
        }
        2 => one_way(cluster, ids),
        3 if n >= 3 => bridge(cluster, ids),
        _ => {
            let rest = ids[1..].to_vec();
            cluster.partition(&[vec![ids[0]], rest]);
        }
    }
}

/// The current leader and fewer than half of the others on one side.
fn leader_in_minority(cluster: &mut Cluster, mut ids: Vec<NodeId>) {
    if let Some(leader) = cluster.leader() {
        ids.retain(|&id| id != leader);
        ids.insert(0, leader);
    }
    let minority = cluster.rng.gen_range(1..=((ids.len() - 1) / 2).max(1));
    let (a, b) = ids.split_at(minority);
    cluster.partition(&[a.to_vec(), b.to_vec()]);
}

/// Messages from one group to the other are lost; the other direction works.
fn one_way(cluster: &mut Cluster, ids: Vec<NodeId>) {
    let k = cluster.rng.gen_range(1..ids.len());
    let (a, b) = ids.split_at(k);
    cluster.net.heal();
    for &from in a {
        for &to in b {
            cluster.net.set_blocked(from, to, true);
        }
    }
    let cuts = cluster.net.describe_cuts();
    cluster.note(format_args!("PARTITION one-way {a:?} -> {b:?}: cut {cuts}"));
}

/// Two groups that cannot reach each other, and one member that reaches both.
fn bridge(cluster: &mut Cluster, ids: Vec<NodeId>) {
    let bridge = ids[0];
    let rest = &ids[1..];
    let k = cluster.rng.gen_range(1..rest.len());
    let (a, b) = rest.split_at(k);
    cluster.net.heal();
    for &x in a {
        for &y in b {
            cluster.net.set_blocked(x, y, true);
            cluster.net.set_blocked(y, x, true);
        }
    }
    let cuts = cluster.net.describe_cuts();
    cluster.note(format_args!(
        "PARTITION bridge n{bridge} between {a:?} and {b:?}: cut {cuts}"
    ));
}

/// A random single-server change at the leader: add a member never seen (as a
/// learner), promote a learner, or remove any member, the leader included; or a
/// leadership transfer. The leader may refuse (a change in progress, a learner
/// behind, a quorum at risk, a transfer under way): so be it.
fn change_membership(cluster: &mut Cluster) {
    let Some(leader) = cluster.leader() else {
        return;
    };
    let m = cluster.raft(leader).membership().clone();
    let n = cluster.members.len() as NodeId;
    let fresh: Vec<NodeId> = (m.max_id + 1..=n).collect();
    let learners: Vec<NodeId> = m.learners.iter().copied().collect();
    let members: Vec<NodeId> = m.voters.iter().chain(&m.learners).copied().collect();
    let change = match cluster.rng.gen_range(0..4) {
        3 => return random_transfer(cluster, leader, &members),
        0 if !fresh.is_empty() => MembershipChange::AddLearner {
            id: fresh[0],
            address: format!("sim:{}", fresh[0]),
        },
        0 | 1 if !learners.is_empty() => MembershipChange::Promote {
            id: pick(cluster, &learners),
        },
        _ if m.voters.len() > 2 || !m.learners.is_empty() => MembershipChange::Remove {
            id: pick(cluster, &members),
        },
        _ => return,
    };
    cluster.change_membership(leader, change);
}
