//! Helpers shared by the storage tests: temp dirs, entries, raw segment access.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use raftkv::raft::{Entry, Payload};
use raftkv::storage::{Meta, Recovered, Storage, StorageError, StorageOptions};

/// The identity most tests use.
pub fn meta() -> Meta {
    Meta {
        node_id: 1,
        cluster: "raftkv".to_string(),
        peers: vec![
            "127.0.0.1:8001".into(),
            "127.0.0.1:8002".into(),
            "127.0.0.1:8003".into(),
        ],
        incarnation: 1,
        join: false,
    }
}

/// Entry `index` of `term` with a payload that names it.
pub fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command(format!("value-{index}-{term}").into_bytes()),
    }
}

/// Entries `from..=to`, all of `term`.
pub fn entries(from: u64, to: u64, term: u64) -> Vec<Entry> {
    (from..=to).map(|i| entry(i, term)).collect()
}

/// A fresh data directory (not yet created) inside a temp dir.
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("data");
    (tmp, dir)
}

/// Opens with the default identity and `segment_max_bytes`.
pub fn open(dir: &Path, segment_max_bytes: u64) -> Result<(Storage, Recovered), StorageError> {
    Storage::open_with(dir, &meta(), &StorageOptions { segment_max_bytes })
}

/// Opens and expects success.
pub fn open_ok(dir: &Path, segment_max_bytes: u64) -> (Storage, Recovered) {
    match open(dir, segment_max_bytes) {
        Ok(opened) => opened,
        Err(e) => panic!("open {} failed: {e}", dir.display()),
    }
}

/// The WAL segment files, sorted by name (= by first index).
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir.join("wal"))
        .expect("list wal")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "wal"))
        .collect();
    out.sort();
    out
}

/// The first index a segment file is named for.
pub fn segment_first_index(path: &Path) -> u64 {
    let stem = path
        .file_stem()
        .expect("stem")
        .to_string_lossy()
        .into_owned();
    stem.parse().expect("segment name is an index")
}

/// Length of a file.
pub fn file_len(path: &Path) -> u64 {
    fs::metadata(path).expect("metadata").len()
}
