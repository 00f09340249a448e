//! Membership changes on real node processes: a member replaced under load (a learner
//! added and started with `--join`, promoted, an old member removed) with the history
//! checked for linearizability; a cluster grown from three voters to five and shrunk
//! back, then every member restarted; a wiped member refused by its peers; a removed
//! member exiting with code 4 and refusing to start again; and the refusals of
//! `member add|promote|remove` (exit 1, the reason on stderr).

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use raftkv::client::{Client, ClientErrorKind, ClientOptions};
use support::linearizability::{check, Input, Operation, Output};
use support::{wait_for, Cluster, Outcome};

const KEYS: usize = 4;

/// A cluster of `total` prepared nodes whose first three are started as the voters
/// of a new cluster; the others are started later with `--join`.
fn three_of(total: usize) -> Cluster {
    three_of_with(total, &[])
}

/// [`three_of`], every node with the `extra` flags.
fn three_of_with(total: usize, extra: &[&str]) -> Cluster {
    let mut cluster = Cluster::new(total, extra);
    let first: Vec<String> = cluster.addrs[..3].to_vec();
    for i in 0..3 {
        cluster.set_peers(i, first.clone());
        cluster.start_node(i);
    }
    for i in 3..total {
        cluster.set_joining(i);
    }
    cluster
}

/// `raftkv client member ARGS` through every node's address.
fn member(cluster: &Cluster, args: &[&str]) -> Outcome {
    let mut full = vec!["--timeout", "10", "member"];
    full.extend_from_slice(args);
    cluster.client_all(&full)
}

fn member_ok(cluster: &Cluster, args: &[&str]) {
    let out = member(cluster, args);
    assert_eq!(out.code, Some(0), "member {args:?}: {}", out.stderr);
}

/// A status key of node `i`, if it answers.
fn status_key(cluster: &Cluster, i: usize, key: &str) -> Option<String> {
    cluster.status(i)?.get(key).cloned()
}

/// Waits until node `i` has applied everything the leader had committed when asked,
/// and the leader knows it holds all of its log (so a promotion is not refused).
fn caught_up(cluster: &mut Cluster, i: usize) {
    let leader = cluster.leader();
    let commit: u64 = status_key(cluster, leader, "commit_index")
        .and_then(|s| s.parse().ok())
        .expect("the leader's commit index");
    let reached = wait_for(Duration::from_secs(20), || {
        let applied: u64 = status_key(cluster, i, "applied_index")?.parse().ok()?;
        let leader = cluster.status(leader)?;
        let matched: u64 = leader
            .get(&format!("peer.{}.match_index", i + 1))?
            .parse()
            .ok()?;
        let last: u64 = leader.get("last_index")?.parse().ok()?;
        (applied >= commit && matched * 10 >= last * 9).then_some(())
    });
    assert!(
        reached.is_some(),
        "n{} never caught up with index {commit}",
        i + 1
    );
}

/// Waits until `nodes` all report `voters` and `learners` as given.
fn wait_config(cluster: &Cluster, nodes: &[usize], voters: &str, learners: &str) {
    for &i in nodes {
        let seen = wait_for(Duration::from_secs(20), || {
            let v = status_key(cluster, i, "voters")?;
            let l = status_key(cluster, i, "learners")?;
            (v == voters && l == learners).then_some(())
        });
        assert!(
            seen.is_some(),
            "n{} never showed voters {voters} learners {learners}: {:?}",
            i + 1,
            cluster.status(i)
        );
    }
}

/// Clients writing and reading a few keys while the test changes the membership.
struct Load {
    stop: Arc<AtomicBool>,
    history: Arc<Mutex<Vec<Operation>>>,
    start: Instant,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    fn start(cluster: &Cluster, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let history = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let threads = (0..clients)
            .map(|id| {
                let mut addrs = cluster.addrs.clone();
                let n_addrs = addrs.len();
                addrs.rotate_left(id % n_addrs);
                let (stop, history) = (Arc::clone(&stop), Arc::clone(&history));
                let secret = cluster.client_secret();
                thread::spawn(move || {
                    let opts = ClientOptions {
                        timeout: Duration::from_millis(2000),
                        secret,
                        ..ClientOptions::default()
                    };
                    let mut client = Client::new(addrs, opts);
                    let mut n: u64 = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let key = format!("k{}", n % KEYS as u64);
                        let op = one_op(&mut client, id, n, key, start);
                        history.lock().expect("history").push(op);
                    }
                })
            })
            .collect();
        Load {
            stop,
            history,
            start,
            threads,
        }
    }

    /// Operations recorded so far.
    fn len(&self) -> usize {
        self.history.lock().expect("history").len()
    }

    /// Stops the clients and returns the history.
    fn stop(self) -> (Vec<Operation>, Instant) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("client thread");
        }
        let ops = std::mem::take(&mut *self.history.lock().expect("history"));
        (ops, self.start)
    }
}

fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// One put (odd n) or linearizable get (even n), recorded.
fn one_op(client: &mut Client, id: usize, n: u64, key: String, start: Instant) -> Operation {
    let call = micros(start);
    let (input, output) = if n % 2 == 1 {
        let value = format!("c{id}-{n}");
        let out = match client.put(&key, &value) {
            Ok(()) => Output::Ok,
            Err(e)
                if e.kind()
                    == (ClientErrorKind::Unavailable {
                        outcome_unknown: false,
                    }) =>
            {
                Output::Failed
            }
            Err(_) => Output::Unknown,
        };
        (Input::Put(value), out)
    } else {
        let out = client
            .get(&key, false)
            .map_or(Output::Failed, Output::Value);
        (Input::Get, out)
    };
    Operation {
        client: id,
        key,
        call,
        ret: micros(start),
        input,
        output,
    }
}

/// Appends a final linearizable read of every key through `nodes`, then checks the
/// history: every acknowledged write must be visible, every read linearizable.
fn final_reads_and_check(
    cluster: &Cluster,
    nodes: &[usize],
    mut ops: Vec<Operation>,
    start: Instant,
) {
    let addrs: Vec<String> = nodes.iter().map(|&i| cluster.addrs[i].clone()).collect();
    let mut client = Client::new(addrs, ClientOptions::default());
    for k in 0..KEYS {
        let key = format!("k{k}");
        let call = micros(start);
        let value = wait_for(Duration::from_secs(20), || client.get(&key, false).ok())
            .unwrap_or_else(|| panic!("final read of {key} never succeeded"));
        ops.push(Operation {
            client: 999,
            key,
            call,
            ret: micros(start),
            input: Input::Get,
            output: Output::Value(value),
        });
    }
    let acked = ops.iter().filter(|o| o.output == Output::Ok).count();
    assert!(
        acked > 10,
        "too few acknowledged writes ({acked}) to mean anything"
    );
    if let Err(violation) = check(&ops) {
        panic!("the history is not linearizable:\n{violation}");
    }
}

/// Adds n4 as a learner, starts it with `--join`, and waits until it has caught up.
fn add_learner_4(cluster: &mut Cluster) {
    member_ok(
        cluster,
        &["add", "4", &cluster.addrs[3].clone(), "--learner"],
    );
    cluster.start_node(3);
    caught_up(cluster, 3);
}

#[test]
fn a_member_is_replaced_under_load_without_losing_a_write() {
    let mut cluster = three_of(4);
    cluster.leader();
    let load = Load::start(&cluster, 3);
    member_ok(
        &cluster,
        &["add", "4", &cluster.addrs[3].clone(), "--learner"],
    );
    cluster.start_node(3);
    wait_config(&cluster, &[0, 1, 2, 3], "1,2,3", "4");
    caught_up(&mut cluster, 3);
    member_ok(&cluster, &["promote", "4"]);
    member_ok(&cluster, &["remove", "1"]);
    wait_config(&cluster, &[1, 2, 3], "2,3,4", "none");
    let code = cluster.wait_exit(0, Duration::from_secs(20));
    assert_eq!(
        code,
        Some(4),
        "the removed n1 exits with 4\n{}",
        cluster.logs()
    );
    // Some load on the new configuration before stopping.
    let before = load.len();
    let more = wait_for(Duration::from_secs(20), || {
        (load.len() >= before + 30).then_some(())
    });
    assert!(
        more.is_some(),
        "the clients made no progress after the removal"
    );
    let (ops, start) = load.stop();
    final_reads_and_check(&cluster, &[1, 2, 3], ops, start);
    let list = member(&cluster, &["list"]);
    assert_eq!(list.code, Some(0), "{}", list.stderr);
    let ids: Vec<&str> = list
        .stdout
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(ids, ["2", "3", "4"], "{}", list.stdout);
    assert!(list.stdout.contains("4 voter "), "{}", list.stdout);
}

#[test]
fn a_removed_member_exits_4_and_refuses_to_start_again() {
    let mut cluster = three_of(3);
    cluster.leader();
    member_ok(&cluster, &["remove", "3"]);
    let code = cluster.wait_exit(2, Duration::from_secs(20));
    assert_eq!(
        code,
        Some(4),
        "the removed n3 exits with 4\n{}",
        cluster.logs()
    );
    let log = std::fs::read_to_string(cluster.log_path(2)).expect("n3's log");
    assert!(log.contains("removed from the cluster"), "{log}");
    cluster.start_node(2);
    let code = cluster.wait_exit(2, Duration::from_secs(10));
    assert_eq!(code, Some(4), "a removed member's directory is refused");
    let log = std::fs::read_to_string(cluster.log_path(2)).expect("n3's log");
    assert!(log.contains("add it as a new member"), "{log}");
    // The two left commit on their own.
    let out = cluster.client(&[0, 1], &["put", "after", "removal"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn refused_changes_exit_1_with_the_reason() {
    let mut cluster = three_of(4);
    cluster.leader();
    let cases: [(&[&str], &str); 4] = [
        (&["remove", "9"], "not a member"),
        (&["promote", "9"], "not a learner"),
        (
            &["add", "2", "127.0.0.1:1", "--learner"],
            "already a member",
        ),
        (
            &["add", "3", "127.0.0.1:1", "--learner"],
            "already a member",
        ),
    ];
    for (args, reason) in cases {
        let out = member(&cluster, args);
        assert_eq!(out.code, Some(1), "member {args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(reason),
            "member {args:?}: {}",
            out.stderr
        );
    }
    // A learner that never started holds nothing: its promotion says how far behind.
    member_ok(
        &cluster,
        &["add", "4", &cluster.addrs[3].clone(), "--learner"],
    );
    let out = member(&cluster, &["promote", "4"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("is behind: it holds 0 of"),
        "{}",
        out.stderr
    );
    // Removing it and adding its id again: ids are never reused.
    member_ok(&cluster, &["remove", "4"]);
    let out = member(
        &cluster,
        &["add", "4", &cluster.addrs[3].clone(), "--learner"],
    );
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("never reused"), "{}", out.stderr);
}

#[test]
fn three_grow_to_five_shrink_to_three_and_every_member_restarts() {
    let mut cluster = three_of(5);
    cluster.leader();
    let out = cluster.client_all(&["put", "before", "growth"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    // n4 step by step: added as a learner, started, promoted once caught up.
    add_learner_4(&mut cluster);
    member_ok(&cluster, &["promote", "4"]);
    // n5 started first (it waits to be reached), then added without --learner: the
    // command promotes it as soon as it has caught up.
    cluster.start_node(4);
    member_ok(&cluster, &["add", "5", &cluster.addrs[4].clone()]);
    wait_config(&cluster, &[0, 1, 2, 3, 4], "1,2,3,4,5", "none");
    member_ok(&cluster, &["remove", "1"]);
    member_ok(&cluster, &["remove", "2"]);
    wait_config(&cluster, &[2, 3, 4], "3,4,5", "none");
    for i in [0, 1] {
        assert_eq!(cluster.wait_exit(i, Duration::from_secs(20)), Some(4));
    }
    for i in 2..5 {
        cluster.kill(i);
    }
    for i in 2..5 {
        cluster.start_node(i);
    }
    wait_config(&cluster, &[2, 3, 4], "3,4,5", "none");
    let out = cluster.client(&[2, 3, 4], &["put", "after", "restart"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let out = cluster.client(&[4], &["get", "before"]);
    assert_eq!(
        (out.code, out.stdout.trim()),
        (Some(0), "growth"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_wiped_member_is_refused_by_its_peers() {
    let mut cluster = three_of(3);
    cluster.leader();
    let out = cluster.client_all(&["put", "k", "v"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    cluster.kill(2);
    std::fs::remove_dir_all(cluster.data_dir(2)).expect("wipe n3's data directory");
    cluster.start_node(2);
    let refused = wait_for(Duration::from_secs(20), || {
        let logs = (0..2)
            .map(|i| std::fs::read_to_string(cluster.log_path(i)).unwrap_or_default())
            .collect::<String>();
        logs.contains("refusing n3: its data directory was replaced")
            .then_some(())
    });
    assert!(refused.is_some(), "{}", cluster.logs());
    let log = std::fs::read_to_string(cluster.log_path(0)).expect("n1's log")
        + &std::fs::read_to_string(cluster.log_path(1)).expect("n2's log");
    assert!(
        log.contains("member remove 3"),
        "the line says what to do: {log}"
    );
    // Its answers never count: the leader's match index for it stays behind.
    let out = cluster.client(&[0, 1], &["put", "k", "w"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let leader = cluster
        .wait_leader(&[0, 1], Duration::from_secs(10))
        .expect("a leader");
    let status = cluster.status(leader).expect("the leader's status");
    let matched: u64 = status["peer.3.match_index"].parse().expect("a match index");
    let commit: u64 = status["commit_index"].parse().expect("a commit index");
    assert!(matched < commit, "n3 matched {matched} of {commit}");
}

#[test]
fn the_configuration_survives_snapshots_and_restarts() {
    let flags = [
        "--snapshot-entries",
        "20",
        "--snapshot-catchup-entries",
        "0",
    ];
    let mut cluster = three_of_with(4, &flags);
    cluster.leader();
    add_learner_4(&mut cluster);
    member_ok(&cluster, &["promote", "4"]);
    member_ok(&cluster, &["remove", "1"]);
    assert_eq!(cluster.wait_exit(0, Duration::from_secs(20)), Some(4));
    let leader = cluster.leader();
    // The last configuration entry is at or below this.
    let changed: u64 = status_key(&cluster, leader, "commit_index")
        .and_then(|s| s.parse().ok())
        .expect("a commit index");
    // Enough writes that every member snapshots and compacts its log past every
    // configuration entry.
    let addrs = cluster.addrs[1..].to_vec();
    let mut client = Client::new(addrs, ClientOptions::default());
    for n in 0..100 {
        client.put(&format!("k{n}"), "v").expect("a put");
    }
    for i in 1..4 {
        let snapshotted = wait_for(Duration::from_secs(20), || {
            let first: u64 = status_key(&cluster, i, "first_index")?.parse().ok()?;
            (first > changed).then_some(())
        });
        let status = cluster.status(i);
        assert!(
            snapshotted.is_some(),
            "n{} compacted its log past {changed}: {status:?}",
            i + 1
        );
    }
    for i in 1..4 {
        cluster.kill(i);
        cluster.start_node(i);
    }
    wait_config(&cluster, &[1, 2, 3], "2,3,4", "none");
    let out = cluster.client(&[1, 2, 3], &["put", "after", "restart"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn a_removed_learner_learns_it_and_exits_4() {
    // The leader stops sending to a member once its removal commits, so a learner
    // (which never campaigns) hears of it only by asking: its links say hello again
    // and are refused as removed.
    let mut cluster = three_of(4);
    cluster.leader();
    add_learner_4(&mut cluster);
    member_ok(&cluster, &["remove", "4"]);
    let code = cluster.wait_exit(3, Duration::from_secs(20));
    let status = cluster.status(3);
    assert_eq!(
        code,
        Some(4),
        "the removed learner exits with 4; n4: {status:?}"
    );
}
