//! Process tests of the integrity checks: a member whose state diverges is found by
//! the state digest checks through the log, and the quota.

mod support;

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
    let read = cluster.client_all(&["get", "a"]);
    assert_eq!(read.code, Some(0), "{read:?}");
    assert!(read.stdout.contains(&value));
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
