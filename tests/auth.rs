//! Authentication, end to end: a cluster with secrets refuses a peer with a wrong
//! secret, a client without one and a replayed handshake, and keeps committing writes
//! throughout; a node reachable from other machines refuses to start without secrets;
//! bad secret files are refused with the fix.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use raftkv::client::{Client, ClientOptions};
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

/// Kills a child process when dropped, even if the test panics.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A library client with the cluster's secret writing until `stop`; returns how many
/// writes succeeded, and the errors.
fn background_writer(cluster: &Cluster, stop: Arc<AtomicBool>) -> JoinHandle<(u64, Vec<String>)> {
    let opts = ClientOptions {
        secret: cluster.client_secret(),
        ..ClientOptions::default()
    };
    let mut client = Client::new(cluster.addrs.clone(), opts);
    thread::spawn(move || {
        let (mut ok, mut errors) = (0, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            match client.put(&format!("w{ok}"), "v") {
                Ok(()) => ok += 1,
                Err(e) => errors.push(e.to_string()),
            }
        }
        (ok, errors)
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
    let stop = Arc::new(AtomicBool::new(false));
    let writer = background_writer(&cluster, Arc::clone(&stop));
    wrong_peer_secrets_are_refused(&cluster);
    assert_commits(&cluster, "after-wrong-peer");
    a_client_without_a_secret_is_refused(&cluster);
    assert_commits(&cluster, "after-no-secret");
    a_replayed_handshake_is_refused(&cluster, leader);
    assert_commits(&cluster, "after-replay");
    let _impostor = a_node_with_a_wrong_secret_cannot_join(&mut cluster, leader);
    assert_commits(&cluster, "with-impostor");
    stop.store(true, Ordering::Relaxed);
    let (ok, errors) = writer.join().expect("writer");
    assert!(
        ok > 0 && errors.is_empty(),
        "{ok} writes, errors: {errors:?}"
    );
}

/// A peer with a wrong secret, claiming to be node 2, is refused by node 1 and
/// logged; so is one using the client secret as a peer secret.
fn wrong_peer_secrets_are_refused(cluster: &Cluster) {
    let wrong = Secret::parse(&keygen()).expect("a secret");
    let client_secret = cluster.client_secret().expect("the cluster has secrets");
    for secret in [wrong, client_secret] {
        let mut stream = TcpStream::connect(&cluster.addrs[0]).expect("connect");
        let from = HelloFrom::Peer {
            id: 2,
            incarnation: 1,
            addr: String::new(),
        };
        let err = net::client_handshake(&mut stream, "raftkv", from, Some(&secret))
            .expect_err("a wrong peer secret must be refused");
        assert!(
            matches!(err.kind(), NetErrorKind::Refused(r) if r == AUTH_REFUSAL),
            "{err}"
        );
    }
    assert!(
        log_shows(
            cluster,
            0,
            "authentication failed from a peer claiming id 2"
        ),
        "node 1 did not log the refusal\n{}",
        cluster.logs()
    );
}

/// A client without a secret is refused, with a message saying why, and logged.
fn a_client_without_a_secret_is_refused(cluster: &Cluster) {
    let addr = cluster.addrs.join(",");
    let args = ["client", "--addr", &addr, "put", "k", "v"];
    let out = run_binary(&args, Duration::from_secs(30));
    assert_eq!(out.code, Some(4), "a client without a secret: {out:?}");
    assert!(out.stderr.contains("demands a secret"), "{}", out.stderr);
    assert!(
        log_shows(cluster, 0, "authentication failed from a client"),
        "node 1 did not log the secretless client\n{}",
        cluster.logs()
    );
}

/// A real client's handshake and request, recorded through a relay and replayed on
/// a new connection, are refused after the challenge.
fn a_replayed_handshake_is_refused(cluster: &Cluster, leader: usize) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let relay_addr = listener.local_addr().expect("addr").to_string();
    let recording = record_one(listener, cluster.addrs[leader].clone());
    let files = cluster.secret_files().expect("files");
    let secret_file = files.client.display().to_string();
    let args = [
        "client",
        "--addr",
        &relay_addr,
        "--client-secret-file",
        &secret_file,
        "put",
        "replayed",
        "1",
    ];
    let real = run_binary(&args, Duration::from_secs(30));
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
    let refused = HelloReply::Refused {
        reason: AUTH_REFUSAL.to_string(),
    };
    assert_eq!(verdict, refused, "a replayed handshake must be refused");
}

/// Restarts a follower with a wrong peer secret: the members refuse it and log it.
/// Returns the impostor process (killed when dropped).
fn a_node_with_a_wrong_secret_cannot_join(cluster: &mut Cluster, leader: usize) -> KillOnDrop {
    let bad = cluster.path().join("wrong-peer.key");
    write_private(&bad, &keygen());
    let victim = (leader + 1) % 3;
    cluster.kill(victim);
    let mut args = cluster.node_args(victim);
    let flag = args.iter().position(|a| a == "--peer-secret-file");
    args[flag.expect("the flag") + 1] = bad.display().to_string();
    let log = std::fs::File::create(cluster.path().join("wrong.log")).expect("log");
    let impostor = std::process::Command::new(support::BIN)
        .args(&args)
        .stdout(log.try_clone().expect("clone"))
        .stderr(log)
        .spawn()
        .expect("spawn");
    let impostor = KillOnDrop(impostor);
    let claim = format!("a peer claiming id {}", victim + 1);
    let others: Vec<usize> = (0..3).filter(|&i| i != victim).collect();
    assert!(
        others.iter().any(|&i| log_shows(cluster, i, &claim)),
        "no member logged the impostor's refusal\n{}",
        cluster.logs()
    );
    impostor
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
fn the_same_secret_for_peers_and_clients_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = dir.path().join("both.key");
    write_private(&key, &keygen());
    let path = key.display().to_string();
    let data = dir.path().join("data").display().to_string();
    let args = [
        "node",
        "--addr",
        ":0",
        "--peers",
        ":0",
        "--data",
        &data,
        "--peer-secret-file",
        &path,
        "--client-secret-file",
        &path,
    ];
    let out = run_binary(&args, Duration::from_secs(30));
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("must differ"), "{}", out.stderr);
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
