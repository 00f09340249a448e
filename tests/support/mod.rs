//! Shared helpers for process tests: a cluster of real `raftkv node` processes on
//! ephemeral ports with temporary data directories, killed in `Drop` even when the test
//! panics, and client calls with deadlines. On failure the node logs are printed.
//!
//! Secrets: [`Cluster::use_secrets`] (or RAFTKV_TEST_SECRETS=1 for every cluster) writes
//! a peer and a client secret file into the cluster's directory and gives them to every
//! node and to every client call made through the cluster.

#![allow(dead_code)]

pub mod linearizability;
pub mod proxy;
pub mod raw;

use std::collections::HashMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_raftkv");

/// The ports process tests give their nodes: below Linux's ephemeral range (32768 and
/// up), from which the kernel picks the local port of every outgoing connection. A
/// port taken from the ephemeral range and released could be handed to some client's
/// connection before the node binds it ("Address already in use").
pub const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// Ports already handed out by this process, counting up.
static PORTS_HANDED_OUT: AtomicU32 = AtomicU32::new(0);

/// Picks `n` distinct ports on 127.0.0.1 from [`TEST_PORTS`] that are free now and that
/// this process has not handed out before. Each test binary starts at an offset
/// derived from its process id, so two suites run at once rarely meet either.
pub fn free_ports(n: usize) -> Vec<u16> {
    (0..n).map(|_| next_free_port()).collect()
}

fn next_free_port() -> u16 {
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let k = PORTS_HANDED_OUT.fetch_add(1, Ordering::Relaxed);
        let port = TEST_PORTS.start + ((start + k) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port left in {TEST_PORTS:?}");
}

/// Polls `condition` every 20 ms until it returns `Some` or `deadline` passes.
pub fn wait_for<T>(deadline: Duration, mut condition: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(value) = condition() {
            return Some(value);
        }
        if Instant::now() >= end {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The result of one client call.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code (None if killed on its deadline).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `raftkv ARGS` with a deadline; kills it if it overruns.
pub fn run_binary(args: &[&str], deadline: Duration) -> Outcome {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raftkv");
    let end = Instant::now() + deadline;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => break,
            None if Instant::now() >= end => {
                let _ = child.kill();
                break;
            }
            None => thread::sleep(Duration::from_millis(10)),
        }
    }
    let output: Output = child.wait_with_output().expect("collect output");
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A cluster of node processes. Dropping it kills them all.
pub struct Cluster {
    /// Temporary root holding the data directories and logs.
    pub root: tempfile::TempDir,
    /// `127.0.0.1:PORT` of each node, by position (node id - 1).
    pub addrs: Vec<String>,
    children: Vec<Option<Child>>,
    extra_args: Vec<String>,
    /// Per node, its own `--peers` list if set (e.g. peers reached through proxies).
    peer_lists: Vec<Option<String>>,
    /// The peer and client secret files, if the cluster uses secrets.
    secrets: Option<SecretFiles>,
    /// Per node, environment variables set from its next start (test-only faults).
    envs: Vec<Vec<(String, String)>>,
    /// Per node, `raftkv node` flags after the common ones, from its next start.
    node_extra: Vec<Vec<String>>,
}

/// A cluster's secret files (mode 600, in its temporary directory).
#[derive(Clone, Debug)]
pub struct SecretFiles {
    /// `--peer-secret-file`.
    pub peer: PathBuf,
    /// `--client-secret-file`.
    pub client: PathBuf,
}

/// Writes `text` to `path` with mode 600 (a secret file a node accepts).
pub fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write a secret file");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
}

/// A new secret, as `raftkv keygen` prints it.
pub fn keygen() -> String {
    let out = run_binary(&["keygen"], Duration::from_secs(10));
    assert_eq!(out.code, Some(0), "keygen: {}", out.stderr);
    out.stdout
}

impl Cluster {
    /// Starts `n` nodes.
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    /// Starts `n` nodes with extra `raftkv node` flags.
    pub fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let mut cluster = Cluster::new(n, extra);
        for i in 0..n {
            cluster.start_node(i);
        }
        cluster
    }

    /// Prepares `n` nodes without starting them.
    pub fn new(n: usize, extra: &[&str]) -> Cluster {
        let root = tempfile::Builder::new()
            .prefix("raftkv-test-")
            .tempdir()
            .expect("temp dir");
        let addrs = free_ports(n)
            .into_iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let mut cluster = Cluster {
            root,
            addrs,
            children: (0..n).map(|_| None).collect(),
            peer_lists: vec![None; n],
            envs: vec![Vec::new(); n],
            node_extra: vec![Vec::new(); n],
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
            secrets: None,
        };
        if std::env::var("RAFTKV_TEST_SECRETS").is_ok_and(|v| v == "1") {
            cluster.use_secrets();
        }
        cluster
    }

    /// Gives every node (from its next start) and every client call a new peer and
    /// client secret, made with `raftkv keygen`.
    pub fn use_secrets(&mut self) {
        let files = SecretFiles {
            peer: self.root.path().join("peer.key"),
            client: self.root.path().join("client.key"),
        };
        write_private(&files.peer, &keygen());
        write_private(&files.client, &keygen());
        self.secrets = Some(files);
    }

    /// The secret files, if the cluster uses secrets.
    pub fn secret_files(&self) -> Option<&SecretFiles> {
        self.secrets.as_ref()
    }

    /// The client secret for library clients (`ClientOptions::secret`), if any.
    pub fn client_secret(&self) -> Option<raftkv::net::Secret> {
        let files = self.secrets.as_ref()?;
        Some(raftkv::net::Secret::load(&files.client).expect("load the client secret"))
    }

    /// Data directory of node `i` (0-based).
    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.root.path().join(format!("node{}", i + 1))
    }

    /// The log file of node `i`.
    pub fn log_path(&self, i: usize) -> PathBuf {
        self.root.path().join(format!("node{}.log", i + 1))
    }

    /// The `raftkv node` arguments of node `i`.
    pub fn node_args(&self, i: usize) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            (i + 1).to_string(),
            "--addr".into(),
            self.addrs[i].clone(),
        ];
        let peers = self.peer_lists[i]
            .clone()
            .unwrap_or_else(|| self.addrs.join(","));
        if !peers.is_empty() {
            args.extend(["--peers".to_string(), peers]);
        }
        args.extend(["--data".to_string(), self.data_dir(i).display().to_string()]);
        if let Some(files) = &self.secrets {
            args.push("--peer-secret-file".into());
            args.push(files.peer.display().to_string());
            args.push("--client-secret-file".into());
            args.push(files.client.display().to_string());
        }
        args.extend(self.extra_args.iter().cloned());
        args.extend(self.node_extra[i].iter().cloned());
        args
    }

    /// Gives node `i` its own `--peers` list (its own entry must be its address), used
    /// from its next start.
    pub fn set_peers(&mut self, i: usize, peers: Vec<String>) {
        assert_eq!(peers[i], self.addrs[i], "node {}'s own entry", i + 1);
        self.peer_lists[i] = Some(peers.join(","));
    }

    /// Starts node `i` from its next start with `--join` and no `--peers`: a member
    /// to be, which learns where the others are from the configuration and from the
    /// members that reach it.
    pub fn set_joining(&mut self, i: usize) {
        self.peer_lists[i] = Some(String::new());
        self.node_extra[i] = vec!["--join".to_string()];
    }

    /// Adds `raftkv node` flags for node `i` alone (after the common ones, so they
    /// win), from its next start.
    pub fn set_node_args(&mut self, i: usize, args: &[&str]) {
        self.node_extra[i] = args.iter().map(|s| s.to_string()).collect();
    }

    /// Sets an environment variable for node `i` from its next start.
    pub fn set_env(&mut self, i: usize, key: &str, value: &str) {
        self.envs[i].push((key.to_string(), value.to_string()));
    }

    /// Sends `signal` (e.g. "STOP", "CONT") to node `i` if it runs.
    pub fn signal(&mut self, i: usize, signal: &str) {
        if let Some(child) = self.children[i].as_ref() {
            let status = Command::new("kill")
                .args([format!("-{signal}"), child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -{signal} node {}", i + 1);
        }
    }

    /// Starts (or restarts) node `i`, its output appended to its log file.
    pub fn start_node(&mut self, i: usize) {
        assert!(self.children[i].is_none(), "node {} already running", i + 1);
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("open node log");
        let log2 = log.try_clone().expect("clone log handle");
        let child = Command::new(BIN)
            .args(self.node_args(i))
            .envs(self.envs[i].iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("spawn raftkv node");
        self.children[i] = Some(child);
    }

    /// Kills node `i` with SIGKILL and reaps it.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Node `i`'s process id, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.children[i].as_ref().map(Child::id)
    }

    /// Waits (at most `deadline`) for node `i` to exit on its own; returns its exit
    /// code (`None` if it still runs, or was not started).
    pub fn wait_exit(&mut self, i: usize, deadline: Duration) -> Option<i32> {
        let child = self.children[i].as_mut()?;
        let status = wait_for(deadline, || child.try_wait().ok().flatten())?;
        self.children[i] = None;
        status.code()
    }

    /// True if node `i` is running.
    pub fn is_running(&mut self, i: usize) -> bool {
        match self.children[i].as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Runs `raftkv client --addr <nodes> ARGS` with a 30 s deadline.
    pub fn client(&self, nodes: &[usize], args: &[&str]) -> Outcome {
        let addr = nodes
            .iter()
            .map(|&i| self.addrs[i].as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut full = vec!["client", "--addr", addr.as_str()];
        let secret_path = self
            .secrets
            .as_ref()
            .map(|f| f.client.display().to_string());
        if let Some(path) = &secret_path {
            full.extend_from_slice(&["--client-secret-file", path]);
        }
        full.extend_from_slice(args);
        run_binary(&full, Duration::from_secs(30))
    }

    /// Runs a client against every node.
    pub fn client_all(&self, args: &[&str]) -> Outcome {
        let all: Vec<usize> = (0..self.addrs.len()).collect();
        self.client(&all, args)
    }

    /// Node `i`'s status as key/value pairs, or `None` if it did not answer.
    pub fn status(&self, i: usize) -> Option<HashMap<String, String>> {
        let out = self.client(&[i], &["--timeout", "1", "status"]);
        if out.code != Some(0) {
            return None;
        }
        Some(
            out.stdout
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect(),
        )
    }

    /// Waits (at most `deadline`) until one of `nodes` says it is the leader; returns it.
    pub fn wait_leader(&self, nodes: &[usize], deadline: Duration) -> Option<usize> {
        wait_for(deadline, || {
            nodes.iter().copied().find(|&i| {
                self.status(i)
                    .is_some_and(|s| s.get("role").map(String::as_str) == Some("leader"))
            })
        })
    }

    /// Like `wait_leader` over every running node, panicking with the logs on timeout.
    pub fn leader(&mut self) -> usize {
        let running: Vec<usize> = (0..self.addrs.len())
            .filter(|&i| self.is_running(i))
            .collect();
        match self.wait_leader(&running, Duration::from_secs(15)) {
            Some(i) => i,
            None => panic!("no leader among {running:?} within 15 s"),
        }
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for i in 0..self.addrs.len() {
            let text = std::fs::read_to_string(self.log_path(i)).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            all.push_str(&format!("---- node{} log (last 40 lines)\n", i + 1));
            for line in tail.into_iter().rev() {
                all.push_str(line);
                all.push('\n');
            }
        }
        all
    }

    /// The root directory.
    pub fn path(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
        if thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}
