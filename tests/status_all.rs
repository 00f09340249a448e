//! `raftkv client status --all`: one row per member, unreachable members shown (never
//! waited on past a deadline), exit 3 without a leader.

mod support;

use std::time::{Duration, Instant};

use support::Cluster;

/// The `key: value` blocks of a non-terminal `status --all`, one map per row.
fn blocks(stdout: &str) -> Vec<Vec<(String, String)>> {
    stdout
        .split("\n\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.lines()
                .filter_map(|l| l.split_once(": ").or_else(|| l.split_once(':')))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect()
        })
        .collect()
}

fn field<'a>(row: &'a [(String, String)], key: &str) -> &'a str {
    row.iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {key} in {row:?}"))
}

const KEYS: [&str; 11] = [
    "id",
    "addr",
    "role",
    "term",
    "leader",
    "commit_index",
    "applied_index",
    "lag",
    "snapshot_index",
    "data_bytes",
    "alarm",
];

#[test]
fn three_members_up_give_three_rows_one_leader_and_valid_json() {
    let mut cluster = Cluster::start(3);
    cluster.leader();
    assert_eq!(cluster.client_all(&["put", "k", "v"]).code, Some(0));
    // Only node 0 in --addr: the others come from the leader's member list.
    let out = cluster.client(&[0], &["status", "--all"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let rows = blocks(&out.stdout);
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    let ids: Vec<&str> = rows.iter().map(|r| field(r, "id")).collect();
    assert_eq!(ids, ["1", "2", "3"]);
    let leaders = rows.iter().filter(|r| field(r, "role") == "leader").count();
    assert_eq!(leaders, 1, "{}", out.stdout);
    for row in &rows {
        let keys: Vec<&str> = row.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, KEYS);
        assert!(field(row, "data_bytes").parse::<u64>().unwrap() > 0);
        assert!(field(row, "lag").parse::<u64>().is_ok(), "{row:?}");
    }
    let json = cluster.client(&[0], &["status", "--all", "--json"]);
    assert_eq!(json.code, Some(0), "{}", json.stderr);
    let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("valid JSON");
    let array = value.as_array().expect("a JSON array");
    assert_eq!(array.len(), 3);
    for object in array {
        let keys: Vec<&str> = object
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut expected = KEYS.to_vec();
        expected.sort_unstable();
        let mut keys = keys;
        keys.sort_unstable();
        assert_eq!(keys, expected);
    }
}

#[test]
fn a_member_down_shows_unreachable_and_the_command_still_succeeds() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let down = (leader + 1) % 3;
    cluster.kill(down);
    let started = Instant::now();
    let out = cluster.client_all(&["--timeout", "10", "status", "--all"]);
    let took = started.elapsed();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let rows = blocks(&out.stdout);
    assert_eq!(rows.len(), 3, "{}", out.stdout);
    let row = &rows[down];
    assert_eq!(field(row, "id"), (down + 1).to_string());
    assert_eq!(field(row, "role"), "unreachable", "{}", out.stdout);
    assert_eq!(field(row, "lag"), "");
}

#[test]
fn no_leader_exits_3() {
    let mut cluster = Cluster::start(3);
    cluster.leader();
    cluster.kill(1);
    cluster.kill(2);
    let alone = |s: &std::collections::HashMap<String, String>| {
        s.get("leader").map(String::as_str) == Some("none")
    };
    support::wait_for(Duration::from_secs(15), || {
        cluster.status(0).filter(alone).map(|_| ())
    })
    .expect("node 1 forgets the leader");
    let out = cluster.client_all(&["--timeout", "2", "status", "--all"]);
    assert_eq!(out.code, Some(3), "{}{}", out.stdout, out.stderr);
    assert_eq!(blocks(&out.stdout).len(), 3, "{}", out.stdout);
}

#[test]
fn an_address_that_never_answers_costs_one_bounded_deadline() {
    let mut cluster = Cluster::start(3);
    cluster.leader();
    // Accepts connections (the kernel's backlog) but never answers a hello.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hole = black_hole.local_addr().expect("addr").to_string();
    let addrs = format!("{},{hole}", cluster.addrs.join(","));
    let started = Instant::now();
    // --timeout 30 would outlast run_binary's own 30 s deadline (code None) if a
    // member's call were not capped.
    let out = support::run_binary(
        &[
            "client",
            "--addr",
            &addrs,
            "--timeout",
            "30",
            "status",
            "--all",
        ],
        Duration::from_secs(30),
    );
    let took = started.elapsed();
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let rows = blocks(&out.stdout);
    assert_eq!(rows.len(), 4, "{}", out.stdout);
    let last = &rows[3];
    assert_eq!(
        (field(last, "id"), field(last, "addr")),
        ("", hole.as_str())
    );
    assert_eq!(field(last, "role"), "unreachable");
}
