//! The membership nemesis of the fault-injection suite (see the crate's doc): member
//! replacements between the faults of `one_fault`, under the same clients and checks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::support::linearizability::check;
use super::support::{wait_for, Cluster};
use super::{client_loop, counts, final_reads, one_fault, seed, Net, Recorder};

/// The membership nemesis: while clients run and the other faults come and go, a
/// voter is removed (the leader too, sometimes), its data directory wiped, and a new
/// member takes its place under a new id (added as a learner, started with `--join`,
/// promoted). The history must stay linearizable and every acknowledged write must
/// survive; every removed member must exit with code 4.
#[test]
fn membership_changes_under_faults_stay_linearizable() {
    const REPLACEMENTS: usize = 2;
    let seed = seed();
    eprintln!("membership nemesis: RAFTKV_NEMESIS_SEED={seed}");
    let mut rng = SmallRng::seed_from_u64(seed);
    let total = 3 + REPLACEMENTS;
    let mut cluster = Cluster::new(total, &[]);
    if std::env::var("RAFTKV_NEMESIS_SECRETS").map_or(true, |v| v != "0") {
        cluster.use_secrets();
    }
    let net = Net::new(&cluster.addrs);
    for i in 0..3 {
        let peers = net.peers_of(i, &cluster.addrs)[..3].to_vec();
        cluster.set_peers(i, peers);
        cluster.start_node(i);
    }
    for i in 3..total {
        cluster.set_joining(i);
    }
    cluster.leader();
    let rec = Arc::new(Recorder {
        start: Instant::now(),
        ops: Mutex::new(Vec::new()),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let far = Instant::now() + Duration::from_secs(3600);
    let workers: Vec<_> = (0..4)
        .map(|c| {
            let mut addrs = cluster.addrs.clone();
            addrs.rotate_left(c % 3);
            let (rec, client_seed, secret) = (Arc::clone(&rec), rng.gen(), cluster.client_secret());
            let until = (far, Arc::clone(&stop));
            thread::spawn(move || client_loop(c, addrs, until, &rec, client_seed, secret))
        })
        .collect();
    let mut members: Vec<usize> = vec![0, 1, 2];
    for next in 3..total {
        for _ in 0..2 {
            let what = one_fault(&mut cluster, &net, &members, &mut rng);
            eprintln!("  {:>7.3}s {what}", rec.now() as f64 / 1e6);
        }
        let victim = members[rng.gen_range(0..members.len())];
        replace(&mut cluster, victim, next);
        eprintln!(
            "  {:>7.3}s replaced n{} by n{}",
            rec.now() as f64 / 1e6,
            victim + 1,
            next + 1
        );
        members.retain(|&m| m != victim);
        members.push(next);
    }
    let what = one_fault(&mut cluster, &net, &members, &mut rng);
    eprintln!("  {:>7.3}s {what}", rec.now() as f64 / 1e6);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("client thread");
    }
    net.heal_all();
    for &i in &members {
        cluster.kill(i);
    }
    for &i in &members {
        cluster.start_node(i);
    }
    final_reads(&cluster, &rec);
    let history = rec.ops.lock().expect("history lock").clone();
    eprintln!("membership nemesis: {}", counts(&history));
    if let Err(violation) = check(&history) {
        panic!("history not linearizable (RAFTKV_NEMESIS_SEED={seed}):\n{violation}");
    }
}

/// Removes member `victim`, checks it exits with code 4, wipes its data directory and
/// adds the node at position `new` in its place, promoted once caught up.
fn replace(cluster: &mut Cluster, victim: usize, new: usize) {
    let member = |cluster: &Cluster, args: &[&str]| {
        let mut full = vec!["--timeout", "10", "member"];
        full.extend_from_slice(args);
        wait_for(Duration::from_secs(60), || {
            let out = cluster.client_all(&full);
            (out.code == Some(0)).then_some(())
        })
        .unwrap_or_else(|| panic!("member {args:?} never succeeded\n{}", cluster.logs()));
    };
    member(cluster, &["remove", &(victim + 1).to_string()]);
    let code = cluster.wait_exit(victim, Duration::from_secs(30));
    assert_eq!(
        code,
        Some(4),
        "removed n{} exits with 4\n{}",
        victim + 1,
        cluster.logs()
    );
    std::fs::remove_dir_all(cluster.data_dir(victim)).expect("wipe the removed member");
    let id = (new + 1).to_string();
    member(
        cluster,
        &["add", &id, &cluster.addrs[new].clone(), "--learner"],
    );
    cluster.start_node(new);
    member(cluster, &["promote", &id]);
}
