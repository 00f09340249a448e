//! `run-cluster.sh` as a user runs it: start a three-node cluster, restart one node
//! from "another terminal", stop the cluster with a signal within a deadline (saying
//! which node was already dead), and start a cluster of another size next to it in its
//! own data directory. Every process the script starts is killed in `Drop`.

mod support;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{run_binary, wait_for, BIN};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/run-cluster.sh");

/// A base port P such that P+1 ..= P+n are free now, below the kernel's ephemeral
/// range (see `support::TEST_PORTS`).
fn free_base(n: u16) -> u16 {
    let span = support::TEST_PORTS.end - support::TEST_PORTS.start - n;
    for _ in 0..100 {
        let base = support::TEST_PORTS.start + rand::random::<u16>() % span;
        let all_free = (1..=n).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no {n} consecutive free ports found");
}

/// True if process `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

/// The script's data directory and port base; kills the script and every node whose
/// pid file is in the data directory when dropped.
struct Harness {
    data: tempfile::TempDir,
    base: u16,
    scripts: Vec<Child>,
}

impl Harness {
    fn new(nodes: u16) -> Harness {
        Harness {
            data: tempfile::Builder::new()
                .prefix("raftkv-script-")
                .tempdir()
                .expect("temp dir"),
            base: free_base(nodes),
            scripts: Vec::new(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("bash");
        command
            .arg(SCRIPT)
            .args(args)
            .env("RAFTKV_BIN", BIN)
            .env("RAFTKV_DATA", self.data.path())
            .env("RAFTKV_BASE_PORT", self.base.to_string())
            .stdin(Stdio::null());
        command
    }

    /// Starts `run-cluster.sh ARGS` in the background, output to `out_file`.
    fn spawn(&mut self, args: &[&str], out_file: &str) -> PathBuf {
        let path = self.data.path().join(out_file);
        let out = File::create(&path).expect("output file");
        let err = out.try_clone().expect("clone output file");
        let child = self
            .command(args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn run-cluster.sh");
        self.scripts.push(child);
        path
    }

    /// Runs `run-cluster.sh ARGS` to completion within `deadline`: (exit code, output).
    fn run(&self, args: &[&str], deadline: Duration) -> (Option<i32>, String) {
        let path = self.data.path().join("run.out");
        let out = File::create(&path).expect("output file");
        let err = out.try_clone().expect("clone output file");
        let mut child = self
            .command(args)
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn run-cluster.sh");
        let status = wait_for(deadline, || child.try_wait().expect("try_wait"));
        if status.is_none() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        (status.and_then(|s| s.code()), text)
    }

    fn pid(&self, nodes: usize, i: usize) -> u32 {
        let file = self.data.path().join(format!("{nodes}-nodes/node{i}.pid"));
        let text = std::fs::read_to_string(&file).expect("pid file");
        text.trim().parse().expect("a pid")
    }

    fn addrs(&self, n: u16) -> String {
        (1..=n)
            .map(|i| format!("127.0.0.1:{}", self.base + i))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Waits until the script's output contains `text`.
fn wait_output(path: &Path, text: &str, deadline: Duration) -> String {
    let found = wait_for(deadline, || {
        let out = std::fs::read_to_string(path).unwrap_or_default();
        out.contains(text).then_some(out)
    });
    found.unwrap_or_else(|| {
        let out = std::fs::read_to_string(path).unwrap_or_default();
        panic!("no {text:?} in the script's output within {deadline:?}:\n{out}")
    })
}

impl Drop for Harness {
    fn drop(&mut self) {
        for child in &mut self.scripts {
            let _ = child.kill();
            let _ = child.wait();
        }
        let Ok(dirs) = std::fs::read_dir(self.data.path()) else {
            return;
        };
        for dir in dirs.flatten() {
            let Ok(files) = std::fs::read_dir(dir.path()) else {
                continue;
            };
            for file in files.flatten() {
                if file.path().extension().is_some_and(|e| e == "pid") {
                    let pid = std::fs::read_to_string(file.path()).unwrap_or_default();
                    if let Ok(pid) = pid.trim().parse::<u32>() {
                        signal(pid, "KILL");
                    }
                }
            }
        }
    }
}

#[test]
fn start_restart_one_node_and_stop_within_a_deadline() {
    let mut h = Harness::new(3);
    let out = h.spawn(&[], "cluster.out");
    wait_output(&out, "leads.", Duration::from_secs(60));
    let addrs = h.addrs(3);
    let client = |args: &[&str]| {
        let mut full = vec!["client", "--addr", addrs.as_str()];
        full.extend_from_slice(args);
        run_binary(&full, Duration::from_secs(20))
    };
    assert_eq!(client(&["put", "k", "before"]).code, Some(0));

    // Restart node 2 from "another terminal".
    let old = h.pid(3, 2);
    let (code, text) = h.run(&["restart", "2"], Duration::from_secs(40));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("node 2 restarted"), "{text}");
    let new = h.pid(3, 2);
    assert_ne!(old, new);
    assert!(!alive(old), "the old node 2 still runs");
    assert!(alive(new), "the new node 2 does not run");
    let only_2 = format!("127.0.0.1:{}", h.base + 2);
    // The restarted node catches up: its own (stale) view comes to hold the value.
    let caught_up = wait_for(Duration::from_secs(20), || {
        let out = run_binary(
            &["client", "--addr", &only_2, "get", "--stale", "k"],
            Duration::from_secs(10),
        );
        (out.stdout == "before\n").then_some(())
    });
    assert!(caught_up.is_some(), "restarted node 2 never served k");

    // Node 3 dies on its own; then the script is stopped with SIGTERM.
    let pids: Vec<u32> = (1..=3).map(|i| h.pid(3, i)).collect();
    signal(pids[2], "KILL");
    assert!(wait_for(Duration::from_secs(10), || (!alive(pids[2])).then_some(())).is_some());
    let script = h.scripts[0].id();
    signal(script, "TERM");
    let exited = wait_for(Duration::from_secs(20), || {
        h.scripts[0].try_wait().expect("try_wait")
    });
    assert!(exited.is_some(), "the script did not exit within 20 s");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(text.contains("node 3: not running"), "{text}");
    assert!(text.contains("stopping node 1 2 (SIGTERM)"), "{text}");
    assert!(!text.contains("SIGKILL"), "a node needed SIGKILL:\n{text}");
    for pid in pids {
        assert!(!alive(pid), "node pid {pid} survived the stop");
    }
    assert!(!h.data.path().join("running").exists());
}

#[test]
fn another_size_runs_in_its_own_directory_and_stop_ends_it() {
    let mut h = Harness::new(3);
    std::fs::create_dir_all(h.data.path().join("3-nodes/node1")).expect("mkdir");
    let out = h.spawn(&["1"], "cluster.out");
    wait_output(&out, "leads.", Duration::from_secs(60));
    assert!(h.data.path().join("1-nodes/node1").is_dir());
    let pid = h.pid(1, 1);

    // A second start while one runs is refused.
    let (code, text) = h.run(&["1"], Duration::from_secs(20));
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("already running"), "{text}");

    let (code, text) = h.run(&["stop"], Duration::from_secs(30));
    assert_eq!(code, Some(0), "{text}");
    let exited = wait_for(Duration::from_secs(5), || {
        h.scripts[0].try_wait().expect("try_wait")
    });
    assert!(exited.is_some(), "the cluster's script still runs");
    assert!(!alive(pid), "the node survived `stop`");
}
