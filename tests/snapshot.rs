//! Process tests of snapshots and log compaction: the WAL stays bounded under a long
//! write load, a follower that missed compacted entries catches up through
//! InstallSnapshot, and one a few hundred entries behind catches up from the trailing
//! entries the leader keeps after compaction.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use support::{run_binary, wait_for, Cluster};

/// The snapshot threshold the tests run with (entries).
const SNAPSHOT_ENTRIES: u64 = 1000;
/// The entries the WAL test keeps before each snapshot (`--snapshot-catchup-entries`).
const CATCHUP_ENTRIES: u64 = 2000;
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
    let catchup = CATCHUP_ENTRIES.to_string();
    let mut cluster = Cluster::start_with(
        3,
        &[
            "--snapshot-entries",
            &threshold,
            "--snapshot-catchup-entries",
            &catchup,
        ],
    );
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
    let bound = (4 * SNAPSHOT_ENTRIES + CATCHUP_ENTRIES) * MAX_RECORD_BYTES;
    assert!(
        peak <= bound,
        "a WAL reached {peak} bytes; bound {bound} (4 snapshot intervals and the \
         {CATCHUP_ENTRIES} entries kept before a snapshot, of {MAX_RECORD_BYTES}-byte records)"
    );
    for i in 0..3 {
        let bytes = status_u64(&cluster, i, "snapshot_bytes").unwrap_or(0);
        assert!(bytes > 0, "node {} reports no snapshot bytes", i + 1);
    }
}

#[test]
fn a_follower_behind_the_leaders_snapshot_catches_up_through_install_snapshot() {
    // No trailing entries kept: the follower is behind the log, not just the snapshot.
    let mut cluster = Cluster::start_with(
        3,
        &[
            "--snapshot-entries",
            "200",
            "--snapshot-catchup-entries",
            "0",
        ],
    );
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    let put = |k: &str, v: &str| {
        let out = cluster.client(&[leader], &["put", k, v]);
        assert_eq!(out.code, Some(0), "put {k}: {out:?}");
    };
    put("before", "one");
    cluster.kill(follower);
    let follower_last = 1 + 3; // generous: a no-op, "before", and at most a few more
    bench_puts(&cluster.addrs[leader], 16, 3000);
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

#[test]
fn a_follower_a_few_hundred_entries_behind_catches_up_by_append_entries() {
    // Default --snapshot-catchup-entries: the leader keeps 5000 entries before its
    // snapshot, so a follower 600 entries behind needs no snapshot.
    let mut cluster = Cluster::start_with(3, &["--snapshot-entries", "200"]);
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    let out = cluster.client(&[leader], &["put", "before", "one"]);
    assert_eq!(out.code, Some(0), "put before: {out:?}");
    let stopped_at = wait_for(Duration::from_secs(10), || {
        let applied = status_u64(&cluster, follower, "applied_index")?;
        (applied >= status_u64(&cluster, leader, "commit_index")?).then_some(applied)
    })
    .expect("the follower never applied the first write");
    cluster.kill(follower);
    bench_puts(&cluster.addrs[leader], 8, 600);
    // The leader took a snapshot past everything the follower has.
    let snapshotted = wait_for(Duration::from_secs(20), || {
        let snapshot = status_u64(&cluster, leader, "snapshot_index")?;
        (snapshot > stopped_at + 200).then_some(snapshot)
    });
    assert!(
        snapshotted.is_some(),
        "the leader never snapshotted past the follower's index {stopped_at}"
    );
    let first = status_u64(&cluster, leader, "first_index").unwrap_or(u64::MAX);
    assert!(
        first <= stopped_at + 1,
        "the leader's log starts at {first}: it kept no trailing entries for a follower at {stopped_at}"
    );
    cluster.start_node(follower);
    let leader_applied = status_u64(&cluster, leader, "applied_index").unwrap_or(u64::MAX);
    let caught_up = wait_for(Duration::from_secs(30), || {
        let applied = status_u64(&cluster, follower, "applied_index")?;
        (applied >= leader_applied).then_some(())
    });
    assert!(
        caught_up.is_some(),
        "follower never reached {leader_applied}"
    );
    let logs = std::fs::read_to_string(cluster.log_path(follower)).unwrap_or_default();
    assert!(
        !logs.contains("installed snapshot"),
        "the follower needed InstallSnapshot although the leader could send entries:\n{logs}"
    );
    let out = cluster.client(&[follower], &["get", "--stale", "before"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "one\n"),
        "{out:?}"
    );
}

/// Writes `ops` keys through `addr` with `raftkv bench` and `clients` clients; every
/// write must succeed.
fn bench_puts(addr: &str, clients: u32, ops: u32) {
    let (clients, ops) = (clients.to_string(), ops.to_string());
    let args = [
        "bench",
        "--addr",
        addr,
        "--clients",
        &clients,
        "--ops",
        &ops,
        "put",
    ];
    let bench = run_binary(&args, Duration::from_secs(120));
    assert_eq!(bench.code, Some(0), "bench failed: {bench:?}");
}
