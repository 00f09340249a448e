//! Process tests: real `raftkv node` processes of the built binary on ephemeral ports,
//! driven through `raftkv client`, with crashes by SIGKILL and restarts.

mod support;

use std::time::Duration;

use support::{wait_for, Cluster};

fn assert_ok(out: &support::Outcome, what: &str) {
    assert_eq!(out.code, Some(0), "{what} failed: {out:?}");
}

/// Reads `key` through node `i` (linearizable), expecting `value`.
fn assert_value(cluster: &Cluster, i: usize, key: &str, value: &str) {
    let out = cluster.client(&[i], &["get", key]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), format!("{value}\n").as_str()),
        "get {key} through node {}: {out:?}",
        i + 1
    );
}

#[test]
fn a_leader_is_elected_and_every_status_agrees_on_it() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let agreed = wait_for(Duration::from_secs(10), || {
        let statuses: Vec<_> = (0..3).filter_map(|i| cluster.status(i)).collect();
        let same = statuses.len() == 3
            && statuses.iter().all(|s| {
                s.get("term") == statuses[0].get("term")
                    && s.get("leader") == statuses[0].get("leader")
            });
        same.then(|| statuses[0].clone())
    })
    .unwrap_or_else(|| panic!("statuses never agreed on term and leader"));
    let leader_field = agreed.get("leader").cloned().unwrap_or_default();
    assert_eq!(
        leader_field.split_whitespace().next(),
        Some((leader + 1).to_string().as_str()),
        "status leader field {leader_field:?}"
    );
}

#[test]
fn a_put_through_a_follower_is_forwarded_and_readable_on_every_node() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let follower = (leader + 1) % 3;
    assert_ok(
        &cluster.client(&[follower], &["put", "color", "blue"]),
        "put via follower",
    );
    for i in 0..3 {
        assert_value(&cluster, i, "color", "blue");
    }
    // A stale read on each node converges to the write too.
    for i in 0..3 {
        let seen = wait_for(Duration::from_secs(5), || {
            let out = cluster.client(&[i], &["get", "--stale", "color"]);
            (out.stdout == "blue\n").then_some(())
        });
        assert!(seen.is_some(), "node {} never applied the write", i + 1);
    }
}

#[test]
fn killing_the_leader_elects_another_that_keeps_every_write() {
    let mut cluster = Cluster::start(3);
    let old = cluster.leader();
    for k in 0..5 {
        assert_ok(
            &cluster.client_all(&["put", &format!("k{k}"), &format!("v{k}")]),
            "put",
        );
    }
    cluster.kill(old);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    let new = cluster
        .wait_leader(&survivors, Duration::from_secs(10))
        .expect("a new leader within 10 s");
    assert_ne!(new, old);
    for k in 0..5 {
        assert_value(&cluster, new, &format!("k{k}"), &format!("v{k}"));
    }
    assert_ok(
        &cluster.client(&survivors, &["put", "after", "failover"]),
        "put after failover",
    );

    // The old leader comes back and catches up.
    cluster.start_node(old);
    let caught_up = wait_for(Duration::from_secs(10), || {
        let out = cluster.client(&[old], &["get", "--stale", "after"]);
        (out.stdout == "failover\n").then_some(())
    });
    assert!(caught_up.is_some(), "restarted old leader never caught up");
}

#[test]
fn a_full_restart_keeps_all_data() {
    let mut cluster = Cluster::start(3);
    cluster.leader();
    for k in 0..10 {
        assert_ok(
            &cluster.client_all(&["put", &format!("key{k}"), &format!("{k}")]),
            "put",
        );
    }
    assert_ok(&cluster.client_all(&["delete", "key3"]), "delete");
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.start_node(i);
    }
    let leader = cluster.leader();
    for k in (0..10).filter(|&k| k != 3) {
        assert_value(&cluster, leader, &format!("key{k}"), &k.to_string());
    }
    let gone = cluster.client_all(&["get", "key3"]);
    assert_eq!(gone.code, Some(1), "deleted key came back: {gone:?}");
}

#[test]
fn with_one_of_three_down_the_cluster_keeps_working() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let down = (leader + 2) % 3;
    cluster.kill(down);
    let up: Vec<usize> = (0..3).filter(|&i| i != down).collect();
    assert_ok(
        &cluster.client(&up, &["put", "x", "1"]),
        "put with one node down",
    );
    assert_ok(
        &cluster.client(&up, &["cas", "x", "1", "2"]),
        "cas with one node down",
    );
    assert_value(&cluster, up[0], "x", "2");
}

#[test]
fn a_node_alone_refuses_writes_with_exit_3() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    for i in (0..3).filter(|&i| i != leader) {
        cluster.kill(i);
    }
    let out = cluster.client(&[leader], &["--timeout", "3", "put", "lonely", "yes"]);
    assert_eq!(
        out.code,
        Some(3),
        "a minority must not acknowledge a write: {out:?}"
    );
    assert!(
        out.stderr.contains("unknown") || out.stderr.contains("unavailable"),
        "the message must say the outcome is unknown: {out:?}"
    );
}
