//! The command line as a new user meets it: malformed addresses are usage errors named
//! after their flag, client flags work on either side of the operation, values come
//! from a file or stdin, `status` moves past a dead address, a stale read with every
//! node down says no node answered, a data directory of another layout is a usage
//! error, and `bench` counts failed operations apart.

mod support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::{free_ports, run_binary, wait_for, Cluster, Outcome, BIN};

/// Runs `raftkv ARGS` with extra environment variables and `stdin` as its input, killed
/// if it overruns `deadline` (then `code` is `None`).
fn run_with(args: &[&str], env: &[(&str, &str)], stdin: &[u8], deadline: Duration) -> Outcome {
    let mut child = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn raftkv");
    let mut input = child.stdin.take().expect("stdin pipe");
    let bytes = stdin.to_vec();
    // A writer thread, so a child that does not read stdin cannot block the test.
    let writer = thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    // Readers drain the pipes while the child runs, so a large output cannot fill a
    // pipe and stall the child.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout pipe")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr pipe")));
    let end = Instant::now() + deadline;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Outcome {
        code: status.and_then(|s| s.code()),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// An address nobody listens on.
fn dead_addr() -> String {
    format!("127.0.0.1:{}", free_ports(1)[0])
}

const QUICK: Duration = Duration::from_secs(3);

#[test]
fn a_malformed_client_address_is_a_usage_error_naming_the_flag() {
    for op in [&["status"][..], &["get", "k"], &["put", "k", "v"]] {
        let mut args = vec!["client", "--addr", "8002"];
        args.extend_from_slice(op);
        // No retries: the answer comes at once, well inside QUICK.
        let out = run_binary(&args, QUICK);
        assert_eq!(out.code, Some(2), "{args:?}: {out:?}");
        assert!(out.stderr.contains("--addr"), "{args:?}: {out:?}");
        assert!(out.stderr.contains(":8002"), "suggests the fix: {out:?}");
    }
    let out = run_binary(&["client", "--addr", ":8001,host:", "status"], QUICK);
    assert_eq!(out.code, Some(2), "{out:?}");
    let out = run_binary(&["bench", "--addr", "8002", "put"], QUICK);
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--addr"), "{out:?}");
}

#[test]
fn malformed_or_duplicate_peers_are_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("n1");
    let data = data.to_str().expect("utf-8 path");
    let [p1, p2] = free_ports(2)[..] else {
        unreachable!()
    };
    let node = |addr: &str, peers: &str| {
        run_binary(
            &[
                "node", "--id", "1", "--addr", addr, "--peers", peers, "--data", data,
            ],
            QUICK,
        )
    };
    let out = node(&format!(":{p1}"), "8101,8102,8103");
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--peers"), "{out:?}");
    let out = node("8101", &format!(":{p1}"));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("--addr"), "{out:?}");
    // The same member twice, once spelled :PORT and once 127.0.0.1:PORT.
    let out = node(&format!(":{p1}"), &format!(":{p1},127.0.0.1:{p2},:{p2}"));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("duplicate"), "{out:?}");
}

#[test]
fn an_addr_other_than_the_own_peers_entry_is_a_warning() {
    let [p1, p2] = free_ports(2)[..] else {
        unreachable!()
    };
    // --data under /dev/null cannot be created: the node stops right after its checks.
    let out = run_binary(
        &[
            "node",
            "--addr",
            &format!("127.0.0.1:{p1}"),
            "--peers",
            &format!(":{p2}"),
            "--data",
            "/dev/null/raftkv",
        ],
        QUICK,
    );
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(out.stderr.contains("WARN"), "{out:?}");
    assert!(
        out.stderr
            .contains("differs from this node's --peers entry"),
        "{out:?}"
    );
}

#[test]
fn a_bogus_log_level_from_the_environment_is_named_as_such() {
    let out = run_with(
        &["node", "--data", "/nonexistent/raftkv-never-created"],
        &[("RAFTKV_LOG", "bogus")],
        b"",
        QUICK,
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("RAFTKV_LOG"), "{out:?}");
    assert!(!out.stderr.contains("--log-level \"bogus\""), "{out:?}");
}

/// Starts node 1 of a one-member cluster and waits until it answers `status`.
fn start_single(cluster: &mut Cluster) {
    cluster.start_node(0);
    let addr = cluster.addrs[0].clone();
    let up = wait_for(Duration::from_secs(15), || {
        let out = run_binary(
            &["client", "--addr", &addr, "--timeout", "1", "status"],
            Duration::from_secs(5),
        );
        (out.code == Some(0)).then_some(())
    });
    assert!(
        up.is_some(),
        "node did not answer status:\n{}",
        cluster.logs()
    );
}

#[test]
fn client_flags_work_after_the_operation_too() {
    let mut cluster = Cluster::new(1, &[]);
    start_single(&mut cluster);
    let addr = cluster.addrs[0].clone();
    let run = |args: &[&str]| run_binary(args, Duration::from_secs(20));
    let out = run(&["client", "put", "k", "v1", "--addr", &addr]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = run(&["client", "get", "k", "--addr", &addr, "--timeout", "5"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "v1\n"),
        "{out:?}"
    );
    let out = run(&["client", "--timeout", "5", "get", "--addr", &addr, "k"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "v1\n"),
        "{out:?}"
    );
    let out = run(&["client", "status", "--cluster", "raftkv", "--addr", &addr]);
    assert_eq!(out.code, Some(0), "{out:?}");
    // A value beginning with a dash goes after `--`, as --help says.
    let out = run(&["client", "put", "--addr", &addr, "k", "--", "-5"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = run(&["client", "get", "k", "--addr", &addr]);
    assert_eq!(out.stdout, "-5\n", "{out:?}");
    let help = run(&["client", "put", "--help"]);
    assert!(help.stdout.contains("--"), "{help:?}");
}

#[test]
fn values_come_from_a_file_or_from_stdin() {
    let mut cluster = Cluster::new(1, &[]);
    start_single(&mut cluster);
    let addr = cluster.addrs[0].clone();
    let deadline = Duration::from_secs(20);
    // Larger than a shell lets one argument be (128 KiB).
    let big: String = (0..200_000)
        .map(|i| (b'a' + (i % 26) as u8) as char)
        .collect();
    let file = cluster.path().join("value.txt");
    std::fs::write(&file, &big).expect("write value file");
    let file = file.to_str().expect("utf-8 path").to_string();

    let out = run_with(
        &[
            "client",
            "--addr",
            &addr,
            "put",
            "big",
            "--value-file",
            &file,
        ],
        &[],
        b"",
        deadline,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = run_with(
        &["client", "--addr", &addr, "get", "big"],
        &[],
        b"",
        deadline,
    );
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(out.stdout == format!("{big}\n"), "value differs");

    // `-` reads stdin, bytes as given (a trailing newline is part of the value).
    let out = run_with(
        &[
            "client",
            "--addr",
            &addr,
            "put",
            "piped",
            "--value-file",
            "-",
        ],
        &[],
        b"from stdin\n",
        deadline,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = run_binary(&["client", "--addr", &addr, "get", "piped"], deadline);
    assert_eq!(out.stdout, "from stdin\n\n", "{out:?}");

    // cas's new value from stdin.
    let out = run_with(
        &[
            "client",
            "--addr",
            &addr,
            "cas",
            "piped",
            "from stdin\n",
            "--new-file",
            "-",
        ],
        &[],
        b"swapped",
        deadline,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = run_binary(&["client", "--addr", &addr, "get", "piped"], deadline);
    assert_eq!(out.stdout, "swapped\n", "{out:?}");

    // Misuse is a usage error, before any network traffic.
    let misuse: [&[&str]; 5] = [
        &["put", "k", "v", "--value-file", &file],
        &["put", "k"],
        &["cas", "k", "old", "new", "--new-file", &file],
        &["cas", "k", "old"],
        &["put", "k", "--value-file", "/nonexistent/raftkv-value"],
    ];
    for args in misuse {
        let mut full = vec!["client", "--addr", &addr];
        full.extend_from_slice(args);
        let out = run_binary(&full, QUICK);
        assert_eq!(out.code, Some(2), "{full:?}: {out:?}");
    }
    let out = run_binary(
        &[
            "client",
            "--addr",
            &addr,
            "put",
            "k",
            "--value-file",
            "/nonexistent/raftkv-value",
        ],
        QUICK,
    );
    assert!(out.stderr.contains("/nonexistent/raftkv-value"), "{out:?}");
}

#[test]
fn status_moves_past_a_dead_address_and_names_the_node_that_answered() {
    let mut cluster = Cluster::new(1, &[]);
    start_single(&mut cluster);
    let addr = cluster.addrs[0].clone();
    let list = format!("{},{addr}", dead_addr());
    let out = run_binary(
        &["client", "--addr", &list, "status"],
        Duration::from_secs(20),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("id: 1\n"), "{out:?}");
    // The configuration: the one voter, no learners.
    assert!(
        out.stdout.contains("\nvoters: 1\nlearners: none\n"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!("\nanswered_by: {addr}\n")),
        "{out:?}"
    );
}

#[test]
fn a_stale_read_with_every_node_down_says_no_node_answered() {
    let list = format!("{},{}", dead_addr(), dead_addr());
    let out = run_binary(
        &[
            "client",
            "--addr",
            &list,
            "--timeout",
            "1",
            "get",
            "--stale",
            "k",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stderr.contains("no node answered"), "{out:?}");
    assert!(!out.stderr.contains("leader"), "{out:?}");
}

#[test]
fn data_directory_addresses_are_normalized_and_a_mismatch_is_a_usage_error() {
    let mut cluster = Cluster::new(1, &[]);
    let port = cluster.addrs[0]
        .rsplit_once(':')
        .expect("port")
        .1
        .to_string();
    let short = format!(":{port}");
    // Created with ":PORT"...
    cluster.addrs[0] = short.clone();
    cluster.set_peers(0, vec![short.clone()]);
    start_single(&mut cluster);
    cluster.kill(0);
    // ... restarted with "127.0.0.1:PORT": the same member.
    let long = format!("127.0.0.1:{port}");
    cluster.addrs[0] = long.clone();
    cluster.set_peers(0, vec![long.clone()]);
    start_single(&mut cluster);
    cluster.kill(0);
    // Restarted as member 1 of two: a usage error that says what to do.
    let data = cluster.data_dir(0);
    let data = data.to_str().expect("utf-8 path");
    let peers = format!("{long},{}", dead_addr());
    let out = run_binary(
        &[
            "node", "--id", "1", "--addr", &long, "--peers", &peers, "--data", data,
        ],
        Duration::from_secs(10),
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr.contains("--data"),
        "says what to change: {out:?}"
    );
}

#[test]
fn bench_counts_failed_operations_apart() {
    let out = run_binary(
        &[
            "bench",
            "--addr",
            &dead_addr(),
            "--clients",
            "1",
            "--ops",
            "3",
            "--timeout",
            "0.2",
            "--json",
            "put",
        ],
        Duration::from_secs(20),
    );
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("\"ops\":0,"), "{out:?}");
    assert!(out.stdout.contains("\"errors\":3,"), "{out:?}");
    assert!(out.stderr.contains("warm-up"), "{out:?}");
    assert!(
        !out.stderr.contains("outcome_unknown"),
        "no Debug output: {out:?}"
    );
}

/// The ports process tests give their nodes lie outside the kernel's ephemeral range,
/// from which every outgoing connection takes its local port: a port chosen there and
/// released could be taken by a connection before the node binds it.
#[test]
fn test_ports_are_outside_the_kernels_ephemeral_range() {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .expect("read ip_local_port_range");
    let bounds: Vec<u16> = range
        .split_whitespace()
        .map(|n| n.parse().expect("a port number"))
        .collect();
    let ports = free_ports(50);
    let mut distinct = ports.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
    for port in ports {
        assert!(
            port < bounds[0] || port > bounds[1],
            "port {port} is in the ephemeral range {bounds:?}"
        );
    }
}
