//! The cost of the authenticated hello: microseconds per handshake over loopback TCP
//! (connect, hello, and with secrets the challenge, both proofs and the verdict), with
//! and without a secret, beside the CPU cost of one HMAC-SHA256 proof and of one nonce.
//!
//! ```text
//! cargo run --release --example handshake_bench [ROUNDS]
//! ```
//!
//! ROUNDS defaults to 2000 per case. Prints the median and p99 of each case. Not a
//! test: it asserts nothing.

use std::io::{BufReader, BufWriter};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Instant;

use raftkv::crypto::hmac_sha256;
use raftkv::net::{self, generate_secret, HelloFrom, NodeSecrets, Secret};

/// Runs `rounds` handshakes against a server thread demanding `secrets`; returns the
/// latency of each, in microseconds.
fn handshakes(rounds: usize, secrets: NodeSecrets, from: HelloFrom) -> Vec<f64> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server_secrets = secrets.clone();
    let server = thread::spawn(move || {
        for stream in listener.incoming().take(rounds) {
            let stream = stream.expect("accept");
            stream.set_nodelay(true).expect("nodelay");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut writer = BufWriter::new(stream);
            net::accept_hello_with(
                &mut reader,
                &mut writer,
                "raftkv",
                1,
                &server_secrets,
                |_| Ok(()),
            )
            .expect("the handshake is accepted");
        }
    });
    let secret = match from {
        HelloFrom::Peer { .. } => secrets.peer.clone(),
        HelloFrom::Client => secrets.client.clone(),
    };
    let mut micros = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        net::client_handshake(&mut stream, "raftkv", from.clone(), secret.as_ref())
            .expect("handshake");
        micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    server.join().expect("server");
    micros
}

fn report(name: &str, mut micros: Vec<f64>) {
    micros.sort_by(f64::total_cmp);
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q) as usize];
    println!(
        "{name:<40} median {:>8.1} us   p99 {:>8.1} us   ({} rounds)",
        at(0.5),
        at(0.99),
        micros.len()
    );
}

fn per_call_micros(rounds: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..rounds {
        f();
    }
    start.elapsed().as_secs_f64() * 1e6 / rounds as f64
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("ROUNDS must be a number"))
        .unwrap_or(2000);
    let key = Secret::parse(&generate_secret()).expect("a secret");
    let transcript = [0u8; 150];
    let mut sink = 0u8;
    let mac = per_call_micros(100_000, || sink ^= hmac_sha256(&[7u8; 32], &transcript)[0]);
    let nonce = per_call_micros(100_000, || sink ^= generate_secret().as_bytes()[0]);
    println!("one HMAC-SHA256 proof (150-byte transcript)  {mac:>8.2} us   (checksum {sink})");
    println!("one 32-byte secret from the OS (hex)         {nonce:>8.2} us");
    report(
        "client hello, no secret",
        handshakes(rounds, NodeSecrets::default(), HelloFrom::Client),
    );
    let with_client = NodeSecrets {
        peer: None,
        client: Some(key.clone()),
    };
    report(
        "client hello, with the client secret",
        handshakes(rounds, with_client, HelloFrom::Client),
    );
    let with_peer = NodeSecrets {
        peer: Some(key),
        client: None,
    };
    report(
        "peer hello, with the peer secret",
        handshakes(
            rounds,
            with_peer,
            HelloFrom::Peer {
                id: 2,
                incarnation: 1,
                addr: String::new(),
            },
        ),
    );
}
