//! Leadership transfer on real nodes: `raftkv client transfer-leader [ID]` moves
//! leadership (and refusals exit 1), and a leader stopped with SIGTERM (what Ctrl-C
//! sends to the foreground process group is SIGINT; both go through the same handler)
//! hands leadership over before it exits, so the next write needs no election.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use support::{wait_for, Cluster};

/// The `term` of a status report.
fn term(status: &HashMap<String, String>) -> u64 {
    status
        .get("term")
        .and_then(|t| t.parse().ok())
        .expect("a term in the status")
}

/// The leader id node `i` names in its status, if any.
fn leader_named_by(c: &Cluster, i: usize) -> Option<(usize, u64)> {
    let status = c.status(i)?;
    let leader = status
        .get("leader")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((leader, term(&status)))
}

#[test]
fn transfer_leader_moves_leadership_and_refusals_exit_1() {
    let mut c = Cluster::start(3);
    let old = c.leader();
    let put = c.client_all(&["put", "k", "v1"]);
    assert_eq!(put.code, Some(0), "{put:?}");
    let old_term = term(&c.status(old).expect("the leader answers"));
    let target = (old + 1) % 3;
    let id = (target + 1).to_string();
    let out = c.client_all(&["transfer-leader", &id]);
    assert_eq!(out.code, Some(0), "{out:?}\n{}", c.logs());
    assert_eq!(out.stdout.trim(), format!("leader: {id}"));
    let status = c.status(target).expect("the target answers");
    assert_eq!(status.get("role").map(String::as_str), Some("leader"));
    assert_eq!(term(&status), old_term + 1, "one election, the transfer's");
    let put = c.client_all(&["put", "k", "v2"]);
    assert_eq!(put.code, Some(0), "{put:?}");
    // Without an id: the most up-to-date other voter.
    let out = c.client_all(&["transfer-leader"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let chosen: usize = out
        .stdout
        .trim()
        .strip_prefix("leader: ")
        .and_then(|id| id.parse().ok())
        .expect("leader: ID on stdout");
    assert_ne!(chosen, target + 1, "leadership stayed where it was");
    // The current leader already leads: done at once.
    let same = c.client_all(&["transfer-leader", &chosen.to_string()]);
    assert_eq!(same.code, Some(0), "{same:?}");
    let unknown = c.client_all(&["transfer-leader", "9"]);
    assert_eq!(unknown.code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("n9 is not a member"), "{unknown:?}");
    let usage = c.client_all(&["transfer-leader", "two"]);
    assert_eq!(usage.code, Some(2), "{usage:?}");
    let get = c.client_all(&["get", "k"]);
    assert_eq!((get.code, get.stdout.trim()), (Some(0), "v2"), "{get:?}");
}

/// The election timeout is 10 s, longer than the client's 5 s deadline: a write that
/// succeeds right after the leader exits, under a leader of exactly the next term that
/// every survivor names, was served by a leader the old one handed over to, not one
/// elected after a timeout.
#[test]
fn a_leader_stopped_with_sigterm_hands_off_and_the_next_write_needs_no_election() {
    let slow = [
        "--election-timeout-min-ms",
        "10000",
        "--election-timeout-max-ms",
        "12000",
    ];
    let mut c = Cluster::start_with(3, &slow);
    let old = c
        .wait_leader(&[0, 1, 2], Duration::from_secs(40))
        .expect("a leader");
    let put = c.client_all(&["put", "k", "v1"]);
    assert_eq!(put.code, Some(0), "{put:?}");
    let old_term = term(&c.status(old).expect("the leader answers"));
    c.signal(old, "TERM");
    let exited = wait_for(Duration::from_secs(20), || {
        (!c.is_running(old)).then_some(())
    });
    assert!(
        exited.is_some(),
        "the old leader did not exit\n{}",
        c.logs()
    );
    let survivors: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    for &i in &survivors {
        // Far shorter than an election timeout: only a hand-off can make this true.
        let new = wait_for(Duration::from_secs(3), || {
            leader_named_by(&c, i).filter(|&(leader, _)| leader != old + 1)
        });
        let (_, t) = new.unwrap_or_else(|| panic!("n{} knows no new leader", i + 1));
        assert_eq!(t, old_term + 1, "n{} is not in the next term", i + 1);
    }
    let addrs: Vec<usize> = survivors.clone();
    let put = c.client(&addrs, &["--timeout", "5", "put", "k", "v2"]);
    assert_eq!(put.code, Some(0), "{put:?}\n{}", c.logs());
    let log = std::fs::read_to_string(c.log_path(old)).unwrap_or_default();
    assert!(log.contains("leads now; shutting down"), "{log}");
}
