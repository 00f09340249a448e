//! Pipelined client connections: one connection carries many requests at once, each
//! answer names the request it answers, and answers come in the order requests
//! complete. A client that never reads its answers holds a bounded part of the node,
//! and a connection closed with requests in flight leaves nothing behind.
//!
//! These tests speak the wire protocol over raw sockets (`support::raw`), so that they
//! control exactly what is in flight.

mod support;

use std::io::{ErrorKind, Write};
use std::time::{Duration, Instant};

use raftkv::kv::{Command, CommandResult, Request};
use raftkv::net::{self, ClientRequest, ClientResponse};
use support::raw::Raw;
use support::{wait_for, Cluster};

fn put(client_id: u64, seq: u64, key: &str, value: &str) -> ClientRequest {
    ClientRequest::Write(Request {
        client_id,
        seq,
        command: Command::Put {
            key: key.into(),
            value: value.into(),
        },
    })
}

fn get(key: &str, stale: bool) -> ClientRequest {
    ClientRequest::Get {
        key: key.into(),
        stale,
    }
}

/// The leader's count of client requests in flight, asked on a connection of its own.
fn in_flight(addr: &str) -> u64 {
    let mut raw = Raw::open(addr).expect("hello");
    raw.status().expect("status").client_requests_in_flight
}

/// Resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS value")
}

#[test]
fn answers_on_one_connection_come_as_requests_complete_and_name_their_requests() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let mut raw = Raw::open(&cluster.addrs[leader]).expect("hello");
    let answer = raw.call(&put(5, 1, "k0", "before")).expect("first write");
    assert_eq!(answer, ClientResponse::Written(CommandResult::Put));
    // Without its followers the leader can neither commit a write nor confirm a read.
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &f in &followers {
        cluster.signal(f, "STOP");
    }
    raw.send(10, &put(5, 2, "k1", "after"))
        .expect("send the write");
    raw.send(11, &get("k0", false))
        .expect("send the linearizable read");
    raw.send(12, &get("k0", true)).expect("send the stale read");
    let first = raw.recv().expect("the first answer");
    for &f in &followers {
        cluster.signal(f, "CONT");
    }
    assert_eq!(
        first,
        (12, ClientResponse::Value(Some("before".into()))),
        "the stale read, sent last, must be answered first\n{}",
        cluster.logs()
    );
    let mut rest = [raw.recv().expect("answer"), raw.recv().expect("answer")];
    rest.sort_by_key(|(id, _)| *id);
    // Each answer is of its own request's kind: the write's (applied, or outcome
    // unknown if leadership moved meanwhile), the read's (the value, or refused).
    let [(write_id, write), (read_id, read)] = rest;
    assert_eq!((write_id, read_id), (10, 11));
    assert!(
        matches!(
            write,
            ClientResponse::Written(CommandResult::Put)
                | ClientResponse::Unavailable {
                    outcome_unknown: true,
                    ..
                }
        ),
        "answer 10 is not a write's: {write:?}"
    );
    assert!(
        matches!(
            &read,
            ClientResponse::Value(Some(v)) if v == "before"
        ) || matches!(
            read,
            ClientResponse::Unavailable {
                outcome_unknown: false,
                ..
            } | ClientResponse::NotLeader { .. }
        ),
        "answer 11 is not the read's: {read:?}"
    );
}

/// Sends stale gets of `key` on `raw` without reading any answer, until the node has
/// not taken a byte for half a second; returns how many were sent.
fn send_until_the_node_stops_reading(raw: &mut Raw, key: &str) -> u64 {
    raw.stream.set_nonblocking(true).expect("nonblocking");
    let mut frame = Vec::new();
    let mut sent = 0u64;
    let mut pending: &[u8] = &[];
    let mut blocked_since: Option<Instant> = None;
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < give_up, "the node kept reading for 60 s");
        if pending.is_empty() {
            frame.clear();
            sent += 1;
            net::encode_tagged_frame(&mut frame, sent, &get(key, true)).expect("encode");
            pending = &frame;
        }
        match raw.stream.write(pending) {
            Ok(n) => {
                pending = &pending[n..];
                blocked_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Duration::from_millis(500) {
                    return sent;
                }
                // Polling a socket that cannot be awaited without extra crates.
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("sending: {e}"),
        }
    }
}

#[test]
fn a_client_that_never_reads_its_answers_holds_bounded_room_and_others_are_served() {
    let mut cluster = Cluster::start_with(3, &["--max-inflight-per-conn", "8"]);
    // Answers of 256 KiB fill the socket buffers after a few dozen. Written through the
    // client library, which retries if leadership moves under the large write.
    let big = cluster.path().join("big");
    std::fs::write(&big, "b".repeat(256 << 10)).expect("write the value file");
    let big = big.to_str().expect("utf-8 path");
    let out = cluster.client_all(&["--timeout", "20", "put", "big", "--value-file", big]);
    assert_eq!(out.code, Some(0), "{out:?}\n{}", cluster.logs());
    let leader = cluster.leader();
    let addr = cluster.addrs[leader].clone();
    let pid = cluster.pid(leader).expect("leader pid");
    let rss_before = rss_kib(pid);

    let mut hog = Raw::open(&addr).expect("hello");
    let sent = send_until_the_node_stops_reading(&mut hog, "big");
    let held = in_flight(&addr);
    assert!(held <= 8, "{held} requests in flight, over the limit of 8");

    // Everyone else is served meanwhile, within the client's deadline.
    let put_out = cluster.client(&[leader], &["--timeout", "10", "put", "other", "1"]);
    assert_eq!(put_out.code, Some(0), "{put_out:?}\n{}", cluster.logs());
    let get_out = cluster.client(&[leader], &["--timeout", "10", "get", "other"]);
    assert_eq!(get_out.stdout, "1\n", "{get_out:?}");
    let mut other = Raw::open(&addr).expect("hello beside the hog");
    let answer = other
        .call(&get("big", true))
        .expect("a read beside the hog");
    assert!(
        matches!(answer, ClientResponse::Value(Some(_))),
        "{answer:?}"
    );

    // The node holds at most the window's answers of the stalled client, not the
    // `sent` it was sent (each would be a 256 KiB answer).
    let grown_mib = rss_kib(pid).saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 100,
        "the leader grew by {grown_mib} MiB while {sent} requests of 256 KiB answers were sent"
    );
    drop(hog);
    let drained = wait_for(Duration::from_secs(15), || {
        (in_flight(&addr) == 0).then_some(())
    });
    assert!(
        drained.is_some(),
        "requests of the closed client still in flight"
    );
}

#[test]
fn a_connection_closed_with_requests_in_flight_leaves_nothing_behind() {
    // Check-quorum deposes a leader that hears from no follower for an election
    // timeout, which would answer (and so drain) the requests before all 21 are in
    // flight; the slow debug build of the lock-order check took longer than the
    // default 550 ms to send them. A 5 s timeout leaves room.
    let slow = [
        "--election-timeout-min-ms",
        "5000",
        "--election-timeout-max-ms",
        "6000",
    ];
    let mut cluster = Cluster::start_with(3, &slow);
    let leader = cluster
        .wait_leader(&[0, 1, 2], Duration::from_secs(40))
        .expect("a leader");
    let addr = cluster.addrs[leader].clone();
    let mut raw = Raw::open(&addr).expect("hello");
    let answer = raw.call(&put(7, 1, "acked", "yes")).expect("a write");
    assert_eq!(answer, ClientResponse::Written(CommandResult::Put));
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &f in &followers {
        cluster.signal(f, "STOP");
    }
    for n in 0..20u64 {
        let request = put(100 + n, 1, &format!("k{n}"), "v");
        raw.send(n + 1, &request).expect("send");
    }
    raw.send(21, &get("acked", false)).expect("send");
    let all_in = wait_for(Duration::from_secs(10), || {
        (in_flight(&addr) == 21).then_some(())
    });
    assert!(all_in.is_some(), "not every request was in flight");
    drop(raw);
    for &f in &followers {
        cluster.signal(f, "CONT");
    }
    let drained = wait_for(Duration::from_secs(15), || {
        (in_flight(&addr) == 0).then_some(())
    });
    assert!(
        drained.is_some(),
        "requests of a closed connection still in flight"
    );
    // The node goes on serving, and what was acknowledged is there.
    let out = cluster.client_all(&["get", "acked"]);
    assert_eq!(out.stdout, "yes\n", "{out:?}\n{}", cluster.logs());
    let out = cluster.client_all(&["put", "after", "1"]);
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn a_pipeline_answers_by_id_and_a_retried_write_in_flight_is_applied_once() {
    let mut cluster = Cluster::start(1);
    let leader = cluster.leader();
    let opts = raftkv::client::ClientOptions {
        secret: cluster.client_secret(),
        ..Default::default()
    };
    let mut pipe =
        raftkv::client::Pipeline::connect(&cluster.addrs[leader], &opts, 4).expect("connect");
    // The same write twice, as a retry would send it: one (client id, seq).
    let cas = ClientRequest::Write(Request {
        client_id: 9,
        seq: 1,
        command: Command::Cas {
            key: "once".into(),
            expected: None,
            new: "x".into(),
        },
    });
    let first = pipe.send(&cas).expect("send");
    let retry = pipe.send(&cas).expect("send");
    let mut answers: Vec<(u64, ClientResponse)> =
        (0..2).map(|_| pipe.recv().expect("answer")).collect();
    answers.sort_by_key(|(id, _)| *id);
    // Applied once: the retry gets the saved result, not a mismatch with its own value.
    assert_eq!(
        answers[0],
        (first, ClientResponse::Written(CommandResult::CasOk))
    );
    assert_eq!(
        answers[1],
        (retry, ClientResponse::Written(CommandResult::CasOk))
    );
    // A read sent once both were acknowledged sees the value.
    let read = pipe.send(&get("once", false)).expect("send");
    let answer = pipe.recv().expect("answer");
    assert_eq!(answer, (read, ClientResponse::Value(Some("x".into()))));
    assert!(pipe.recv().is_err(), "nothing is in flight any more");
}

#[test]
fn bench_over_shared_connections_finds_the_leader_and_runs_every_operation() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    // A follower first: the warm-up must move the connections to the leader.
    let mut order: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    order.push(leader);
    let addrs: Vec<&str> = order.iter().map(|&i| cluster.addrs[i].as_str()).collect();
    let addr = addrs.join(",");
    for (workload, extra) in [("put", None), ("get", Some("--spread"))] {
        let mut args = vec![
            "bench",
            "--addr",
            &addr,
            "--clients",
            "6",
            "--conns",
            "2",
            "--ops",
            "60",
            "--json",
        ];
        args.extend(extra);
        args.push(workload);
        let out = support::run_binary(&args, Duration::from_secs(60));
        assert_eq!(out.code, Some(0), "{args:?}: {out:?}\n{}", cluster.logs());
        assert!(out.stdout.contains("\"ops\":60,"), "{out:?}");
        assert!(out.stdout.contains("\"errors\":0,"), "{out:?}");
    }
}

#[test]
fn bench_refuses_more_connections_than_clients() {
    for conns in ["0", "5"] {
        let args = ["bench", "--clients", "4", "--conns", conns, "put"];
        let out = support::run_binary(&args, Duration::from_secs(20));
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.contains("--conns"), "{out:?}");
    }
}
