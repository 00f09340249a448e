//! Writes the seed inputs of the fuzz corpus (`fuzz/corpus/TARGET/seed-*`): valid
//! encodings that the fuzzers mutate from. Run from the repository root:
//! `cargo run --release --example fuzz_seeds`.

use std::path::Path;

use bincode::Options;

use raftkv::kv::{encode_request, Command, KvStore, Request};
use raftkv::net::{self, ClientRequest, Hello, HelloFrom};
use raftkv::raft::{Entry, LogPosition, Message, MessageBody, Payload};
use raftkv::storage::{SnapshotFile, Storage};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create corpus dir");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
}

fn framed<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    net::encode_frame(&mut buf, msg).expect("encode frame");
    buf
}

fn append() -> Message {
    let put = Request {
        client_id: 7,
        seq: 1,
        command: Command::Put {
            key: "k".into(),
            value: "v".into(),
        },
    };
    Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::AppendEntries {
            prev_log_index: 4,
            prev_log_term: 2,
            entries: vec![Entry {
                term: 3,
                index: 5,
                payload: Payload::Command(encode_request(&put)),
            }],
            leader_commit: 4,
            read_round: 1,
            check: None,
        },
    }
}

fn main() {
    let mut frames = framed(&append());
    frames.extend(framed(&Message {
        from: 2,
        to: 1,
        term: 3,
        body: MessageBody::RequestVoteResponse { vote_granted: true },
    }));
    write("frames", "append-and-vote", &frames);
    write("messages", "append", &framed(&append())[4..]);
    let hello = Hello {
        version: net::PROTOCOL_VERSION,
        cluster: "raftkv".into(),
        from: HelloFrom::Client,
    };
    write("messages", "hello", &framed(&hello)[4..]);
    let get = ClientRequest::Get {
        key: "k".into(),
        stale: false,
    };
    write("messages", "get", &framed(&get)[4..]);

    let mut kv = KvStore::new();
    let put = Request {
        client_id: 1,
        seq: 1,
        command: Command::Put {
            key: "key".into(),
            value: "value".into(),
        },
    };
    kv.apply(1, &encode_request(&put)).expect("apply");
    let state = kv.snapshot();
    write("snapshot", "state", &state);

    // A real data directory's WAL segment and snapshot file.
    let dir = std::env::temp_dir().join(format!("raftkv-seeds-{}", std::process::id()));
    let meta = raftkv::fuzzing::fuzz_meta();
    {
        let (mut storage, _) = Storage::open(&dir, &meta).expect("open storage");
        let entries: Vec<Entry> = (1..=3)
            .map(|index| Entry {
                term: 1,
                index,
                payload: Payload::Command(encode_request(&put)),
            })
            .collect();
        storage.append(&entries).expect("append");
        let last = LogPosition { term: 1, index: 1 };
        storage
            .save_snapshot(&SnapshotFile {
                last,
                membership: None,
                data: state,
            })
            .expect("save snapshot");
    }
    let segment = std::fs::read(dir.join("wal").join(format!("{:020}.wal", 1))).expect("segment");
    write("wal", "three-entries", &segment);
    write("wal_records", "entries", &wal_records(&put));
    let file = std::fs::read(dir.join("snapshot")).expect("snapshot file");
    write("snapshot", "file", &file);
    std::fs::remove_dir_all(&dir).expect("remove temp dir");
}

/// The input of `raftkv::fuzzing::wal_records` for a no-op at index 1 and two commands:
/// each entry's encoding behind its length byte.
fn wal_records(put: &Request) -> Vec<u8> {
    let payloads = [
        Payload::Noop,
        Payload::Command(encode_request(put)),
        Payload::Command(Vec::new()),
    ];
    let mut out = Vec::new();
    for (index, payload) in (1..).zip(payloads) {
        let entry = Entry {
            term: 1,
            index,
            payload,
        };
        let body = bincode::DefaultOptions::new()
            .serialize(&entry)
            .expect("encode entry");
        out.push(u8::try_from(body.len()).expect("a short entry"));
        out.extend_from_slice(&body);
    }
    out
}
