//! Process tests of the integrity checks: a member whose state diverges is found by
//! the state digest checks through the log, a snapshot whose data does not match its
//! digest is never installed, and the quota.

mod support;

use std::path::Path;
use std::time::Duration;

use raftkv::kv::{Command, Request};
use raftkv::net::{ClientRequest, ClientResponse};

use support::{wait_for, Cluster};

/// Every this many entries the leader appends a check.
const INTERVAL: u64 = 5;

fn field(cluster: &Cluster, i: usize, key: &str) -> Option<String> {
    cluster.status(i).and_then(|s| s.get(key).cloned())
}

fn put(cluster: &Cluster, key: &str, value: &str) {
    let out = cluster.client_all(&["put", key, value]);
    assert_eq!(out.code, Some(0), "put {key}: {out:?}\n{}", cluster.logs());
}

/// Parses `CORRUPT n<id> at index <i>`.
fn parse_alarm(alarm: &str) -> Option<(usize, u64)> {
    let rest = alarm.strip_prefix("CORRUPT n")?;
    let (id, index) = rest.split_once(" at index ")?;
    Some((id.parse().ok()?, index.parse().ok()?))
}

#[test]
fn a_follower_whose_state_diverges_is_named_within_one_check_interval() {
    let interval = INTERVAL.to_string();
    let mut cluster = Cluster::new(3, &["--digest-check-entries", &interval]);
    for i in 0..3 {
        cluster.start_node(i);
    }
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    // Restart one follower with the fault: its puts of "victim" store an altered value.
    cluster.kill(follower);
    cluster.set_env(follower, "RAFTKV_TEST_FLIP_KEY", "victim");
    cluster.start_node(follower);
    put(&cluster, "before", "1");
    assert_eq!(field(&cluster, leader, "alarm").as_deref(), Some("none"));

    put(&cluster, "victim", "value");
    let written: u64 = field(&cluster, leader, "last_index")
        .and_then(|v| v.parse().ok())
        .expect("leader's last_index");
    for n in 0..2 * INTERVAL {
        put(&cluster, &format!("after{n}"), "x");
    }
    let alarm = wait_for(Duration::from_secs(10), || {
        field(&cluster, leader, "alarm").filter(|a| a != "none")
    })
    .unwrap_or_else(|| panic!("no alarm on the leader\n{}", cluster.logs()));
    let (named, index) = parse_alarm(&alarm).unwrap_or_else(|| panic!("alarm {alarm:?}"));
    assert_eq!(
        named,
        follower + 1,
        "the alarm names the wrong member: {alarm}"
    );
    // The first check after the victim's entry: at most one interval (plus the check
    // entry itself) later.
    assert!(
        index <= written + INTERVAL + 1,
        "found at index {index}, the write was at or before {written}"
    );
    // The divergent member knows it too, and serves no reads.
    let own = wait_for(Duration::from_secs(10), || {
        field(&cluster, follower, "alarm").filter(|a| a != "none")
    });
    assert_eq!(own.as_deref(), Some(alarm.as_str()), "{}", cluster.logs());
    let read = cluster.client(&[follower], &["get", "--stale", "before"]);
    assert_eq!(
        read.code,
        Some(3),
        "a corrupt member served a read: {read:?}"
    );
    // Nor does it answer writes (forwarded, it would answer from its own state): it
    // redirects them to the leader.
    let mut raw = support::raw::Raw::open(&cluster.addrs[follower]).expect("hello");
    let write = raw.call(&ClientRequest::Write(Request {
        client_id: 1,
        seq: 1,
        command: Command::Put {
            key: "through".into(),
            value: "it".into(),
        },
    }));
    assert!(
        matches!(write, Ok(ClientResponse::NotLeader { .. })),
        "a corrupt member answered a write: {write:?}"
    );
    let log = std::fs::read_to_string(cluster.log_path(leader)).expect("leader log");
    assert!(
        log.contains(&format!("Remove n{}", follower + 1)),
        "the leader's log does not say what to do:\n{log}"
    );
    // The healthy members still serve.
    let other = 3 - leader - follower;
    let read = cluster.client(&[other], &["get", "--stale", "before"]);
    assert_eq!(read.code, Some(0), "{read:?}");
}

#[test]
fn writes_over_the_quota_are_refused_but_deletes_and_reads_work() {
    let cluster = Cluster::start_with(3, &["--quota-bytes", "100"]);
    let value = "v".repeat(60);
    put(&cluster, "a", &value);
    put(&cluster, "b", &value); // reaches 122 bytes: later sets are refused
    let refused = cluster.client_all(&["put", "c", "1"]);
    assert_eq!(refused.code, Some(4), "{refused:?}");
    assert!(refused.stderr.contains("quota"), "{refused:?}");
    let leader = (0..3)
        .find(|&i| field(&cluster, i, "role").as_deref() == Some("leader"))
        .expect("a leader");
    assert_eq!(field(&cluster, leader, "alarm").as_deref(), Some("NOSPACE"));
    // A write that does not grow the data (an overwrite of the same size) passes.
    let same_size = "w".repeat(60);
    let overwrite = cluster.client_all(&["put", "a", &same_size]);
    assert_eq!(overwrite.code, Some(0), "{overwrite:?}");
    let read = cluster.client_all(&["get", "a"]);
    assert_eq!(read.code, Some(0), "{read:?}");
    assert!(read.stdout.contains(&same_size));
    let deleted = cluster.client_all(&["delete", "b"]);
    assert_eq!(deleted.code, Some(0), "{deleted:?}");
    put(&cluster, "c", "1");
    let alarm = wait_for(Duration::from_secs(5), || {
        field(&cluster, leader, "alarm").filter(|a| a == "none")
    });
    assert!(alarm.is_some(), "NOSPACE stays after the delete");
}

#[test]
fn a_leader_whose_state_is_in_the_minority_names_itself_and_steps_down() {
    let interval = INTERVAL.to_string();
    let mut cluster = Cluster::new(3, &["--digest-check-entries", &interval]);
    for i in 0..3 {
        cluster.start_node(i);
    }
    let leader = cluster.leader();
    // Both followers store "victim" altered: the leader is the odd one out.
    for follower in (0..3).filter(|&i| i != leader) {
        cluster.kill(follower);
        cluster.set_env(follower, "RAFTKV_TEST_FLIP_KEY", "victim");
        cluster.start_node(follower);
    }
    put(&cluster, "victim", "value");
    for n in 0..2 * INTERVAL {
        put(&cluster, &format!("after{n}"), "x");
    }
    let alarm = wait_for(Duration::from_secs(10), || {
        field(&cluster, leader, "alarm").filter(|a| a != "none")
    })
    .unwrap_or_else(|| panic!("no alarm on the leader\n{}", cluster.logs()));
    let (named, _) = parse_alarm(&alarm).unwrap_or_else(|| panic!("alarm {alarm:?}"));
    assert_eq!(
        named,
        leader + 1,
        "the leader does not name itself: {alarm}"
    );
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new_leader = cluster.wait_leader(&others, Duration::from_secs(10));
    assert!(new_leader.is_some(), "no new leader\n{}", cluster.logs());
    assert_ne!(field(&cluster, leader, "role").as_deref(), Some("leader"));
    let read = cluster.client(&[leader], &["get", "--stale", "victim"]);
    assert_eq!(
        read.code,
        Some(3),
        "the diverged member served a read: {read:?}"
    );
}

/// Replaces `from` by `to` (same length) in the snapshot file at `path` and recomputes
/// the file's CRC, as a buggy encoder or a bit flip before the checksum would leave
/// it: only the state digest inside can tell. Written beside it, then renamed over it.
fn alter_snapshot_file(path: &Path, from: &[u8], to: &[u8]) {
    /// Bytes before the body: magic, version, body length, body CRC (`storage::codec`).
    const HEADER: usize = 20;
    let mut bytes = std::fs::read(path).expect("read the snapshot file");
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("the value in the snapshot file");
    bytes[at..at + to.len()].copy_from_slice(to);
    let crc = raftkv::storage::crc32(&bytes[HEADER..]);
    bytes[HEADER - 4..HEADER].copy_from_slice(&crc.to_le_bytes());
    let tmp = path.with_extension("altered");
    std::fs::write(&tmp, &bytes).expect("write the altered snapshot");
    std::fs::rename(&tmp, path).expect("rename it over the snapshot");
}

#[test]
fn a_snapshot_altered_under_a_recomputed_crc_is_refused_on_install() {
    const PROBE: &str = "integrity-probe-value";
    let mut cluster = Cluster::start_with(
        3,
        &[
            "--snapshot-entries",
            "20",
            "--snapshot-catchup-entries",
            "0",
        ],
    );
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    put(&cluster, "probe", PROBE);
    cluster.kill(follower);
    let snapshot_file = cluster.data_dir(follower).join("snapshot");
    assert!(
        !snapshot_file.exists(),
        "the follower has a snapshot already"
    );
    // Writes until both running members have a snapshot (which holds the probe); with
    // no entries kept before it, the follower can only catch up through a snapshot,
    // and whichever of the two leads by then sends its own, altered below.
    let running: Vec<usize> = (0..3).filter(|&i| i != follower).collect();
    let mut n = 0;
    let snapshotted = wait_for(Duration::from_secs(60), || {
        put(&cluster, &format!("fill{n}"), "x");
        n += 1;
        running
            .iter()
            .all(|&i| {
                field(&cluster, i, "first_index")
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_some_and(|first| first > 10)
            })
            .then_some(())
    });
    assert!(
        snapshotted.is_some(),
        "the members never compacted their logs"
    );
    for &i in &running {
        alter_snapshot_file(
            &cluster.data_dir(i).join("snapshot"),
            PROBE.as_bytes(),
            PROBE.to_uppercase().as_bytes(),
        );
    }

    cluster.start_node(follower);
    let stopped = wait_for(Duration::from_secs(30), || {
        (!cluster.is_running(follower)).then_some(())
    });
    assert!(
        stopped.is_some(),
        "the follower runs on after receiving an altered snapshot\n{}",
        cluster.logs()
    );
    let log = std::fs::read_to_string(cluster.log_path(follower)).expect("follower log");
    assert!(
        log.contains("digest"),
        "the follower's log does not name the digest mismatch:\n{log}"
    );
    assert!(
        !snapshot_file.exists(),
        "the altered snapshot was installed in the follower's data directory:\n{log}"
    );
    // The other members go on.
    put(&cluster, "after", "1");
}
