//! A node refuses a data directory whose snapshot file and state machine disagree on
//! the position they cover: such a directory is corrupt, and starting from it would
//! apply entries on top of the wrong state.

use std::path::Path;

use raftkv::kv::KvStore;
use raftkv::node::{Node, NodeConfig, NodeError};
use raftkv::raft::{Entry, HardState, LogPosition, Payload};
use raftkv::storage::{Meta, SnapshotFile, Storage};

fn config(dir: &Path) -> NodeConfig {
    let mut config = NodeConfig::new(
        1,
        "127.0.0.1:0".to_string(),
        vec!["127.0.0.1:0".to_string()],
        dir.to_path_buf(),
    );
    config.log_level = raftkv::logging::Level::Error;
    config
}

/// Saves a snapshot file at `file_at` holding a state machine applied through
/// `applied` (no-ops only).
fn write_snapshot(dir: &Path, file_at: u64, applied: u64) {
    let cfg = config(dir);
    let meta = Meta {
        node_id: cfg.id,
        cluster: cfg.cluster.clone(),
        peers: cfg.peers.clone(),
        incarnation: 1,
        join: false,
    };
    let (mut storage, _) = Storage::open(dir, &meta).expect("open storage");
    let hard_state = HardState {
        current_term: 1,
        voted_for: None,
    };
    storage.save_hard_state(&hard_state).expect("hard state");
    let entries: Vec<Entry> = (1..=file_at)
        .map(|index| Entry {
            term: 1,
            index,
            payload: Payload::Noop,
        })
        .collect();
    storage.append(&entries).expect("append");
    let mut kv = KvStore::new();
    for index in 1..=applied {
        kv.apply_noop(index);
    }
    let snapshot = SnapshotFile {
        membership: None,
        last: LogPosition {
            index: file_at,
            term: 1,
        },
        data: kv.snapshot(),
    };
    storage.save_snapshot(&snapshot).expect("save snapshot");
}

#[test]
fn a_snapshot_whose_state_machine_is_at_another_index_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_snapshot(tmp.path(), 5, 3);
    match Node::start(config(tmp.path())) {
        Ok(_) => panic!("a node started from a snapshot file at 5 holding state applied to 3"),
        Err(err @ NodeError::Snapshot(_)) => {
            let text = err.to_string();
            assert!(text.contains("corrupt"), "{text}");
            assert!(text.contains("index 5") && text.contains("3"), "{text}");
        }
        Err(other) => panic!("wrong error: {other}"),
    }
}

#[test]
fn a_consistent_snapshot_starts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_snapshot(tmp.path(), 5, 5);
    let node = Node::start(config(tmp.path())).expect("a consistent snapshot starts");
    drop(node);
}

#[test]
fn a_snapshot_whose_data_was_altered_under_a_recomputed_crc_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    write_snapshot(tmp.path(), 2, 1);
    // Rewrite it with a put whose value is then altered in the encoded bytes; saving
    // through storage recomputes the file's CRC, so only the state digest can tell.
    let mut kv = KvStore::new();
    kv.apply_noop(1);
    let put = raftkv::kv::encode_request(&raftkv::kv::Request {
        client_id: 1,
        seq: 1,
        command: raftkv::kv::Command::Put {
            key: "k".into(),
            value: "hello".into(),
        },
    });
    kv.apply(2, &put).expect("put applies");
    let mut data = kv.snapshot();
    let at = data
        .windows(5)
        .position(|w| w == b"hello")
        .expect("value in the snapshot");
    data[at] = b'j';
    let cfg = config(tmp.path());
    let meta = Meta {
        node_id: cfg.id,
        cluster: cfg.cluster.clone(),
        peers: cfg.peers.clone(),
        incarnation: 1,
        join: false,
    };
    let (mut storage, _) = Storage::open(tmp.path(), &meta).expect("open storage");
    let last = LogPosition { index: 2, term: 1 };
    storage
        .save_snapshot(&SnapshotFile {
            last,
            membership: None,
            data,
        })
        .expect("save snapshot");
    drop(storage);
    match Node::start(config(tmp.path())) {
        Ok(_) => panic!("a node started from a snapshot whose data was altered"),
        Err(err @ NodeError::Snapshot(_)) => {
            let text = err.to_string();
            assert!(text.contains("digest"), "{text}");
        }
        Err(other) => panic!("wrong error: {other}"),
    }
}
