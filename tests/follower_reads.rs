//! Any member serves linearizable reads: a `get` sent to a follower is answered by
//! that follower (it asks the leader for a read index, waits to apply it, and reads
//! its own state), not redirected, and it sees every write acknowledged before it.
//!
//! These tests speak the wire protocol over raw sockets, so that a redirect shows
//! as one instead of being followed by the client library.

mod support;

use std::net::TcpStream;
use std::time::Duration;

use raftkv::kv::{Command, Request};
use raftkv::net::{self, ClientRequest, ClientResponse, Hello, HelloFrom, HelloReply};
use support::Cluster;

/// A raw client connection: the hello is done, frames go back and forth by hand.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    /// Connects and says hello as a client.
    fn open(addr: &str) -> Raw {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let hello = Hello {
            version: net::PROTOCOL_VERSION,
            cluster: "raftkv".into(),
            from: HelloFrom::Client,
        };
        net::write_frame(&mut stream, &hello).expect("hello");
        match net::read_frame(&mut stream, net::MAX_HELLO_BYTES) {
            Ok(HelloReply::Welcome { .. }) => Raw { stream },
            other => panic!("no welcome: {other:?}"),
        }
    }

    /// Sends one request and reads its answer.
    fn call(&mut self, request: &ClientRequest) -> ClientResponse {
        net::write_frame(&mut self.stream, request).expect("send");
        net::read_frame(&mut self.stream, net::MAX_FRAME_BYTES).expect("answer")
    }
}

fn put(seq: u64, key: &str, value: &str) -> ClientRequest {
    ClientRequest::Write(Request {
        client_id: 77,
        seq,
        command: Command::Put {
            key: key.into(),
            value: value.into(),
        },
    })
}

fn get(key: &str) -> ClientRequest {
    ClientRequest::Get {
        key: key.into(),
        stale: false,
    }
}

#[test]
fn a_get_on_a_follower_is_served_there_and_sees_every_acknowledged_write() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let mut writer = Raw::open(&cluster.addrs[leader]);
    let mut followers: Vec<Raw> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| Raw::open(&cluster.addrs[i]))
        .collect();
    for seq in 1..=20 {
        let value = format!("v{seq}");
        match writer.call(&put(seq, "k", &value)) {
            ClientResponse::Written(_) => {}
            other => panic!("put {seq} answered {other:?}"),
        }
        // The write is acknowledged: a read issued now on any member must see it.
        for f in &mut followers {
            assert_eq!(
                f.call(&get("k")),
                ClientResponse::Value(Some(value.clone())),
                "a follower's linearizable get after put {seq}"
            );
        }
    }
}
