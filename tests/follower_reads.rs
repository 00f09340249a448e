//! Any member serves linearizable reads: a `get` sent to a follower is answered by
//! that follower (it asks the leader for a read index, waits to apply it, and reads
//! its own state), not redirected, and it sees every write acknowledged before it.
//!
//! These tests speak the wire protocol over raw sockets, so that a redirect shows
//! as one instead of being followed by the client library.

mod support;

use raftkv::kv::{Command, Request};
use raftkv::net::{ClientRequest, ClientResponse};
use support::raw::Raw;
use support::Cluster;

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
    let mut writer = Raw::open(&cluster.addrs[leader]).expect("hello");
    let mut followers: Vec<Raw> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| Raw::open(&cluster.addrs[i]).expect("hello"))
        .collect();
    for seq in 1..=20 {
        let value = format!("v{seq}");
        match writer.call(&put(seq, "k", &value)).expect("an answer") {
            ClientResponse::Written(_) => {}
            other => panic!("put {seq} answered {other:?}"),
        }
        // The write is acknowledged: a read issued now on any member must see it.
        for f in &mut followers {
            assert_eq!(
                f.call(&get("k")).expect("an answer"),
                ClientResponse::Value(Some(value.clone())),
                "a follower's linearizable get after put {seq}"
            );
        }
    }
}
