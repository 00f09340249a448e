//! Randomized runs (TigerBeetle's VOPR shape): a safety phase with clients and faults,
//! then a liveness phase with every fault healed. Also the failure report shared by
//! the named scenarios.

use std::panic::{catch_unwind, AssertUnwindSafe};

use raftkv::raft::NodeId;
use rand::Rng;

use super::cluster::{Cluster, ClusterOptions};
use super::faults;
use super::network::NetFaults;
use super::params::SimParams;

/// After healing, a stable leader must serve a write and a read, and every member
/// must apply the whole log, within this time.
pub const LIVENESS_MS: u64 = 20_000;

/// The most the liveness phase may take while a member behind keeps catching up.
pub const LIVENESS_CAP_MS: u64 = 120_000;
/// Clients stop writing to a member with this many uncommitted entries.
pub const MAX_UNCOMMITTED: u64 = 128;

/// Runs seed `seed`; on failure panics with the seed, its parameters and the trace.
pub fn run_seed(seed: u64) -> String {
    run_params(seed, SimParams::from_seed(seed), "sweep", |_| String::new())
}

/// Runs seed `seed` with `params`; `test` names the test that reproduces it, and
/// `extra` adds to the summary.
pub fn run_params(
    seed: u64,
    params: SimParams,
    test: &str,
    extra: fn(&Cluster) -> String,
) -> String {
    println!("sim: {params}");
    let mut cluster = Cluster::new(params.cluster.clone(), seed);
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        safety_phase(&mut cluster, &params);
        liveness_phase(&mut cluster);
    }));
    if let Err(panic) = outcome {
        let context = format!("seed {seed}\nparameters: {params}");
        fail(
            &cluster,
            &context,
            panic,
            &format!("RAFTKV_SIM_SEED={seed} cargo test --release --test sim {test}"),
        );
    }
    cluster.summary() + &extra(&cluster)
}

/// Runs a named scenario on a fresh cluster; on failure panics with the trace.
pub fn scenario(name: &str, seed: u64, opts: ClusterOptions, body: impl FnOnce(&mut Cluster)) {
    println!("sim scenario {name}: seed={seed} {opts:?}");
    let mut cluster = Cluster::new(opts.clone(), seed);
    let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut cluster)));
    if let Err(panic) = outcome {
        let context = format!("scenario {name}, seed {seed}\noptions: {opts:?}");
        fail(
            &cluster,
            &context,
            panic,
            &format!("cargo test --release --test sim {name}"),
        );
    }
    println!("sim scenario {name}: {}", cluster.summary());
}

fn fail(
    cluster: &Cluster,
    context: &str,
    panic: Box<dyn std::any::Any + Send>,
    reproduce: &str,
) -> ! {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(non-string panic)");
    panic!(
        "\n=== simulation failed: {what}\n{context}\nstate: {}\n{}last events:\n{}reproduce with {reproduce}\n",
        cluster.summary(),
        describe_members(cluster),
        cluster.trace.render()
    );
}

/// One line per member: role, term, log and commit.
pub fn describe_members(cluster: &Cluster) -> String {
    let mut out = String::new();
    for m in &cluster.members {
        let line = match &m.raft {
            None => format!("  n{} down (durable log {})\n", m.id, m.store.entries.len()),
            Some(r) => format!(
                "  n{} {:?} term={} leader={:?} last={:?} commit={} applied={} writes-pending={} voters={:?} learners={:?} transfer-to={:?}\n",
                m.id,
                r.role(),
                r.term(),
                r.leader(),
                r.last_position(),
                r.commit_index(),
                m.applied,
                m.writer.pending(),
                r.membership().voters,
                r.membership().learners,
                r.transfer_target()
            ),
        };
        out.push_str(&line);
    }
    out
}

fn safety_phase(cluster: &mut Cluster, params: &SimParams) {
    let mut next_client_ms = 0;
    let mut next_fault_ms = params.fault_gap_min_ms;
    loop {
        let t = next_client_ms.min(next_fault_ms);
        if t >= params.safety_ms {
            break;
        }
        cluster.advance_to(t);
        if t == next_client_ms {
            client_operation(cluster, params);
            next_client_ms = t + cluster
                .rng
                .gen_range(params.client_gap_min_ms..=params.client_gap_max_ms);
        }
        if t == next_fault_ms {
            faults::inject(cluster, params.max_down);
            next_fault_ms = t + cluster
                .rng
                .gen_range(params.fault_gap_min_ms..=params.fault_gap_max_ms);
        }
    }
    cluster.advance_to(params.safety_ms);
    cluster.check_durable();
}

/// A client writes or reads at a member that believes it leads or, half the time, at
/// any running member: a follower forwards a write to its leader and asks it for a
/// read index for a read. Clients hold back writes while the member
/// has [`MAX_UNCOMMITTED`] entries uncommitted, as clients waiting for answers do;
/// without that, a slow configuration (one entry per append, slow disks) piles up
/// thousands of entries that no bounded liveness phase can commit (seed 4036).
fn client_operation(cluster: &mut Cluster, params: &SimParams) {
    let read = cluster.rng.gen_range(0..1000) < params.read_per_mille;
    let anywhere = 0.5;
    let candidates = if cluster.rng.gen_bool(anywhere) {
        cluster.up()
    } else {
        cluster.leaders()
    };
    if candidates.is_empty() {
        return;
    }
    let id = candidates[cluster.rng.gen_range(0..candidates.len())];
    if read {
        let _ = cluster.read(id);
        return;
    }
    let raft = cluster.raft(id);
    if raft.last_position().index - raft.commit_index() < MAX_UNCOMMITTED {
        let pad = cluster.rng.gen_range(0..=params.max_pad_bytes);
        cluster.write_new(id, pad);
    }
}

/// Heals everything, restarts everyone, and requires progress within a bound: one
/// leader that every member follows, a write and a read through it, every member
/// applying the whole log, and every proposal of the run decided. Leadership may
/// still move once after healing (a timer that was about to fire), so the round is
/// retried until the bound.
pub fn liveness_phase(cluster: &mut Cluster) {
    cluster.heal();
    cluster.net.faults = NetFaults::RELIABLE;
    for id in 1..=cluster.members.len() as NodeId {
        if !cluster.member(id).is_up() {
            cluster.restart(id);
        }
    }
    cluster.note(format_args!("LIVENESS phase"));
    let start_ms = cluster.now_ms;
    let mut deadline_ms = start_ms + LIVENESS_MS;
    let mut slowest = slowest_applied(cluster);
    let mut rounds = 0;
    let leader = loop {
        rounds += 1;
        // A member far behind (a learner added late, with no snapshot to install)
        // catches up entry by entry: while it moves, the deadline moves too, up to
        // LIVENESS_CAP_MS in all.
        if slowest_applied(cluster) > slowest {
            slowest = slowest_applied(cluster);
            deadline_ms = (cluster.now_ms + LIVENESS_MS).min(start_ms + LIVENESS_CAP_MS);
        }
        let left_ms = deadline_ms.saturating_sub(cluster.now_ms);
        assert!(
            left_ms > 0,
            "liveness: no stable leader serving writes and reads {LIVENESS_MS}ms after healing \
             or after the slowest member last applied an entry"
        );
        let round_start_ms = cluster.now_ms;
        if let Some(leader) = liveness_round(cluster, left_ms) {
            break leader;
        }
        if cluster.now_ms == round_start_ms {
            // A round that failed at once (a read refused on the spot) must still
            // move the clock, or the loop never reaches its deadline.
            cluster.run_for(1);
        }
    };
    check_final(cluster, leader);
    let took_ms = cluster.now_ms - start_ms;
    cluster.note(format_args!(
        "LIVENESS ok: leader n{leader}, converged after {took_ms}ms in {rounds} rounds"
    ));
}

/// The lowest applied index among the running members of the configuration.
fn slowest_applied(cluster: &Cluster) -> u64 {
    let members = cluster.members.iter();
    let in_config = members.filter(|m| m.is_up() && cluster.in_config(m.id));
    in_config.map(|m| m.applied).min().unwrap_or(0)
}

/// Waits for a settled leader, writes and reads through it (and reads through every
/// follower) and waits for every member to apply the log; returns the leader if all of
/// that worked within `left_ms`.
fn liveness_round(cluster: &mut Cluster, left_ms: u64) -> Option<NodeId> {
    let deadline_ms = cluster.now_ms + left_ms;
    if !cluster.run_until(left_ms, |c| settled_leader(c).is_some()) {
        return None;
    }
    let leader = settled_leader(cluster)?;
    cluster.propose_new(leader, 8).ok()?;
    let reads_ok = cluster.history.stats.reads_ok;
    // Removed members get no log and know no leader: only the configuration serves.
    let members: Vec<NodeId> = (cluster.up().into_iter())
        .filter(|&id| cluster.in_config(id))
        .collect();
    for &id in &members {
        cluster.read(id).ok()?;
    }
    let left_ms = deadline_ms.saturating_sub(cluster.now_ms);
    cluster.run_until(left_ms, |c| {
        c.converged() && members.iter().all(|&id| c.history.reads_waiting(id) == 0)
    });
    let served = cluster.history.stats.reads_ok == reads_ok + members.len() as u64;
    (served && cluster.converged() && cluster.leader() == Some(leader)).then_some(leader)
}

/// A leader whose term every running member has and follows.
pub fn settled_leader(cluster: &Cluster) -> Option<NodeId> {
    let leader = cluster.leader()?;
    let term = cluster.raft(leader).term();
    let follows = |id: NodeId| {
        let r = cluster.raft(id);
        r.term() == term && r.leader() == Some(leader)
    };
    let members = cluster.up().into_iter().filter(|&id| cluster.in_config(id));
    members.into_iter().all(follows).then_some(leader)
}

fn check_final(cluster: &Cluster, leader: NodeId) {
    let raft = cluster.raft(leader);
    let committed = cluster.checker.committed();
    assert_eq!(
        committed.len() as u64,
        raft.commit_index(),
        "the committed log is longer than the settled leader's commit index"
    );
    for m in cluster.members.iter().filter(|m| cluster.in_config(m.id)) {
        assert_eq!(
            m.applied,
            raft.commit_index(),
            "n{} did not apply the whole log",
            m.id
        );
    }
    cluster.check_durable();
    cluster.history.check_resolved(committed, raft.term());
}
