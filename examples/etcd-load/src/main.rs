//! etcd-load: a closed-loop load generator for etcd's native gRPC KV API, in the same
//! shapes as `raftkv bench`, so that examples/bench-vs-etcd.sh can measure both systems
//! by itself and print them side by side.
//!
//! ```text
//! etcd-load --endpoints URL[,URL...] [--clients 64] [--conns 8]
//!           [--duration 5] [--keys 1000] [--key-size 16] [--value-size 100]
//!           put | get | get-stale | preload
//! ```
//!
//! `--clients` logical clients share `--conns` HTTP/2 connections (default: min(clients,
//! 8), the shape etcd's own benchmark tool uses), each client with one request in flight.
//! Connections go round-robin over `--endpoints`: one URL puts all load on that member.
//! `get` is a linearizable Range, `get-stale` a serializable one, `preload` writes keys
//! 0..keys once. Prints one JSON object with the fields of `raftkv bench --json`.
//! Runs on one thread, so the generator itself uses at most one core.

mod etcd_pb;

use std::time::{Duration, Instant};

use etcd_pb::{PutRequest, PutResponse, RangeRequest, RangeResponse, PUT_PATH, RANGE_PATH};
use tonic::codec::ProstCodec;
use tonic::transport::{Channel, Endpoint};

/// What to run and how hard, from the command line.
#[derive(Clone)]
struct Load {
    endpoints: Vec<String>,
    workload: String,
    clients: u64,
    conns: u64,
    duration: Duration,
    keys: u64,
    key_size: usize,
    value_size: usize,
}

/// What one client measured: latencies in microseconds, and failed requests.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

const USAGE: &str = "usage: etcd-load --endpoints URL[,URL...] [--clients N] [--conns N] \
[--duration SECS] [--keys N] [--key-size B] [--value-size B] put|get|get-stale|preload";

fn main() {
    let load = match parse(std::env::args().skip(1).collect()) {
        Ok(load) => load,
        Err(why) => {
            eprintln!("etcd-load: {why}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let code = match runtime {
        Ok(rt) => rt.block_on(run(load)),
        Err(e) => {
            eprintln!("etcd-load: cannot start the runtime: {e}");
            4
        }
    };
    std::process::exit(code);
}

fn parse(args: Vec<String>) -> Result<Load, String> {
    let mut load = Load {
        endpoints: Vec::new(),
        workload: String::new(),
        clients: 1,
        conns: 0,
        duration: Duration::from_secs(5),
        keys: 1000,
        key_size: 16,
        value_size: 100,
    };
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        if !arg.starts_with("--") {
            load.workload = arg;
            continue;
        }
        let value = it.next().ok_or(format!("{arg} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{arg}: not a number: {value}"))
        };
        match arg.as_str() {
            "--endpoints" => load.endpoints = value.split(',').map(String::from).collect(),
            "--clients" => load.clients = number()?,
            "--conns" => load.conns = number()?,
            "--duration" => {
                let secs: f64 = value.parse().map_err(|_| format!("--duration: {value}"))?;
                if !(secs.is_finite() && secs > 0.0) {
                    return Err("--duration must be a positive number of seconds".into());
                }
                load.duration = Duration::from_secs_f64(secs);
            }
            "--keys" => load.keys = number()?,
            "--key-size" => load.key_size = number()? as usize,
            "--value-size" => load.value_size = number()? as usize,
            _ => return Err(format!("unknown flag {arg}")),
        }
    }
    if load.endpoints.iter().all(|e| e.is_empty()) {
        return Err("--endpoints is required".into());
    }
    if !["put", "get", "get-stale", "preload"].contains(&load.workload.as_str()) {
        return Err(format!("unknown workload {:?}", load.workload));
    }
    if load.clients == 0 || load.keys == 0 {
        return Err("--clients and --keys must be at least 1".into());
    }
    if load.conns == 0 {
        load.conns = load.clients.min(8);
    }
    Ok(load)
}

async fn run(load: Load) -> i32 {
    let mut channels = Vec::new();
    for n in 0..load.conns {
        let endpoint = &load.endpoints[(n % load.endpoints.len() as u64) as usize];
        match connect(endpoint).await {
            Ok(ch) => channels.push(ch),
            Err(e) => {
                eprintln!("etcd-load: cannot connect to {endpoint}: {e}");
                return 3;
            }
        }
    }
    if load.workload == "preload" {
        return preload(&load, channels[0].clone()).await;
    }
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut tasks = Vec::new();
    for client in 0..load.clients {
        let channel = channels[(client % load.conns) as usize].clone();
        tasks.push(tokio::spawn(client_loop(
            load.clone(),
            client,
            channel,
            deadline,
        )));
    }
    let mut total = Tally::default();
    for task in tasks {
        match task.await {
            Ok(t) => {
                total.latencies_us.extend(t.latencies_us);
                total.errors += t.errors;
                total.first_error = total.first_error.or(t.first_error);
            }
            Err(e) => {
                total.errors += 1;
                total
                    .first_error
                    .get_or_insert(format!("client task failed: {e}"));
            }
        }
    }
    report(&load, &mut total, started.elapsed());
    if let Some(e) = &total.first_error {
        eprintln!("etcd-load: {} errors; the first: {e}", total.errors);
    }
    i32::from(total.errors > 0)
}

async fn connect(endpoint: &str) -> Result<Channel, String> {
    let ep = Endpoint::from_shared(endpoint.to_string()).map_err(|e| e.to_string())?;
    ep.tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|e| e.to_string())
}

/// Key `i` at `size` bytes: `k` and the number zero-padded, as `raftkv bench` names them.
fn key_name(i: u64, size: usize) -> Vec<u8> {
    let digits = i.to_string();
    let width = size.max(digits.len() + 1) - 1;
    format!("k{digits:0>width$}").into_bytes()
}

/// One logical client: one request in flight until the deadline.
async fn client_loop(load: Load, client: u64, channel: Channel, deadline: Instant) -> Tally {
    let mut grpc = tonic::client::Grpc::new(channel);
    let mut tally = Tally::default();
    let value = vec![b'v'; load.value_size];
    // A per-client xorshift walk over the key space: cheap and reproducible.
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ client.wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1;
    while Instant::now() < deadline {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let key = key_name(x % load.keys, load.key_size);
        if let Err(e) = grpc.ready().await {
            note_error(&mut tally, e.to_string());
            continue;
        }
        let sent = Instant::now();
        let result = match load.workload.as_str() {
            "put" => put(&mut grpc, key, value.clone()).await,
            _ => get(&mut grpc, key, load.workload == "get-stale").await,
        };
        match result {
            Ok(()) => tally.latencies_us.push(sent.elapsed().as_micros() as u64),
            Err(e) => note_error(&mut tally, e),
        }
    }
    tally
}

fn note_error(tally: &mut Tally, e: String) {
    tally.errors += 1;
    tally.first_error.get_or_insert(e);
}

type Grpc = tonic::client::Grpc<Channel>;

async fn put(grpc: &mut Grpc, key: Vec<u8>, value: Vec<u8>) -> Result<(), String> {
    let path = http::uri::PathAndQuery::from_static(PUT_PATH);
    let request = tonic::Request::new(PutRequest { key, value });
    let response: tonic::Response<PutResponse> = grpc
        .unary(request, path, ProstCodec::default())
        .await
        .map_err(|s| s.to_string())?;
    match response.into_inner().header {
        Some(h) if h.revision > 0 => Ok(()),
        _ => Err("a put answered without a revision".into()),
    }
}

async fn get(grpc: &mut Grpc, key: Vec<u8>, serializable: bool) -> Result<(), String> {
    let path = http::uri::PathAndQuery::from_static(RANGE_PATH);
    let request = tonic::Request::new(RangeRequest {
        key: key.clone(),
        serializable,
    });
    let response: tonic::Response<RangeResponse> = grpc
        .unary(request, path, ProstCodec::default())
        .await
        .map_err(|s| s.to_string())?;
    match response.into_inner().kvs.first() {
        Some(kv) if kv.key == key => Ok(()),
        _ => Err("a get found no value: run the preload workload first".into()),
    }
}

/// Writes keys 0..keys once, one request at a time, so `get` finds every key.
async fn preload(load: &Load, channel: Channel) -> i32 {
    let mut grpc = tonic::client::Grpc::new(channel);
    let value = vec![b'v'; load.value_size];
    for i in 0..load.keys {
        let key = key_name(i, load.key_size);
        let ready = grpc.ready().await.map_err(|e| e.to_string());
        if let Err(e) = ready.and(Ok(())) {
            eprintln!("etcd-load: preload: {e}");
            return 3;
        }
        if let Err(e) = put(&mut grpc, key, value.clone()).await {
            eprintln!("etcd-load: preload of key {i}: {e}");
            return 3;
        }
    }
    0
}

fn report(load: &Load, total: &mut Tally, elapsed: Duration) {
    let lat = &mut total.latencies_us;
    lat.sort_unstable();
    let n = lat.len();
    let q = |p: f64| match n {
        0 => 0.0,
        _ => lat[((n as f64 * p) as usize).min(n - 1)] as f64 / 1000.0,
    };
    let secs = elapsed.as_secs_f64();
    println!(
        "{{\"workload\":\"{}\",\"clients\":{},\"conns\":{},\"ops\":{n},\"errors\":{},\
         \"duration_s\":{secs:.3},\"ops_per_s\":{:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\
         \"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3}}}",
        load.workload,
        load.clients,
        load.conns,
        total.errors,
        n as f64 / secs,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        q(1.0)
    );
}
