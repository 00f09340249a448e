//! Unit tests of the authenticated handshake over loopback TCP: success both ways,
//! rotation, a wrong secret, a replayed proof, a proof for another id, and a node that
//! fails to prove itself.

use std::io::BufReader;
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::auth::{PeerClaim, Side, Transcript};
use super::*;
use crate::raft::NodeId;

fn secret(byte: u8) -> Secret {
    Secret::from_keys(vec![vec![byte; 32]])
}

/// Serves one handshake demanding `peer` of peers; returns the address and the result.
fn server(peer: Secret) -> (String, JoinHandle<Result<HelloFrom, NetError>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        let secrets = NodeSecrets {
            peer: Some(peer),
            client: None,
        };
        accept_hello_with(&mut reader, &mut writer, "raftkv", 1, &secrets, |_| Ok(()))
    });
    (addr, handle)
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
}

fn is_auth_refusal(result: &Result<NodeId, NetError>) -> bool {
    matches!(result, Err(e) if *e.kind() == NetErrorKind::Refused(AUTH_REFUSAL.to_string()))
}

#[test]
fn both_sides_prove_the_secret_and_an_old_one_is_accepted_during_rotation() {
    let rotated = Secret::from_keys(vec![vec![2; 32], vec![1; 32]]);
    for connector in [secret(1), secret(2), rotated.clone()] {
        let (addr, handle) = server(rotated.clone());
        let id = client_handshake(
            &mut connect(&addr),
            "raftkv",
            HelloFrom::Peer {
                id: 2,
                incarnation: 1,
                addr: String::new(),
            },
            Some(&connector),
        );
        assert_eq!(id.expect("admitted"), 1);
        assert_eq!(
            handle.join().expect("server").expect("accepted"),
            HelloFrom::Peer {
                id: 2,
                incarnation: 1,
                addr: String::new()
            }
        );
    }
}

#[test]
fn a_wrong_secret_gets_a_generic_refusal() {
    let (addr, handle) = server(secret(1));
    let result = client_handshake(
        &mut connect(&addr),
        "raftkv",
        HelloFrom::Peer {
            id: 2,
            incarnation: 1,
            addr: String::new(),
        },
        Some(&secret(9)),
    );
    assert!(is_auth_refusal(&result), "{result:?}");
    let err = handle.join().expect("server").expect_err("refused");
    assert!(
        matches!(err.kind(), NetErrorKind::AuthFailed(who) if who.contains("id 2")),
        "{err}"
    );
}

/// Sends a peer hello claiming `claimed`, reads the challenge, and answers with the
/// proof `prove` computes from the node's nonce; returns the verdict.
fn manual(
    addr: &str,
    claimed: NodeId,
    prove: impl FnOnce(&auth::Nonce) -> HelloProof,
) -> HelloReply {
    let mut stream = connect(addr);
    let hello = Hello {
        version: PROTOCOL_VERSION,
        cluster: "raftkv".to_string(),
        from: HelloFrom::Peer {
            id: claimed,
            incarnation: 1,
            addr: String::new(),
        },
    };
    write_frame(&mut stream, &hello).expect("hello");
    let HelloReply::Challenge { nonce, .. } =
        read_frame(&mut stream, MAX_HELLO_BYTES).expect("reply")
    else {
        panic!("no challenge");
    };
    write_frame(&mut stream, &prove(&nonce)).expect("proof");
    read_frame(&mut stream, MAX_HELLO_BYTES).expect("verdict")
}

fn proof(acceptor_nonce: &auth::Nonce, peer: NodeId, key: &[u8]) -> HelloProof {
    let nonce = [5u8; 32];
    let transcript = Transcript {
        version: PROTOCOL_VERSION,
        cluster: "raftkv",
        peer: Some(PeerClaim {
            id: peer,
            incarnation: 1,
            addr: "",
        }),
        node_id: 1,
        acceptor_nonce,
        connector_nonce: &nonce,
    };
    HelloProof {
        nonce,
        mac: transcript.prove(key, Side::Connector),
    }
}

#[test]
fn a_replayed_proof_and_a_proof_for_another_id_are_refused() {
    let key = vec![1u8; 32];
    let refused = HelloReply::Refused {
        reason: AUTH_REFUSAL.to_string(),
    };
    // A genuine proof is accepted, and recorded.
    let (addr, handle) = server(secret(1));
    let mut recorded = None;
    let verdict = manual(&addr, 2, |nonce| {
        let p = proof(nonce, 2, &key);
        recorded = Some(p.clone());
        p
    });
    assert!(matches!(verdict, HelloReply::Proven { .. }), "{verdict:?}");
    handle.join().expect("server").expect("accepted");
    // Replayed on a new connection: the node's nonce differs, so it fails.
    let (addr, handle) = server(secret(1));
    let verdict = manual(&addr, 2, |_| recorded.take().expect("recorded"));
    assert_eq!(verdict, refused);
    handle.join().expect("server").expect_err("replay refused");
    // A fresh proof made for id 2, in a hello claiming id 3.
    let (addr, handle) = server(secret(1));
    let verdict = manual(&addr, 3, |nonce| proof(nonce, 2, &key));
    assert_eq!(verdict, refused);
    handle
        .join()
        .expect("server")
        .expect_err("wrong id refused");
}

#[test]
fn a_node_that_cannot_prove_the_secret_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let fake = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let _: Hello = read_frame(&mut stream, MAX_HELLO_BYTES).expect("hello");
        let challenge = HelloReply::Challenge {
            node_id: 1,
            nonce: [3; 32],
        };
        write_frame(&mut stream, &challenge).expect("challenge");
        let _: HelloProof = read_frame(&mut stream, MAX_HELLO_BYTES).expect("proof");
        // Accepts anything, but does not know the secret.
        write_frame(&mut stream, &HelloReply::Proven { mac: [0; 32] }).expect("proven");
    });
    let result = client_handshake(
        &mut connect(&addr),
        "raftkv",
        HelloFrom::Client,
        Some(&secret(1)),
    );
    let err = result.expect_err("an impostor node");
    assert!(err.to_string().contains("failed to prove"), "{err}");
    fake.join().expect("fake node");
}
