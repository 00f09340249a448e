//! Snapshot benchmark: snapshot time and size, restart time and peak memory for a
//! state machine of N keys with 16-byte keys and 100-byte values (issue 6).
//!
//! ```text
//! cargo build --release
//! cargo run --release --example snapshot_bench -- 100000 1000000
//! ```
//!
//! For each N it builds the KV store in memory, encodes it (`KvStore::snapshot`, what
//! the applier does) and saves it through `Storage` into a fresh data directory (what
//! the writer does), timing both. Then, if `target/release/raftkv` exists (or
//! `RAFTKV_BIN` names the binary), it starts a one-member node on that directory and
//! measures the restart (until `status` shows the snapshot applied) and the node's
//! peak resident memory (VmHWM in /proc/PID/status); then it makes the node take its
//! own snapshot of all N keys (a few writes with `--snapshot-entries 100`) and reads
//! VmHWM again. Reported memory is compared with the raw data size, N × (16 + 100).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use raftkv::kv::{encode_request, Command as KvCommand, KvStore, Request};
use raftkv::raft::{HardState, LogPosition};
use raftkv::storage::{Meta, SnapshotFile, Storage};

const KEY_BYTES: usize = 16;
const VALUE_BYTES: usize = 100;

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    for n in sizes {
        if let Err(e) = bench(n) {
            eprintln!("keys={n}: {e}");
            std::process::exit(1);
        }
    }
}

fn bench(n: u64) -> Result<(), String> {
    let raw_mb = mb(n * (KEY_BYTES + VALUE_BYTES) as u64);
    let root = tempfile::Builder::new()
        .prefix("raftkv-snapbench-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let dir = root.path().join("node1");
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let (encode_ms, save_ms, bytes) = build_and_save(n, &dir, &addr)?;
    println!(
        "keys={n} raw={raw_mb:.1}MB snapshot={:.1}MB encode={encode_ms}ms save={save_ms}ms",
        mb(bytes)
    );
    let Some(bin) = binary() else {
        println!("  (no target/release/raftkv: skipping the node restart and memory)");
        return Ok(());
    };
    let mut node = start_node(&bin, &dir, &addr)?;
    let started = Instant::now();
    let ready = wait_applied(&bin, &addr, n + 1, Duration::from_secs(300));
    let restart_ms = started.elapsed().as_millis();
    let hwm_restart = vm_hwm_kb(node.id());
    if !ready {
        let _ = node.kill();
        return Err("the node never reported the snapshot applied".into());
    }
    // Make the node snapshot all n keys itself (the threshold is 100 entries).
    let out = Command::new(&bin)
        .args([
            "bench",
            "--addr",
            &addr,
            "--clients",
            "4",
            "--ops",
            "300",
            "--keys",
        ])
        .arg("100")
        .arg("put")
        .output()
        .map_err(|e| e.to_string())?;
    let snapshotted = out.status.success() && wait_log(&dir, Duration::from_secs(300));
    let hwm_after = vm_hwm_kb(node.id());
    let _ = node.kill();
    let _ = node.wait();
    println!(
        "  restart={restart_ms}ms VmHWM after restart={:.1}MB ({:.2}x raw), after its own snapshot={:.1}MB ({:.2}x raw){}",
        hwm_restart as f64 / 1024.0,
        hwm_restart as f64 / 1024.0 / raw_mb,
        hwm_after as f64 / 1024.0,
        hwm_after as f64 / 1024.0 / raw_mb,
        if snapshotted { "" } else { " [node snapshot not seen]" }
    );
    Ok(())
}

/// Builds the store, encodes it and saves it as node 1's snapshot; returns the encode
/// and save times and the file size.
fn build_and_save(n: u64, dir: &Path, addr: &str) -> Result<(u128, u128, u64), String> {
    let mut kv = KvStore::new();
    for i in 0..n {
        let request = Request {
            client_id: 1 + i % 64,
            seq: 1 + i / 64,
            command: KvCommand::Put {
                key: format!("k{i:0>15}"),
                value: "v".repeat(VALUE_BYTES),
            },
        };
        kv.apply(i + 1, &encode_request(&request))
            .map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let data = kv.snapshot();
    let encode_ms = started.elapsed().as_millis();
    drop(kv);
    let meta = Meta {
        node_id: 1,
        cluster: "raftkv".into(),
        peers: vec![addr.to_string()],
        incarnation: 1,
        join: false,
    };
    let (mut storage, _) = Storage::open(dir, &meta).map_err(|e| e.to_string())?;
    let term_one = HardState {
        current_term: 1,
        voted_for: None,
    };
    storage
        .save_hard_state(&term_one)
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let snapshot = SnapshotFile {
        membership: None,
        last: LogPosition { term: 1, index: n },
        data,
    };
    storage
        .save_snapshot(&snapshot)
        .map_err(|e| e.to_string())?;
    let save_ms = started.elapsed().as_millis();
    Ok((encode_ms, save_ms, storage.snapshot_bytes()))
}

fn start_node(bin: &Path, dir: &Path, addr: &str) -> Result<Child, String> {
    let log = std::fs::File::create(dir.with_extension("log")).map_err(|e| e.to_string())?;
    Command::new(bin)
        .args([
            "node", "--id", "1", "--addr", addr, "--peers", addr, "--data",
        ])
        .arg(dir)
        .args(["--snapshot-entries", "100", "--log-level", "info"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| e.to_string())
}

/// Polls `status` until `applied_index` reaches `index`.
fn wait_applied(bin: &Path, addr: &str, index: u64, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let out = Command::new(bin)
            .args(["client", "--addr", addr, "--timeout", "1", "status"])
            .output();
        if let Ok(out) = out {
            let text = String::from_utf8_lossy(&out.stdout);
            let applied = text
                .lines()
                .find_map(|l| l.strip_prefix("applied_index:"))
                .and_then(|v| v.trim().parse::<u64>().ok());
            if applied.is_some_and(|a| a >= index) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits for the node's log to report a snapshot it saved itself.
fn wait_log(dir: &Path, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let text = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("saved (")) {
            println!("  node: {}", line.trim());
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn binary() -> Option<PathBuf> {
    let path = std::env::var_os("RAFTKV_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/raftkv"));
    path.exists().then_some(path)
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(listener.local_addr().map_err(|e| e.to_string())?.port())
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
