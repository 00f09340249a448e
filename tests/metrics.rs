//! Process tests of `--metrics-addr`: `GET /metrics` (Prometheus text) and
//! `GET /health` on real nodes, over a plain `TcpStream`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use support::{free_ports, wait_for, Cluster};

/// Sends `GET path` and returns (status line, headers, body); `None` on an I/O error.
fn get(addr: &str, path: &str) -> Option<(String, String, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    Some((status.to_string(), headers.to_string(), body.to_string()))
}

/// The value of the sample line `name` (labels included) in a scrape.
fn sample(body: &str, name: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

const PUTS_OK: &str = "raftkv_client_requests_total{op=\"put\",result=\"ok\"}";
const APPLIED: &str = "raftkv_server_proposals_applied_total";

fn start() -> (Cluster, Vec<String>) {
    let mut cluster = Cluster::new(3, &[]);
    let metrics: Vec<String> = free_ports(3)
        .into_iter()
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    for (i, addr) in metrics.iter().enumerate() {
        cluster.set_node_args(i, &["--metrics-addr", addr]);
        cluster.start_node(i);
    }
    (cluster, metrics)
}

fn scrape(addr: &str) -> String {
    let (status, headers, body) = get(addr, "/metrics").expect("scrape /metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{headers}\n{body}");
    body
}

#[test]
fn every_member_serves_metrics_that_count_writes() {
    let (mut cluster, metrics) = start();
    let leader = cluster.leader();
    // Every member learns the leader (has_leader 1) and serves the text format.
    for addr in &metrics {
        let seen = wait_for(Duration::from_secs(10), || {
            let (_, headers, body) = get(addr, "/metrics")?;
            (sample(&body, "raftkv_server_has_leader") == Some(1.0)).then_some(headers)
        });
        let headers = seen.unwrap_or_else(|| panic!("{addr}: has_leader never 1"));
        assert!(
            headers.contains("Content-Type: text/plain; version=0.0.4"),
            "{headers}"
        );
    }
    let before = scrape(&metrics[leader]);
    let puts_before = sample(&before, PUTS_OK).expect("put/ok sample");
    let applied_before: Vec<f64> = metrics
        .iter()
        .map(|a| sample(&scrape(a), APPLIED).expect("applied sample"))
        .collect();
    for i in 0..20 {
        let out = cluster.client(&[leader], &["put", &format!("k{i}"), "v"]);
        assert_eq!(out.code, Some(0), "put {i}: {out:?}");
    }
    let after = scrape(&metrics[leader]);
    let puts_after = sample(&after, PUTS_OK).expect("put/ok sample");
    assert!(
        puts_after >= puts_before + 20.0,
        "put/ok went from {puts_before} to {puts_after}"
    );
    for (addr, was) in metrics.iter().zip(applied_before) {
        let moved = wait_for(Duration::from_secs(10), || {
            let now = sample(&scrape(addr), APPLIED)?;
            (now >= was + 20.0).then_some(now)
        });
        assert!(moved.is_some(), "{addr}: applied stayed near {was}");
    }
    assert!(
        sample(&after, "raftkv_server_is_leader") == Some(1.0),
        "{after}"
    );
    // The leader's replicators counted what they sent to each follower.
    for i in (0..3).filter(|&i| i != leader) {
        let line = format!("raftkv_network_peer_sent_bytes_total{{to=\"{}\"}}", i + 1);
        let sent = sample(&after, &line).unwrap_or(0.0);
        assert!(sent > 0.0, "{line} is {sent}:\n{after}");
    }
}

#[test]
fn health_is_ok_with_a_leader_and_unknown_paths_are_404() {
    let (mut cluster, metrics) = start();
    let leader = cluster.leader();
    let healthy = wait_for(Duration::from_secs(10), || {
        let (status, _, body) = get(&metrics[leader], "/health")?;
        (status == "HTTP/1.1 200 OK").then_some(body)
    });
    assert_eq!(healthy.as_deref(), Some("ok\n"));
    let (status, _, _) = get(&metrics[leader], "/nope").expect("GET /nope");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    // With its followers killed the leader steps down and knows no leader: 503.
    let others: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &others {
        cluster.kill(i);
    }
    let unhealthy = wait_for(Duration::from_secs(15), || {
        let (status, _, body) = get(&metrics[leader], "/health")?;
        (status == "HTTP/1.1 503 Service Unavailable").then_some(body)
    });
    assert!(
        unhealthy.is_some(),
        "the leader stayed healthy without a quorum"
    );
}
