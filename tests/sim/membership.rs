//! Randomized membership changes: five members of which three bootstrap the cluster;
//! the fault injector adds the others as learners, promotes learners and removes
//! members (the leader included) and hands leadership over (`sim/transfer.rs`) while
//! crashes, partitions and message faults run.
//! Every step is checked as in the sweep (one leader per term, no committed entry
//! lost or changed), and the liveness phase must converge among the members of the
//! final configuration.

use raftkv::raft::InjectedBug;

use super::cluster::Cluster;
use super::params::SimParams;
use super::run::run_params;

/// The parameters of seed `seed`, reshaped for membership changes.
pub fn params(seed: u64, bug: Option<InjectedBug>) -> SimParams {
    let mut params = SimParams::from_seed(seed);
    params.cluster.members = 5;
    params.cluster.voters = 3;
    params.cluster.membership_changes = true;
    params.cluster.injected_bug = bug;
    params.max_down = params.max_down.min(2);
    params
}

/// Runs seed `seed` with membership changes; panics with the trace on failure.
pub fn run(seed: u64, bug: Option<InjectedBug>) -> String {
    run_params(seed, params(seed, bug), "membership_sweep", changes)
}

/// How many membership changes the run made, for its summary line.
fn changes(cluster: &Cluster) -> String {
    format!(
        " membership-changes={} transfers={}",
        cluster.changes_accepted, cluster.transfers_accepted
    )
}
