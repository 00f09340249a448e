//! Process tests of snapshots and log compaction: the WAL stays bounded under a long
//! write load, and a follower that missed compacted entries catches up through
//! InstallSnapshot.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::{run_binary, wait_for, Cluster};

/// The snapshot threshold the tests run with (entries).
const SNAPSHOT_ENTRIES: u64 = 1000;
/// A generous upper bound of one WAL record of the bench's writes: 16-byte key,
/// 100-byte value, client id, sequence number, framing and CRC.
const MAX_RECORD_BYTES: u64 = 256;

/// Total size of the files in `dir/wal` (0 if it does not exist yet).
fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("wal"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn status_u64(cluster: &Cluster, i: usize, key: &str) -> Option<u64> {
    cluster.status(i)?.get(key)?.parse().ok()
}

#[test]
fn fifty_thousand_writes_keep_the_wal_bounded() {
    let threshold = SNAPSHOT_ENTRIES.to_string();
    let mut cluster = Cluster::start_with(3, &["--snapshot-entries", &threshold]);
    cluster.leader();
    let dirs: Vec<_> = (0..3).map(|i| cluster.data_dir(i)).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut peak = 0;
            while !stop.load(Ordering::SeqCst) {
                peak = dirs
                    .iter()
                    .map(|d| wal_bytes(d))
                    .max()
                    .unwrap_or(0)
                    .max(peak);
                thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };
    let addr = cluster.addrs.join(",");
    let bench = run_binary(
        &[
            "bench",
            "--addr",
            &addr,
            "--clients",
            "32",
            "--ops",
            "50000",
            "--keys",
            "5000",
            "put",
        ],
        Duration::from_secs(300),
    );
    stop.store(true, Ordering::SeqCst);
    let peak = sampler.join().expect("sampler thread");
    assert_eq!(bench.code, Some(0), "bench failed: {bench:?}");
    let leader = cluster.leader();
    let snapshot_index = status_u64(&cluster, leader, "snapshot_index").unwrap_or(0);
    assert!(
        snapshot_index >= 45_000,
        "leader's snapshot index {snapshot_index} after 50,000 writes with a threshold of {threshold}"
    );
    let bound = 4 * SNAPSHOT_ENTRIES * MAX_RECORD_BYTES;
    assert!(
        peak <= bound,
        "a WAL reached {peak} bytes; bound {bound} (4 snapshot intervals of {MAX_RECORD_BYTES}-byte records)"
    );
    for i in 0..3 {
        let bytes = status_u64(&cluster, i, "snapshot_bytes").unwrap_or(0);
        assert!(bytes > 0, "node {} reports no snapshot bytes", i + 1);
    }
}

#[test]
fn a_follower_behind_the_leaders_snapshot_catches_up_through_install_snapshot() {
    let mut cluster = Cluster::start_with(3, &["--snapshot-entries", "200"]);
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    let put = |k: &str, v: &str| {
        let out = cluster.client(&[leader], &["put", k, v]);
        assert_eq!(out.code, Some(0), "put {k}: {out:?}");
    };
    put("before", "one");
    cluster.kill(follower);
    let follower_last = 1 + 3; // generous: a no-op, "before", and at most a few more
    let addr = cluster.addrs[leader].clone();
    let bench = run_binary(
        &[
            "bench",
            "--addr",
            &addr,
            "--clients",
            "16",
            "--ops",
            "3000",
            "put",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(bench.code, Some(0), "bench failed: {bench:?}");
    let out = cluster.client(&[leader], &["put", "after", "two"]);
    assert_eq!(out.code, Some(0), "put after: {out:?}");
    let compacted = wait_for(Duration::from_secs(20), || {
        let first = status_u64(&cluster, leader, "first_index")?;
        (first > follower_last + 100).then_some(first)
    });
    assert!(
        compacted.is_some(),
        "the leader never compacted past the follower"
    );
    cluster.start_node(follower);
    for (key, value) in [("before", "one"), ("after", "two")] {
        let got = wait_for(Duration::from_secs(30), || {
            let out = cluster.client(&[follower], &["get", "--stale", key]);
            (out.code == Some(0) && out.stdout == format!("{value}\n")).then_some(())
        });
        assert!(
            got.is_some(),
            "follower never served {key}={value} (stale read)"
        );
    }
    let logs = std::fs::read_to_string(cluster.path().join(format!("node{}.log", follower + 1)))
        .unwrap_or_default();
    assert!(
        logs.contains("installed snapshot"),
        "the follower caught up without InstallSnapshot:\n{logs}"
    );
    // Same data: every bench key reads the same on the follower (stale) as on the
    // leader, once the follower has applied what the leader had.
    let leader_applied = status_u64(&cluster, leader, "applied_index").unwrap_or(u64::MAX);
    let caught_up = wait_for(Duration::from_secs(20), || {
        let applied = status_u64(&cluster, follower, "applied_index")?;
        (applied >= leader_applied).then_some(())
    });
    assert!(
        caught_up.is_some(),
        "follower never reached {leader_applied}"
    );
    for k in ["k000000000000000", "k000000000000007", "k000000000000999"] {
        let a = cluster.client(&[leader], &["get", "--stale", k]);
        let b = cluster.client(&[follower], &["get", "--stale", k]);
        assert_eq!((a.code, &a.stdout), (b.code, &b.stdout), "key {k} differs");
    }
}
