//! The fault-injection suite: real node processes, concurrent library clients doing
//! put / get / cas / delete on a few keys (each client reading from its own member,
//! so followers serve linearizable reads too; half of them write there too, so
//! followers forward writes), and a nemesis that kills (-9) and restarts
//! nodes, pauses them (SIGSTOP/SIGCONT) and cuts directed network links. Every node
//! reaches every peer through a proxy the test owns, so single links can be cut. The
//! recorded history must be linearizable, and after healing, killing every node and
//! restarting, every acknowledged write must still be there (checked as final reads
//! appended to the history), and every node must catch up with the leader's commit
//! index.
//!
//! Each test runs for RAFTKV_NEMESIS_SECS seconds of faults (default 40; the two
//! tests run in parallel). RAFTKV_NEMESIS_SNAPSHOT_ENTRIES=N gives every node
//! `--snapshot-entries N` (and `--snapshot-catchup-entries N/5`); without it the
//! 3-node run snapshots every 500 entries, keeping 100 before each (so compaction,
//! catch-up from the kept entries and InstallSnapshot meet kills, pauses and
//! partitions in every CI run)
//! and the 5-node run keeps the node's default threshold. Each run ends by counting,
//! from the node logs, the snapshots saved and installed, and fails on any panic or
//! fatal error a node logged. RAFTKV_NEMESIS_LOG_DIR=dir keeps a copy of every node's
//! log there (as `<nodes>n-<seed>-node<i>.log`) for a closer look. Every node and
//! client uses a peer and a client secret (the authenticated handshake meets every
//! fault); RAFTKV_NEMESIS_SECRETS=0 runs without them.
//!
//! The membership nemesis (`nemesis/membership.rs`) replaces members between faults:
//! a voter (sometimes the leader) is removed, its directory wiped, and a new member
//! takes its place under a new id.

#[path = "nemesis/membership.rs"]
mod membership;
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use raftkv::client::{CasOutcome, Client, ClientError, ClientErrorKind, ClientOptions};
use raftkv::net::Secret;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use support::linearizability::{check, Input, Operation, Output};
use support::proxy::Proxy;
use support::{wait_for, Cluster};

const KEYS: usize = 6;

fn nemesis_secs() -> u64 {
    std::env::var("RAFTKV_NEMESIS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40)
}

/// The `--snapshot-entries` every node gets: the env var if set, else `default`.
fn snapshot_entries(default: Option<u64>) -> Option<u64> {
    match std::env::var("RAFTKV_NEMESIS_SNAPSHOT_ENTRIES") {
        Ok(s) => Some(
            s.parse()
                .unwrap_or_else(|_| panic!("RAFTKV_NEMESIS_SNAPSHOT_ENTRIES={s:?}")),
        ),
        Err(_) => default,
    }
}

fn seed() -> u64 {
    std::env::var("RAFTKV_NEMESIS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen())
}

/// The proxies of every directed link: `links[i][j]` is how node i reaches node j.
struct Net {
    links: Vec<Vec<Option<Proxy>>>,
}

impl Net {
    fn new(addrs: &[String]) -> Net {
        let n = addrs.len();
        let links = (0..n)
            .map(|i| {
                (0..n)
                    .map(|j| (i != j).then(|| Proxy::start(&addrs[j])))
                    .collect()
            })
            .collect();
        Net { links }
    }

    /// Node i's `--peers`: itself directly, every other node through its proxy.
    fn peers_of(&self, i: usize, addrs: &[String]) -> Vec<String> {
        (0..addrs.len())
            .map(|j| match &self.links[i][j] {
                Some(p) => p.addr.clone(),
                None => addrs[j].clone(),
            })
            .collect()
    }

    fn cut(&self, from: usize, to: usize) {
        if let Some(p) = &self.links[from][to] {
            p.cut();
        }
    }

    /// Cuts both directions between every node of `a` and every node of `b`.
    fn cut_between(&self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                self.cut(x, y);
                self.cut(y, x);
            }
        }
    }

    fn heal_all(&self) {
        for p in self.links.iter().flatten().flatten() {
            p.heal();
        }
    }
}

/// The history, with times in µs since `start` from one monotonic clock.
struct Recorder {
    start: Instant,
    ops: Mutex<Vec<Operation>>,
}

impl Recorder {
    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }
    fn push(&self, op: Operation) {
        self.ops.lock().expect("history lock").push(op);
    }
}

/// A write's error: unknown outcome, or a definite failure.
fn write_error(e: &ClientError) -> Output {
    match e.kind() {
        ClientErrorKind::Unavailable {
            outcome_unknown: false,
        } => Output::Failed,
        _ => Output::Unknown,
    }
}

/// One client thread: random operations on the keys until `end`, or until `stop`.
fn client_loop(
    id: usize,
    addrs: Vec<String>,
    (end, stop): (Instant, Arc<AtomicBool>),
    rec: &Recorder,
    seed: u64,
    secret: Option<Secret>,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let opts = ClientOptions {
        timeout: Duration::from_millis(1500),
        secret,
        ..ClientOptions::default()
    };
    // Reads go to this client's own member (the first of its rotated list), so
    // linearizable reads are served by followers as well as the leader. Writes of
    // odd-numbered clients go there too (a follower forwards them to the leader);
    // the others go through the library's leader-following client.
    let own = vec![addrs[0].clone()];
    let mut reader = Client::new(own.clone(), opts.clone());
    let mut client = Client::new(if id % 2 == 1 { own } else { addrs }, opts);
    let mut seen: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut n = 0;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = format!("k{}", rng.gen_range(0..KEYS));
        let value = format!("c{id}-{n}");
        let call = rec.now();
        let (input, output) = match rng.gen_range(0..20) {
            0..=7 => {
                let out = match reader.get(&key, false) {
                    Ok(v) => {
                        seen.insert(key.clone(), v.clone());
                        Output::Value(v)
                    }
                    Err(_) => Output::Failed,
                };
                (Input::Get, out)
            }
            8..=12 => {
                let out = match client.put(&key, &value) {
                    Ok(()) => Output::Ok,
                    Err(e) => write_error(&e),
                };
                (Input::Put(value), out)
            }
            13..=17 => {
                let expected = seen.get(&key).cloned().flatten();
                let out = match client.cas(&key, expected.as_deref(), &value) {
                    Ok(CasOutcome::Swapped) => Output::Swapped,
                    Ok(CasOutcome::Mismatch { current }) => {
                        seen.insert(key.clone(), current.clone());
                        Output::Mismatch(current)
                    }
                    Err(e) => write_error(&e),
                };
                let input = Input::Cas {
                    expected,
                    new: value,
                };
                (input, out)
            }
            _ => {
                let out = match client.delete(&key) {
                    Ok(_) => Output::Ok,
                    Err(e) => write_error(&e),
                };
                (Input::Delete, out)
            }
        };
        let ret = rec.now();
        rec.push(Operation {
            client: id,
            key,
            call,
            ret,
            input,
            output,
        });
    }
}

/// The node that says it leads, asked directly with a short timeout.
fn find_leader(cluster: &Cluster) -> Option<usize> {
    let secret = cluster.client_secret();
    (0..cluster.addrs.len()).find(|&i| {
        let opts = ClientOptions {
            timeout: Duration::from_millis(300),
            secret: secret.clone(),
            ..ClientOptions::default()
        };
        let mut c = Client::new(vec![cluster.addrs[i].clone()], opts);
        c.status().is_ok_and(|s| s.role == "leader")
    })
}

fn pause_ms(rng: &mut SmallRng, lo: u64, hi: u64) {
    thread::sleep(Duration::from_millis(rng.gen_range(lo..hi)));
}

/// Injects one random fault among the nodes at positions `members`, holds it, and
/// repairs it. Returns its description.
fn one_fault(cluster: &mut Cluster, net: &Net, members: &[usize], rng: &mut SmallRng) -> String {
    let n = members.len();
    let mut nodes: Vec<usize> = members.to_vec();
    nodes.shuffle(rng);
    let victim = match rng.gen_bool(0.6) {
        true => find_leader(cluster).unwrap_or(nodes[0]),
        false => nodes[0],
    };
    let what = match rng.gen_range(0..6) {
        0 => {
            cluster.kill(victim);
            pause_ms(rng, 300, 2000);
            cluster.start_node(victim);
            format!("kill -9 n{} and restart", victim + 1)
        }
        1 => {
            cluster.signal(victim, "STOP");
            pause_ms(rng, 300, 2500);
            cluster.signal(victim, "CONT");
            format!("SIGSTOP n{} then SIGCONT", victim + 1)
        }
        2 => {
            let rest: Vec<usize> = members.iter().copied().filter(|&j| j != victim).collect();
            net.cut_between(&[victim], &rest);
            pause_ms(rng, 500, 3000);
            format!("isolate n{}", victim + 1)
        }
        3 => {
            let (minority, majority) = nodes.split_at(n / 2);
            net.cut_between(minority, majority);
            pause_ms(rng, 500, 3000);
            format!("split {minority:?} | {majority:?} (0-based)")
        }
        4 => {
            // A bridge: two halves that only the bridge node connects.
            let bridge = nodes[0];
            let (a, b) = nodes[1..].split_at((n - 1) / 2);
            net.cut_between(a, b);
            pause_ms(rng, 500, 3000);
            format!("bridge n{} between {a:?} and {b:?} (0-based)", bridge + 1)
        }
        _ => {
            let to = nodes.iter().copied().find(|&j| j != victim).unwrap_or(0);
            net.cut(victim, to);
            pause_ms(rng, 500, 3000);
            format!("cut link n{} -> n{}", victim + 1, to + 1)
        }
    };
    net.heal_all();
    what
}

/// Final reads after a full crash and restart, appended to the history.
fn final_reads(cluster: &Cluster, rec: &Recorder) {
    let opts = ClientOptions {
        timeout: Duration::from_secs(5),
        secret: cluster.client_secret(),
        ..ClientOptions::default()
    };
    let mut client = Client::new(cluster.addrs.clone(), opts);
    for k in 0..KEYS {
        let key = format!("k{k}");
        let call = rec.now();
        let value = wait_for(Duration::from_secs(60), || client.get(&key, false).ok())
            .unwrap_or_else(|| panic!("final read of {key} never succeeded"));
        let ret = rec.now();
        rec.push(Operation {
            client: 999,
            key,
            call,
            ret,
            input: Input::Get,
            output: Output::Value(value),
        });
    }
}

/// Liveness after healing: every node applies all the leader had committed once the
/// final reads were done (a follower stuck in a snapshot transfer never would).
fn all_nodes_catch_up(cluster: &Cluster, seed: u64) {
    let all: Vec<usize> = (0..cluster.addrs.len()).collect();
    let commit = wait_for(Duration::from_secs(15), || {
        let leader = cluster.wait_leader(&all, Duration::from_secs(1))?;
        cluster
            .status(leader)?
            .get("commit_index")?
            .parse::<u64>()
            .ok()
    })
    .unwrap_or_else(|| panic!("no leader's commit index after the final reads"));
    for i in all {
        let caught_up = wait_for(Duration::from_secs(30), || {
            let status = cluster.status(i)?;
            let applied: u64 = status.get("applied_index")?.parse().ok()?;
            (applied >= commit).then_some(())
        });
        assert!(
            caught_up.is_some(),
            "n{} never applied index {commit} after healing (RAFTKV_NEMESIS_SEED={seed}):\n{}",
            i + 1,
            cluster.logs()
        );
    }
}

/// Per kind of operation: (ok, failed, unknown).
fn counts(ops: &[Operation]) -> String {
    let mut table: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for op in ops {
        let kind = match op.input {
            Input::Put(_) => "put",
            Input::Get => "get",
            Input::Delete => "delete",
            Input::Cas { .. } => "cas",
        };
        let slot = match op.output {
            Output::Failed => 1,
            Output::Unknown => 2,
            _ => 0,
        };
        table.entry(kind).or_default()[slot] += 1;
    }
    let total = table.values().fold([0; 3], |acc, c| {
        [acc[0] + c[0], acc[1] + c[1], acc[2] + c[2]]
    });
    let mut out = format!(
        "ops: ok {} / failed {} / unknown {}",
        total[0], total[1], total[2]
    );
    for (kind, c) in table {
        out.push_str(&format!(" | {kind} {}/{}/{}", c[0], c[1], c[2]));
    }
    out
}

/// What the node logs say happened: lines naming a snapshot saved, a snapshot
/// installed from the leader, a panic, or a fatal error.
#[derive(Debug, Default)]
struct LogCounts {
    saved: usize,
    installed: usize,
    rejected: usize,
    panics: usize,
    fatal: usize,
}

fn log_counts(cluster: &Cluster) -> LogCounts {
    let mut c = LogCounts::default();
    for i in 0..cluster.addrs.len() {
        let text = std::fs::read_to_string(cluster.log_path(i)).unwrap_or_default();
        for line in text.lines() {
            c.saved += usize::from(line.contains("snapshot at index") && line.contains("saved"));
            c.installed += usize::from(line.contains("installed snapshot at index"));
            c.rejected += usize::from(line.contains("not installed"));
            c.panics += usize::from(line.contains("panicked"));
            c.fatal += usize::from(line.contains("fatal"));
        }
    }
    c
}

/// Copies every node's log into RAFTKV_NEMESIS_LOG_DIR, if set.
fn keep_logs(cluster: &Cluster, seed: u64) {
    let Ok(dir) = std::env::var("RAFTKV_NEMESIS_LOG_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create RAFTKV_NEMESIS_LOG_DIR");
    let n = cluster.addrs.len();
    for i in 0..n {
        let to = dir.join(format!("{n}n-{seed}-node{}.log", i + 1));
        std::fs::copy(cluster.log_path(i), &to).expect("copy a node log");
    }
}

/// Starts `n` nodes that reach each other only through the proxies of a `Net`.
fn proxied_cluster(n: usize, extra: &[&str]) -> (Cluster, Net) {
    let mut cluster = Cluster::new(n, extra);
    if std::env::var("RAFTKV_NEMESIS_SECRETS").map_or(true, |v| v != "0") {
        cluster.use_secrets();
    }
    let net = Net::new(&cluster.addrs);
    for i in 0..n {
        let peers = net.peers_of(i, &cluster.addrs);
        cluster.set_peers(i, peers);
        cluster.start_node(i);
    }
    cluster.leader();
    (cluster, net)
}

fn run(n: usize, clients: usize, snapshot_default: Option<u64>) {
    let seed = seed();
    let secs = nemesis_secs();
    let snapshot = snapshot_entries(snapshot_default);
    eprintln!(
        "nemesis: {n} nodes, {clients} clients, {secs} s, snapshot entries {snapshot:?}, \
         RAFTKV_NEMESIS_SEED={seed}"
    );
    let mut rng = SmallRng::seed_from_u64(seed);
    // With a threshold, each snapshot keeps a fifth of it as trailing entries: a
    // follower a little behind catches up from them, one further behind needs the
    // snapshot, so both paths meet the faults.
    let threshold = snapshot.map(|s| (s.to_string(), (s / 5).to_string()));
    let extra: Vec<&str> = match &threshold {
        Some((t, keep)) => vec!["--snapshot-entries", t, "--snapshot-catchup-entries", keep],
        None => vec![],
    };
    let (mut cluster, net) = proxied_cluster(n, &extra);
    let rec = Arc::new(Recorder {
        start: Instant::now(),
        ops: Mutex::new(Vec::new()),
    });
    let end = Instant::now() + Duration::from_secs(secs);
    let workers: Vec<_> = (0..clients)
        .map(|c| {
            let mut addrs = cluster.addrs.clone();
            addrs.rotate_left(c % n);
            let rec = Arc::clone(&rec);
            let client_seed = rng.gen();
            let secret = cluster.client_secret();
            let until = (end, Arc::new(AtomicBool::new(false)));
            thread::spawn(move || client_loop(c, addrs, until, &rec, client_seed, secret))
        })
        .collect();
    let mut faults = Vec::new();
    while Instant::now() < end {
        pause_ms(&mut rng, 200, 1000);
        let at = rec.now() as f64 / 1e6;
        let all: Vec<usize> = (0..n).collect();
        let what = one_fault(&mut cluster, &net, &all, &mut rng);
        eprintln!("  {at:>7.3}s {what}");
        faults.push(what);
    }
    for w in workers {
        w.join().expect("client thread");
    }
    // Durability: heal everything, crash every node at once, restart.
    net.heal_all();
    for i in 0..n {
        cluster.kill(i);
    }
    for i in 0..n {
        cluster.start_node(i);
    }
    final_reads(&cluster, &rec);
    all_nodes_catch_up(&cluster, seed);
    let history = rec.ops.lock().expect("history lock").clone();
    eprintln!(
        "nemesis {n} nodes: {} faults; {}",
        faults.len(),
        counts(&history)
    );
    keep_logs(&cluster, seed);
    let checked = Instant::now();
    if let Err(violation) = check(&history) {
        panic!(
            "history not linearizable (RAFTKV_NEMESIS_SEED={seed}):\n{violation}\n{}",
            cluster.logs()
        );
    }
    eprintln!("checked in {:?}", checked.elapsed());
    let logs = log_counts(&cluster);
    eprintln!("nemesis {n} nodes, node logs: {logs:?}");
    assert!(
        logs.panics == 0 && logs.fatal == 0,
        "a node panicked or stopped on a fatal error (RAFTKV_NEMESIS_SEED={seed}):\n{}",
        cluster.logs()
    );
}

#[test]
fn three_nodes_stay_linearizable_and_durable_under_faults() {
    run(3, 4, Some(500));
}

#[test]
fn five_nodes_stay_linearizable_and_durable_under_faults() {
    run(5, 5, None);
}

/// Check-quorum, end to end: a leader cut off from both followers steps down by
/// itself (it would otherwise stay leader forever), and its clients are told so
/// instead of waiting; the majority elects another leader and keeps working.
#[test]
fn an_isolated_leader_steps_down_and_the_majority_goes_on() {
    let (mut cluster, net) = proxied_cluster(3, &[]);
    let old = cluster.leader();
    let rest: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    net.cut_between(&[old], &rest);
    let stepped_down = wait_for(Duration::from_secs(10), || {
        let s = cluster.status(old)?;
        (s.get("role").map(String::as_str) != Some("leader")).then_some(())
    });
    assert!(
        stepped_down.is_some(),
        "isolated leader n{} kept its role",
        old + 1
    );
    let new = cluster.wait_leader(&rest, Duration::from_secs(10));
    assert!(new.is_some(), "the majority elected no leader");
    let put = cluster.client(&rest, &["--timeout", "5", "put", "after", "isolation"]);
    assert_eq!(put.code, Some(0), "write through the majority: {put:?}");
    let lonely = cluster.client(&[old], &["--timeout", "2", "get", "after"]);
    assert_eq!(
        lonely.code,
        Some(3),
        "the isolated node must not answer a read: {lonely:?}"
    );
}
