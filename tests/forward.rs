//! Any member takes writes: a write sent to a follower is forwarded to the leader and
//! answered by the follower once it has applied it, never redirected.
//!
//! The wire-level tests use a raw connection, so that a redirect would show as one
//! instead of being followed by the client library; the CLI tests use the binary.

mod support;

use std::time::{Duration, Instant};

use raftkv::kv::{Command, CommandResult, Request};
use raftkv::net::{ClientRequest, ClientResponse};
use support::raw::Raw;
use support::{wait_for, Cluster};

fn write(client_id: u64, seq: u64, command: Command) -> ClientRequest {
    ClientRequest::Write(Request {
        client_id,
        seq,
        command,
    })
}

fn put(key: &str, value: &str) -> Command {
    Command::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn get(key: &str) -> ClientRequest {
    ClientRequest::Get {
        key: key.into(),
        stale: false,
    }
}

/// The members other than `leader`.
fn followers(leader: usize) -> Vec<usize> {
    (0..3).filter(|&i| i != leader).collect()
}

#[test]
fn put_cas_and_delete_through_a_follower_are_answered_by_it() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let f = followers(leader)[0];
    let mut raw = Raw::open(&cluster.addrs[f]).expect("hello");
    let cas = Command::Cas {
        key: "k".into(),
        expected: Some("v1".into()),
        new: "v2".into(),
    };
    let steps = [
        (put("k", "v1"), CommandResult::Put),
        (cas, CommandResult::CasOk),
        (
            Command::Delete { key: "k".into() },
            CommandResult::Deleted { existed: true },
        ),
    ];
    for (seq, (command, expected)) in (1..).zip(steps) {
        let answer = raw.call(&write(5, seq, command)).expect("an answer");
        assert_eq!(
            answer,
            ClientResponse::Written(expected),
            "write {seq} through follower n{}",
            f + 1
        );
    }
    // Answered once applied there: the follower's own linearizable read sees it.
    assert_eq!(
        raw.call(&get("k")).expect("an answer"),
        ClientResponse::Value(None)
    );
    let out = cluster.client(&[f], &["put", "color", "blue"]);
    assert_eq!(out.code, Some(0), "CLI put through a follower: {out:?}");
    for i in 0..3 {
        let out = cluster.client(&[i], &["get", "color"]);
        assert_eq!(out.stdout, "blue\n", "get on n{}: {out:?}", i + 1);
    }
}

#[test]
fn a_retry_through_another_follower_is_applied_once() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let [a, b] = followers(leader)[..] else {
        unreachable!("three members")
    };
    let mut first = Raw::open(&cluster.addrs[a]).expect("hello");
    let mut second = Raw::open(&cluster.addrs[b]).expect("hello");
    let seed = write(9, 1, put("n", "0"));
    assert!(matches!(first.call(&seed), Ok(ClientResponse::Written(_))));
    let cas = write(
        9,
        2,
        Command::Cas {
            key: "n".into(),
            expected: Some("0".into()),
            new: "1".into(),
        },
    );
    let ok = ClientResponse::Written(CommandResult::CasOk);
    assert_eq!(first.call(&cas).expect("an answer"), ok);
    // The same (client, sequence) again, as a client retrying after a lost answer: a
    // second application would find "1" and answer a mismatch.
    assert_eq!(second.call(&cas).expect("an answer"), ok);
    assert_eq!(
        second.call(&get("n")).expect("an answer"),
        ClientResponse::Value(Some("1".into()))
    );
}

#[test]
fn a_leader_lost_mid_forward_leaves_the_outcome_unknown() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let [f, other] = followers(leader)[..] else {
        unreachable!("three members")
    };
    // The leader stops reading (the forward sits in its socket), and no quorum is left
    // to elect another: the follower can learn nothing about the write.
    cluster.kill(other);
    cluster.signal(leader, "STOP");
    let out = cluster.client(&[f], &["--timeout", "3", "put", "lost", "maybe"]);
    cluster.kill(leader);
    assert_eq!(out.code, Some(3), "exit 3 (outcome unknown): {out:?}");
    assert!(
        out.stderr.contains("outcome unknown"),
        "the error says the outcome is unknown: {out:?}"
    );
}

#[test]
fn a_follower_with_no_leader_refuses_at_once() {
    // A long request timeout, so an answer well before it is a refusal, not a wait.
    let mut cluster = Cluster::start_with(3, &["--request-timeout-ms", "30000"]);
    let leader = cluster.leader();
    let [f, other] = followers(leader)[..] else {
        unreachable!("three members")
    };
    cluster.kill(leader);
    cluster.kill(other);
    let mut raw = Raw::open(&cluster.addrs[f]).expect("hello");
    let leaderless = wait_for(Duration::from_secs(10), || {
        let status = raw.status().ok()?;
        status.leader.is_none().then_some(())
    });
    assert!(leaderless.is_some(), "n{} still names a leader", f + 1);
    let asked = Instant::now();
    let answer = raw.call(&write(3, 1, put("k", "v"))).expect("an answer");
    let took = asked.elapsed();
    assert!(
        matches!(
            answer,
            ClientResponse::Unavailable {
                outcome_unknown: false,
                ..
            }
        ),
        "{answer:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "refused after {took:?}, not at once (request timeout 30 s)"
    );
}
