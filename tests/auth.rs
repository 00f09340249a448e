//! Authentication, end to end: a cluster with secrets refuses a peer with a wrong
//! secret, a client without one and a replayed handshake, and keeps committing writes
//! throughout; a node reachable from other machines refuses to start without secrets;
//! bad secret files are refused with the fix.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use raftkv::net::{self, HelloFrom, HelloReply, NetErrorKind, Secret, AUTH_REFUSAL};
use support::{free_ports, keygen, run_binary, wait_for, write_private, Cluster};

/// A put through the cluster (with its client secret) must succeed.
fn assert_commits(cluster: &Cluster, key: &str) {
    let out = cluster.client_all(&["put", key, "v"]);
    assert_eq!(out.code, Some(0), "put {key}: {}", out.stderr);
}

/// Waits until node `i`'s log contains `text`.
fn log_shows(cluster: &Cluster, i: usize, text: &str) -> bool {
    wait_for(Duration::from_secs(10), || {
        let log = std::fs::read_to_string(cluster.log_path(i)).unwrap_or_default();
        log.contains(text).then_some(())
    })
    .is_some()
}

/// Relays one connection from a listener to `target`, recording every byte the
/// connecting side sent, until it closes; returns the recording.
fn record_one(listener: TcpListener, target: String) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let (mut from_client, _) = listener.accept().expect("accept the client");
        let mut to_node = TcpStream::connect(&target).expect("connect to the node");
        let mut back_from = to_node.try_clone().expect("clone");
        let mut back_to = from_client.try_clone().expect("clone");
        let back = thread::spawn(move || {
            let _ = std::io::copy(&mut back_from, &mut back_to);
            let _ = back_to.shutdown(std::net::Shutdown::Write);
        });
        let mut recorded = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match from_client.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    recorded.extend_from_slice(&buf[..n]);
                    if to_node.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_node.shutdown(std::net::Shutdown::Both);
        let _ = back.join();
        recorded
    })
}

#[test]
fn strangers_are_refused_and_the_cluster_keeps_committing() {
    let mut cluster = Cluster::new(3, &[]);
    cluster.use_secrets();
    for i in 0..3 {
        cluster.start_node(i);
    }
    let leader = cluster.leader();
    assert_commits(&cluster, "before");

    // A peer with a wrong secret, claiming to be node 2, is refused by node 1.
    let wrong = Secret::parse(&keygen()).expect("a secret");
    let mut stream = TcpStream::connect(&cluster.addrs[0]).expect("connect");
    let err = net::client_handshake(
        &mut stream,
        "raftkv",
        HelloFrom::Peer { id: 2 },
        Some(&wrong),
    )
    .expect_err("a wrong peer secret must be refused");
    assert!(
        matches!(err.kind(), NetErrorKind::Refused(r) if r == AUTH_REFUSAL),
        "{err}"
    );
    assert!(
        log_shows(
            &cluster,
            0,
            "authentication failed from a peer claiming id 2"
        ),
        "node 1 did not log the refusal\n{}",
        cluster.logs()
    );
    // The client secret is no peer secret.
    let client_secret = cluster.client_secret().expect("the cluster has secrets");
    let mut stream = TcpStream::connect(&cluster.addrs[0]).expect("connect");
    net::client_handshake(
        &mut stream,
        "raftkv",
        HelloFrom::Peer { id: 2 },
        Some(&client_secret),
    )
    .expect_err("the client secret must not admit a peer");
    assert_commits(&cluster, "after-wrong-peer");

    // A client without a secret is refused, with a message saying why.
    let addr = cluster.addrs.join(",");
    let out = run_binary(
        &["client", "--addr", &addr, "put", "k", "v"],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(4), "a client without a secret: {out:?}");
    assert!(out.stderr.contains("demands a secret"), "{}", out.stderr);
    assert!(
        log_shows(&cluster, 0, "authentication failed from a client"),
        "node 1 did not log the secretless client\n{}",
        cluster.logs()
    );
    assert_commits(&cluster, "after-no-secret");

    // A real client's handshake and request, recorded and replayed, are refused.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let relay_addr = listener.local_addr().expect("addr").to_string();
    let recording = record_one(listener, cluster.addrs[leader].clone());
    let secret_file = cluster
        .secret_files()
        .expect("files")
        .client
        .display()
        .to_string();
    let real = run_binary(
        &[
            "client",
            "--addr",
            &relay_addr,
            "--client-secret-file",
            &secret_file,
            "put",
            "replayed",
            "1",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(real.code, Some(0), "the recorded client: {real:?}");
    let recorded = recording.join().expect("relay");
    let mut replay = TcpStream::connect(&cluster.addrs[leader]).expect("connect");
    replay
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    replay.write_all(&recorded).expect("replay");
    let challenge: HelloReply =
        net::read_frame(&mut replay, net::MAX_HELLO_BYTES).expect("challenge");
    assert!(
        matches!(challenge, HelloReply::Challenge { .. }),
        "{challenge:?}"
    );
    let verdict: HelloReply = net::read_frame(&mut replay, net::MAX_HELLO_BYTES).expect("verdict");
    assert_eq!(
        verdict,
        HelloReply::Refused {
            reason: AUTH_REFUSAL.to_string()
        },
        "a replayed handshake must be refused"
    );
    assert_commits(&cluster, "after-replay");

    // A node started with a wrong peer secret cannot join; the other two still commit.
    let bad = cluster.path().join("wrong-peer.key");
    write_private(&bad, &keygen());
    let victim = (leader + 1) % 3;
    cluster.kill(victim);
    let mut args = cluster.node_args(victim);
    let at = args
        .iter()
        .position(|a| a == "--peer-secret-file")
        .expect("flag")
        + 1;
    args[at] = bad.display().to_string();
    let log = std::fs::File::create(cluster.path().join("wrong.log")).expect("log");
    let mut impostor = std::process::Command::new(support::BIN)
        .args(&args)
        .stdout(log.try_clone().expect("clone"))
        .stderr(log)
        .spawn()
        .expect("spawn");
    let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    assert!(
        others.iter().any(|&i| log_shows(
            &cluster,
            i,
            &format!("a peer claiming id {}", victim + 1)
        )),
        "no member logged the impostor's refusal\n{}",
        cluster.logs()
    );
    assert_commits(&cluster, "with-impostor");
    let _ = impostor.kill();
    let _ = impostor.wait();
}

#[test]
fn a_node_on_a_non_loopback_address_needs_secrets_or_insecure() {
    let port = free_ports(1)[0];
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = format!("0.0.0.0:{port}");
    let data = dir.path().join("data").display().to_string();
    let out = run_binary(
        &[
            "node", "--id", "1", "--addr", &addr, "--peers", &addr, "--data", &data,
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(2), "{out:?}");
    for flag in ["--peer-secret-file", "--client-secret-file", "--insecure"] {
        assert!(
            out.stderr.contains(flag),
            "the error must name {flag}: {}",
            out.stderr
        );
    }
}

#[test]
fn bad_secret_files_are_refused_with_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let open = dir.path().join("open.key");
    std::fs::write(&open, keygen()).expect("write");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let short = dir.path().join("short.key");
    write_private(&short, "00112233\n");
    let data = dir.path().join("data").display().to_string();
    for (file, why) in [(&open, "chmod 600"), (&short, "at least 32")] {
        let path = file.display().to_string();
        let out = run_binary(
            &[
                "node",
                "--addr",
                ":0",
                "--peers",
                ":0",
                "--data",
                &data,
                "--peer-secret-file",
                &path,
            ],
            Duration::from_secs(30),
        );
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(
            out.stderr.contains(&path) && out.stderr.contains(why),
            "{}",
            out.stderr
        );
        let out = run_binary(
            &[
                "client",
                "--addr",
                ":1",
                "--client-secret-file",
                &path,
                "status",
            ],
            Duration::from_secs(30),
        );
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(out.stderr.contains(why), "{}", out.stderr);
    }
}

#[test]
fn a_client_with_a_secret_refuses_a_node_without_one() {
    let cluster = Cluster::start(1);
    cluster
        .wait_leader(&[0], Duration::from_secs(15))
        .expect("a leader");
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("client.key");
    write_private(&key, &keygen());
    let path = key.display().to_string();
    let out = run_binary(
        &[
            "client",
            "--addr",
            &cluster.addrs[0],
            "--client-secret-file",
            &path,
            "put",
            "k",
            "v",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(out.code, Some(4), "{out:?}");
    assert!(
        out.stderr.contains("did not authenticate"),
        "{}",
        out.stderr
    );
}
