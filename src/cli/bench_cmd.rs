//! `raftkv bench`: a closed-loop load generator in the manner of etcd's benchmark tool.
//! Each client sends one request, waits for the answer, and records the latency from
//! send to reply. By default each client is a thread with its own connection; with
//! `--conns N` the clients share N pipelined connections (`bench_pipelined`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use raftkv::client::{Client, ClientError, ClientErrorKind, ClientOptions};
use raftkv::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use raftkv::sync::{thread, Arc};
// The bench is a load generator, not runtime code: std's Barrier needs no checked twin.
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Barrier;

use super::args::{BenchArgs, Workload};
use super::bench_pipelined;
use super::histogram::Histogram;
use super::{split_addrs, EXIT_OK, EXIT_OTHER, EXIT_USAGE};

/// What one client thread (or connection thread) measured.
pub(super) struct ClientResult {
    /// Latencies of the operations that succeeded (their count is `ops`).
    pub(super) latencies: Histogram,
    /// Failed measured operations, by kind of failure.
    pub(super) errors: BTreeMap<String, u64>,
    /// Failures of the unmeasured warm-up request, by kind (not in `errors`).
    pub(super) warmup_errors: BTreeMap<String, u64>,
}

impl ClientResult {
    pub(super) fn new() -> ClientResult {
        ClientResult {
            latencies: Histogram::new(),
            errors: BTreeMap::new(),
            warmup_errors: BTreeMap::new(),
        }
    }

    fn merge(&mut self, other: ClientResult) {
        self.latencies.merge(&other.latencies);
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_default() += n;
        }
        for (kind, n) in other.warmup_errors {
            *self.warmup_errors.entry(kind).or_default() += n;
        }
    }
}

/// Shared between the client threads and the progress printer.
pub(super) struct Progress {
    /// Operations claimed so far (with --ops, a thread claims a slot before each op).
    pub(super) claimed: AtomicU64,
    /// Operations finished.
    pub(super) done: AtomicU64,
    /// Set when the run is over (duration elapsed or all ops done).
    finished: AtomicBool,
}

/// Runs the benchmark; returns the exit code.
pub fn run(mut args: BenchArgs) -> u8 {
    if let Err(message) = validate(&args) {
        eprintln!("raftkv bench: {message}");
        return EXIT_USAGE;
    }
    match super::keygen_cmd::load_secret(args.client_secret_file.as_deref()) {
        Ok(secret) => args.secret = secret,
        Err(message) => {
            eprintln!("raftkv bench: {message}");
            return EXIT_USAGE;
        }
    }
    let progress = Arc::new(Progress {
        claimed: AtomicU64::new(0),
        done: AtomicU64::new(0),
        finished: AtomicBool::new(false),
    });
    let args = Arc::new(args);
    // Every client connects (and finds the leader) before the clock starts, as wrk and
    // etcd's benchmark do: a burst of connects must not be charged to the first
    // operations' latency (the listen backlog is 128, so 256 simultaneous connects can
    // cost a 1 s SYN retransmission).
    // With --conns, one thread per connection drives its share of the clients.
    let workers = args.conns.unwrap_or(args.clients);
    let ready = Arc::new(Barrier::new(workers + 1));
    let mut threads = Vec::new();
    for n in 0..workers {
        let (args2, progress2, ready2) =
            (Arc::clone(&args), Arc::clone(&progress), Arc::clone(&ready));
        let spawned = thread::Builder::new()
            .name(format!("bench-client-{n}"))
            .spawn(move || match args2.conns {
                Some(_) => bench_pipelined::run_connection(&args2, &progress2, &ready2, n),
                None => run_client(&args2, &progress2, &ready2, n as u64),
            });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(err) => {
                // The threads already started wait on the barrier forever: exit now.
                eprintln!("raftkv bench: cannot start client thread: {err}");
                return EXIT_OTHER;
            }
        }
    }
    ready.wait();
    let started = Instant::now();
    show_progress(&args, &progress, started);
    let mut total = ClientResult::new();
    for handle in threads {
        match handle.join() {
            Ok(result) => total.merge(result),
            Err(_) => {
                *total
                    .errors
                    .entry("client thread panicked".into())
                    .or_default() += 1
            }
        }
    }
    progress.finished.store(true, Ordering::SeqCst);
    let elapsed = started.elapsed();
    report(&args, &total, elapsed);
    if total.errors.is_empty() && total.warmup_errors.is_empty() {
        EXIT_OK
    } else {
        EXIT_OTHER
    }
}

fn validate(args: &BenchArgs) -> Result<(), String> {
    if split_addrs(&args.addr).is_empty() {
        return Err("--addr lists no address".into());
    }
    if args.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if let Some(conns) = args.conns {
        if conns == 0 || conns > args.clients {
            return Err(format!(
                "--conns {conns} must be between 1 and --clients ({})",
                args.clients
            ));
        }
    }
    if args.keys == 0 {
        return Err("--keys must be at least 1".into());
    }
    if !(0.0..=1.0).contains(&args.read_ratio) {
        return Err("--read-ratio must be between 0 and 1".into());
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    if args.ops == Some(0) {
        return Err("--ops must be at least 1".into());
    }
    if args.duration.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
        return Err("--duration must be a positive number of seconds".into());
    }
    Ok(())
}

/// The name of key `i`: `k` and the number, zero-padded to `size` bytes.
pub(super) fn key_name(i: u64, size: usize) -> String {
    let digits = i.to_string();
    let width = size.max(digits.len() + 1) - 1;
    format!("k{digits:0>width$}")
}

/// The addresses client `n` tries, in order: `--addr` as given, or with `--spread`
/// rotated to start at entry `n` (round-robin over the members, the rest kept as
/// fallbacks).
pub(super) fn client_addrs(args: &BenchArgs, n: u64) -> Vec<String> {
    let addrs = split_addrs(&args.addr);
    if args.spread {
        spread(addrs, n)
    } else {
        addrs
    }
}

/// `addrs` rotated to start at entry `n` (modulo their count).
fn spread(mut addrs: Vec<String>, n: u64) -> Vec<String> {
    if !addrs.is_empty() {
        let first = (n % addrs.len() as u64) as usize;
        addrs.rotate_left(first);
    }
    addrs
}

fn run_client(args: &BenchArgs, progress: &Progress, ready: &Barrier, n: u64) -> ClientResult {
    let options = ClientOptions {
        cluster: args.cluster.clone(),
        timeout: Duration::from_secs_f64(args.timeout),
        secret: args.secret.clone(),
    };
    let mut client = Client::new(client_addrs(args, n), options);
    let mut rng = SmallRng::seed_from_u64(rand::random::<u64>() ^ n);
    let value = "v".repeat(args.value_size);
    let mut result = ClientResult::new();
    // Connect and find the leader with one unmeasured request of the workload's kind.
    let warm_key = key_name(rng.gen_range(0..args.keys), args.key_size);
    let warm = match args.workload {
        Workload::Put => client.put(&warm_key, &value),
        Workload::Get | Workload::Mixed => client.get(&warm_key, args.stale).map(|_| ()),
    };
    if let Err(err) = warm {
        *result.warmup_errors.entry(error_kind(&err)).or_default() += 1;
    }
    ready.wait();
    let deadline = args
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    loop {
        if let Some(ops) = args.ops {
            if progress.claimed.fetch_add(1, Ordering::SeqCst) >= ops {
                break;
            }
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let key = key_name(rng.gen_range(0..args.keys), args.key_size);
        let read = match args.workload {
            Workload::Put => false,
            Workload::Get => true,
            Workload::Mixed => rng.gen_bool(args.read_ratio),
        };
        let sent = Instant::now();
        let outcome = if read {
            client.get(&key, args.stale).map(|_| ())
        } else {
            client.put(&key, &value)
        };
        let took = sent.elapsed();
        // A failure is counted apart: its latency (often the whole --timeout) says
        // nothing about the cluster's speed.
        match outcome {
            Ok(()) => result.latencies.record(took.as_micros() as u64),
            Err(err) => *result.errors.entry(error_kind(&err)).or_default() += 1,
        }
        progress.done.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// A failure's kind in words, to group failures: the two unavailable verdicts by name,
/// any other error by its message.
pub(super) fn error_kind(err: &ClientError) -> String {
    match err.kind() {
        ClientErrorKind::Unavailable {
            outcome_unknown: true,
        } => "outcome unknown (no answer after the request was sent)".to_string(),
        ClientErrorKind::Unavailable {
            outcome_unknown: false,
        } => "cluster unavailable (no node or no leader answered in time)".to_string(),
        _ => err.to_string(),
    }
}

/// Prints a live progress line on stderr when it is a terminal, until the run ends.
fn show_progress(args: &BenchArgs, progress: &Progress, started: Instant) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    let mut last = 0;
    loop {
        if let Some(ops) = args.ops {
            if progress.done.load(Ordering::Relaxed) >= ops {
                break;
            }
        } else if args
            .duration
            .is_some_and(|d| started.elapsed().as_secs_f64() >= d)
        {
            break;
        }
        // A display refresh interval, not a synchronization.
        thread::sleep(Duration::from_millis(500));
        let done = progress.done.load(Ordering::Relaxed);
        eprint!(
            "\r{:>6.1} s  {:>10} ops done  {:>10.0} ops/s over the last 0.5 s   ",
            started.elapsed().as_secs_f64(),
            done,
            (done - last) as f64 * 2.0
        );
        last = done;
    }
    eprintln!();
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

fn report(args: &BenchArgs, total: &ClientResult, elapsed: Duration) {
    let h = &total.latencies;
    let ops = h.count();
    let errors: u64 = total.errors.values().sum();
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { ops as f64 / secs } else { 0.0 };
    let q = |x| ms(h.quantile_us(x));
    if args.json {
        println!(
            "{{\"workload\":\"{}\",\"clients\":{},\"ops\":{ops},\"errors\":{errors},\
             \"duration_s\":{secs:.3},\"ops_per_s\":{rate:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\
             \"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3}}}",
            args.workload.name(),
            args.clients,
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            ms(h.max_us())
        );
    } else {
        println!(
            "workload {}  clients {}  ops {ops}  errors {errors}  duration {secs:.2} s",
            args.workload.name(),
            args.clients
        );
        println!("throughput  {rate:.1} ops/s");
        println!(
            "latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            q(0.5),
            q(0.9),
            q(0.99),
            q(0.999),
            ms(h.max_us())
        );
    }
    for (kind, n) in &total.warmup_errors {
        eprintln!("raftkv bench: {n} clients' warm-up request failed: {kind}");
    }
    for (kind, n) in &total.errors {
        eprintln!("raftkv bench: {n} measured operations failed: {kind}");
    }
}

#[cfg(test)]
mod tests {
    use super::{key_name, spread};

    #[test]
    fn spread_clients_start_round_robin_and_keep_the_rest_as_fallbacks() {
        let addrs: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let firsts: Vec<String> = (0..4)
            .map(|n| spread(addrs.clone(), n)[0].clone())
            .collect();
        assert_eq!(firsts, ["a", "b", "c", "a"]);
        assert_eq!(spread(addrs.clone(), 1), ["b", "c", "a"]);
        assert!(spread(Vec::new(), 5).is_empty());
    }

    #[test]
    fn key_names_have_the_requested_size_and_are_distinct() {
        assert_eq!(key_name(7, 16).len(), 16);
        assert_eq!(key_name(7, 16), "k000000000000007");
        assert_ne!(key_name(1, 16), key_name(10, 16));
        // A size too small for the number still gives a distinct name.
        assert_eq!(key_name(12345, 3), "k12345");
    }
}
