//! The data directory's small files: round trips, atomic replacement, the lock, the
//! identity check, and unusable directories.

mod storage_support;

use std::fs;

use raftkv::raft::{HardState, LogPosition};
use raftkv::storage::{write_atomic, Meta, SnapshotFile, Storage, StorageErrorKind};
use storage_support::*;

const BIG: u64 = 64 << 20;

#[test]
fn an_empty_directory_opens_with_nothing_recovered() {
    let (_tmp, dir) = data_dir();
    let (storage, rec) = open_ok(&dir, BIG);
    assert_eq!(rec.hard_state, HardState::default());
    assert_eq!(rec.snapshot, None);
    assert_eq!(rec.log_base, LogPosition::default());
    assert!(rec.entries.is_empty());
    assert!(rec.warnings.is_empty(), "{:?}", rec.warnings);
    assert_eq!(storage.last_index(), 0);
    assert_eq!(storage.snapshot_bytes(), 0);
    assert_eq!(storage.dir(), dir.as_path());
    for name in ["LOCK", "meta", "wal"] {
        assert!(dir.join(name).exists(), "{name} created");
    }
    // An existing but empty directory (as a script's mkdir -p leaves it) works too.
    let (_tmp2, dir2) = data_dir();
    fs::create_dir_all(&dir2).expect("mkdir");
    open_ok(&dir2, BIG);
}

#[test]
fn hard_state_snapshot_and_entries_round_trip() {
    let (_tmp, dir) = data_dir();
    let hs = HardState {
        current_term: 7,
        voted_for: Some(3),
    };
    let snap = SnapshotFile {
        membership: None,
        last: LogPosition { index: 4, term: 2 },
        data: (0..=255).collect(),
    };
    let bytes = {
        let (mut storage, _) = open_ok(&dir, BIG);
        storage.save_hard_state(&hs).expect("hard state");
        storage.append(&entries(1, 6, 2)).expect("append");
        storage.save_snapshot(&snap).expect("snapshot");
        storage.append(&entries(7, 9, 7)).expect("append");
        storage.snapshot_bytes()
    };
    assert!(bytes > 256, "snapshot file holds the data: {bytes}");
    let (storage, rec) = open_ok(&dir, BIG);
    assert_eq!(rec.hard_state, hs);
    assert_eq!(rec.snapshot, Some(snap.clone()));
    assert_eq!(rec.log_base, snap.last);
    let mut expected = entries(5, 6, 2);
    expected.extend(entries(7, 9, 7));
    assert_eq!(rec.entries, expected);
    assert_eq!(storage.snapshot_bytes(), bytes);
    assert_eq!(storage.last_index(), 9);
}

#[test]
fn a_crash_before_the_rename_leaves_the_old_file() {
    let (_tmp, dir) = data_dir();
    let hs = HardState {
        current_term: 3,
        voted_for: Some(1),
    };
    let snap = SnapshotFile {
        membership: None,
        last: LogPosition { index: 0, term: 0 },
        data: b"old".to_vec(),
    };
    {
        let (mut storage, _) = open_ok(&dir, BIG);
        storage.save_hard_state(&hs).expect("hard state");
        storage.save_snapshot(&snap).expect("snapshot");
    }
    // The new versions reached NAME.tmp (whole or in part), then the process died.
    fs::write(dir.join("hard_state.tmp"), b"half a new hard st").expect("tmp");
    fs::write(dir.join("snapshot.tmp"), b"").expect("tmp");
    let (_, rec) = open_ok(&dir, BIG);
    assert_eq!(rec.hard_state, hs);
    assert_eq!(rec.snapshot, Some(snap));
    assert_eq!(rec.warnings.len(), 2, "{:?}", rec.warnings);
    assert!(!dir.join("hard_state.tmp").exists());
    assert!(!dir.join("snapshot.tmp").exists());
}

#[test]
fn write_atomic_replaces_the_whole_file() {
    let tmp = tempfile::tempdir().expect("temp dir");
    write_atomic(tmp.path(), "f", b"first version, long").expect("write");
    write_atomic(tmp.path(), "f", b"second").expect("rewrite");
    assert_eq!(fs::read(tmp.path().join("f")).expect("read"), b"second");
    assert!(!tmp.path().join("f.tmp").exists());
}

#[test]
fn damaged_state_files_are_refused() {
    for name in ["meta", "hard_state", "snapshot"] {
        let (_tmp, dir) = data_dir();
        {
            let (mut storage, _) = open_ok(&dir, BIG);
            let hs = HardState {
                current_term: 1,
                voted_for: None,
            };
            storage.save_hard_state(&hs).expect("hard state");
            let snap = SnapshotFile {
                membership: None,
                last: LogPosition::default(),
                data: vec![1, 2, 3],
            };
            storage.save_snapshot(&snap).expect("snapshot");
        }
        let path = dir.join(name);
        let mut bytes = fs::read(&path).expect("read");
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        fs::write(&path, &bytes).expect("damage");
        let err = open(&dir, BIG).expect_err(name);
        assert!(
            matches!(err.kind(), StorageErrorKind::Corrupt { .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{name}: {err}"
        );
        // A file of another kind under this name is refused by its magic.
        fs::write(&path, b"RKVXsomething else entirely").expect("foreign");
        let err = open(&dir, BIG).expect_err(name);
        assert_eq!(
            err.kind(),
            &StorageErrorKind::Corrupt { offset: 0 },
            "{name}: {err}"
        );
    }
}

#[test]
fn a_second_open_of_a_locked_directory_is_refused() {
    let (_tmp, dir) = data_dir();
    let (first, _) = open_ok(&dir, BIG);
    let err = open(&dir, BIG).expect_err("locked");
    assert_eq!(err.kind(), &StorageErrorKind::Locked);
    let msg = err.to_string();
    assert!(msg.contains("is in use by another raftkv process"), "{msg}");
    assert!(msg.contains(&dir.display().to_string()), "{msg}");
    drop(first);
    open_ok(&dir, BIG);
}

#[test]
fn a_different_identity_is_refused_and_says_what_differs() {
    let (_tmp, dir) = data_dir();
    drop(open_ok(&dir, BIG));
    let cases: [(Meta, &str); 3] = [
        (
            Meta {
                node_id: 2,
                ..meta()
            },
            "it belongs to node 1, not node 2",
        ),
        (
            Meta {
                cluster: "other".into(),
                ..meta()
            },
            "cluster \"raftkv\", not \"other\"",
        ),
        (
            Meta {
                peers: vec!["a:1".into()],
                ..meta()
            },
            "peers 127.0.0.1:8001,",
        ),
    ];
    for (other, expected) in cases {
        let err = Storage::open(&dir, &other).expect_err(expected);
        assert_eq!(err.kind(), &StorageErrorKind::MetaMismatch, "{err}");
        assert!(err.to_string().contains(expected), "{err}");
    }
    open_ok(&dir, BIG);
}

#[test]
fn a_directory_without_permission_is_an_io_error() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("temp dir");
    let locked = tmp.path().join("no-access");
    fs::create_dir(&locked).expect("mkdir");
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
    // Root (and CAP_DAC_OVERRIDE) ignores permissions: detect it by trying.
    let privileged = fs::create_dir(locked.join("probe")).is_ok();
    let result = open(&locked.join("data"), BIG);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod back");
    if privileged {
        eprintln!("skipped: permissions do not bind for this user");
        return;
    }
    let err = result.expect_err("no permission");
    assert_eq!(err.kind(), &StorageErrorKind::Io, "{err}");
    assert!(err.to_string().contains("no-access"), "{err}");
    let source = std::error::Error::source(&err).expect("an io error underneath");
    assert!(
        source.to_string().to_lowercase().contains("permission"),
        "{source}"
    );
}

#[test]
fn storage_can_move_to_the_log_writer_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Storage>();
    assert_send::<raftkv::storage::StorageError>();
    let (_tmp, dir) = data_dir();
    let (storage, _) = open_ok(&dir, BIG);
    let last = std::thread::spawn(move || storage.last_index())
        .join()
        .expect("thread");
    assert_eq!(last, 0);
}
