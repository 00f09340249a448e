//! Everything a randomized run derives from its seed, logged at the start of the run
//! and repeated in a failure report.

use std::fmt;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::cluster::ClusterOptions;
use super::network::NetFaults;

/// The parameters of one randomized run.
#[derive(Clone, Debug)]
pub struct SimParams {
    /// The seed everything below came from.
    pub seed: u64,
    /// Cluster shape, network faults, disk latency, configuration.
    pub cluster: ClusterOptions,
    /// Length of the safety phase (faults on).
    pub safety_ms: u64,
    /// Shortest gap between client operations.
    pub client_gap_min_ms: u64,
    /// Longest gap between client operations.
    pub client_gap_max_ms: u64,
    /// Share of client operations that are reads, per mille.
    pub read_per_mille: u32,
    /// Most filler bytes in a command.
    pub max_pad_bytes: usize,
    /// Shortest gap between fault events.
    pub fault_gap_min_ms: u64,
    /// Longest gap between fault events.
    pub fault_gap_max_ms: u64,
    /// Most members down at once (may be all of them).
    pub max_down: usize,
}

impl SimParams {
    /// The parameters of run `seed`.
    pub fn from_seed(seed: u64) -> SimParams {
        // A different stream from the cluster's, which is seeded with `seed` itself.
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_0f9a_7a3e_7e11);
        let members = *[3, 5, 7].choose(&mut rng).unwrap_or(&3);
        let delay_min_ms = rng.gen_range(1..=5);
        let net = NetFaults {
            drop_per_mille: if rng.gen_bool(0.25) {
                0
            } else {
                rng.gen_range(0..=200)
            },
            dup_per_mille: if rng.gen_bool(0.5) {
                0
            } else {
                rng.gen_range(0..=100)
            },
            delay_min_ms,
            delay_max_ms: delay_min_ms + rng.gen_range(0..=120),
            // Long delays come from their own stream (every seed keeps the parameters
            // it had before they existed): in one seed of two, up to 5 messages in a
            // thousand are held 1-5 s.
            long_delay_per_mille: {
                let mut long_rng = SmallRng::seed_from_u64(seed ^ 0x10_9de1);
                if long_rng.gen_bool(0.5) {
                    long_rng.gen_range(1..=5)
                } else {
                    0
                }
            },
        };
        let write_min_ms = rng.gen_range(1..=3);
        let cluster = ClusterOptions {
            members,
            net,
            write_min_ms,
            write_max_ms: write_min_ms + rng.gen_range(0..=30),
            torn_writes: rng.gen_bool(0.5),
            group_commit: rng.gen_bool(0.5),
            max_entries_per_append: *[1, 3, 64, 512].choose(&mut rng).unwrap_or(&64),
            max_inflight_appends: rng.gen_range(1..=8),
            max_bytes_per_append: *[64, 1024, 1 << 20].choose(&mut rng).unwrap_or(&1024),
            snapshot_per_mille: 0,
            snapshot_chunk_bytes: 1 << 20,
            snapshot_catchup_entries: 0,
            // Pre-vote on in three seeds of four, from its own stream so every seed
            // keeps the other parameters it had before pre-vote existed.
            pre_vote: SmallRng::seed_from_u64(seed ^ 0x9e_7073).gen_bool(0.75),
            voters: members,
            membership_changes: false,
            injected_bug: None,
        };
        // Snapshot parameters come from their own stream, so every seed keeps the
        // parameters it had before snapshots were modelled.
        let mut snap_rng = rand::rngs::SmallRng::seed_from_u64(seed ^ 0x5a9_5407);
        let mut cluster = cluster;
        // RAFTKV_SIM_SNAPSHOTS=0 turns them off (to tell a snapshot bug from another).
        let allowed = std::env::var("RAFTKV_SIM_SNAPSHOTS").map_or(true, |v| v != "0");
        if snap_rng.gen_bool(0.75) && allowed {
            cluster.snapshot_per_mille = snap_rng.gen_range(1..=100);
            cluster.snapshot_chunk_bytes = *[256, 512, 4096, 1 << 20]
                .choose(&mut snap_rng)
                .unwrap_or(&256);
        }
        // The trailing window kept at compaction, from its own stream too: none in one
        // seed of four, as before the window existed.
        let mut keep_rng = SmallRng::seed_from_u64(seed ^ 0xca7c_0b5e);
        if keep_rng.gen_bool(0.75) {
            cluster.snapshot_catchup_entries = keep_rng.gen_range(1..=500);
        }
        let client_gap_min_ms = rng.gen_range(1..=20);
        let fault_gap_min_ms = rng.gen_range(50..=500);
        SimParams {
            seed,
            cluster,
            safety_ms: rng.gen_range(5_000..=40_000),
            client_gap_min_ms,
            client_gap_max_ms: client_gap_min_ms + rng.gen_range(0..=80),
            read_per_mille: rng.gen_range(0..=300),
            max_pad_bytes: rng.gen_range(0..=64),
            fault_gap_min_ms,
            fault_gap_max_ms: fault_gap_min_ms + rng.gen_range(0..=1_500),
            max_down: rng.gen_range(0..=members),
        }
    }
}

impl fmt::Display for SimParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.cluster;
        write!(
            f,
            "seed={} members={} safety={}ms net(drop={}‰ dup={}‰ delay={}..={}ms long={}‰) write={}..={}ms torn={} group_commit={} \
             append(max_entries={} max_bytes={} inflight={}) clients(gap={}..={}ms reads={}‰ pad<={}B) \
             faults(gap={}..={}ms max_down={}) snapshots(chance={}‰ chunk={}B keep={}) pre_vote={}",
            self.seed,
            c.members,
            self.safety_ms,
            c.net.drop_per_mille,
            c.net.dup_per_mille,
            c.net.delay_min_ms,
            c.net.delay_max_ms,
            c.net.long_delay_per_mille,
            c.write_min_ms,
            c.write_max_ms,
            c.torn_writes,
            c.group_commit,
            c.max_entries_per_append,
            c.max_bytes_per_append,
            c.max_inflight_appends,
            self.client_gap_min_ms,
            self.client_gap_max_ms,
            self.read_per_mille,
            self.max_pad_bytes,
            self.fault_gap_min_ms,
            self.fault_gap_max_ms,
            self.max_down,
            c.snapshot_per_mille,
            c.snapshot_chunk_bytes,
            c.snapshot_catchup_entries,
            c.pre_vote
        )
    }
}
