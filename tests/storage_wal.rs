//! The WAL through the public API: segments, suffix truncation, snapshots and
//! compaction, limits.

mod storage_support;

use raftkv::raft::{Entry, LogPosition, Payload};
use raftkv::storage::{SnapshotFile, StorageErrorKind, MAX_RECORD_BYTES};
use storage_support::*;

const BIG: u64 = 64 << 20;

fn snapshot(index: u64, term: u64) -> SnapshotFile {
    SnapshotFile {
        membership: None,
        last: LogPosition { index, term },
        data: format!("state@{index}").into_bytes(),
    }
}

#[test]
fn reopen_after_suffix_truncation() {
    let (_tmp, dir) = data_dir();
    {
        let (mut storage, _) = open_ok(&dir, BIG);
        storage.append(&entries(1, 10, 1)).expect("append");
        storage.append(&entries(6, 8, 2)).expect("overwrite 6..10");
        assert_eq!(storage.last_index(), 8);
        storage.append(&entries(9, 9, 2)).expect("continue");
    }
    let (_, rec) = open_ok(&dir, BIG);
    let mut expected = entries(1, 5, 1);
    expected.extend(entries(6, 9, 2));
    assert_eq!(rec.entries, expected);
}

#[test]
fn truncation_across_segments_removes_the_later_ones() {
    let (_tmp, dir) = data_dir();
    let (mut storage, _) = open_ok(&dir, 1);
    for i in 1..=6 {
        storage.append(&[entry(i, 1)]).expect("append");
    }
    assert_eq!(segments(&dir).len(), 6);
    storage.append(&entries(3, 4, 2)).expect("overwrite from 3");
    let firsts: Vec<u64> = segments(&dir)
        .iter()
        .map(|p| segment_first_index(p))
        .collect();
    assert_eq!(firsts, vec![1, 2, 3], "segments 4..6 deleted, 3 rewritten");
    drop(storage);
    let (_, rec) = open_ok(&dir, 1);
    let mut expected = entries(1, 2, 1);
    expected.extend(entries(3, 4, 2));
    assert_eq!(rec.entries, expected);
}

#[test]
fn many_segments_recover_in_order() {
    let (_tmp, dir) = data_dir();
    let mut expected = Vec::new();
    {
        let (mut storage, _) = open_ok(&dir, 200);
        for batch in 0..50u64 {
            let term = 1 + batch / 10;
            let batch_entries = entries(batch * 4 + 1, batch * 4 + 4, term);
            storage.append(&batch_entries).expect("append");
            expected.extend(batch_entries);
        }
        assert!(
            storage.wal_segment_count() > 10,
            "{} segments",
            storage.wal_segment_count()
        );
        assert_eq!(storage.wal_segment_count(), segments(&dir).len());
    }
    let (storage, rec) = open_ok(&dir, 200);
    assert_eq!(rec.entries, expected);
    assert_eq!(storage.last_index(), 200);
}

#[test]
fn compaction_deletes_only_whole_segments_at_or_below_the_index() {
    let (_tmp, dir) = data_dir();
    let (mut storage, _) = open_ok(&dir, 1);
    // Segments start at 1, 4, 7, 10 (three entries each, one batch per segment).
    for first in [1, 4, 7, 10] {
        storage
            .append(&entries(first, first + 2, 1))
            .expect("append");
    }
    storage.save_snapshot(&snapshot(8, 1)).expect("snapshot");
    let firsts = |dir| {
        segments(dir)
            .iter()
            .map(|p| segment_first_index(p))
            .collect::<Vec<_>>()
    };
    storage.compact(2).expect("compact");
    assert_eq!(
        firsts(&dir),
        vec![1, 4, 7, 10],
        "segment 1..3 is not wholly <= 2"
    );
    storage.compact(5).expect("compact");
    assert_eq!(
        firsts(&dir),
        vec![4, 7, 10],
        "segment 4..6 is not wholly <= 5"
    );
    storage.compact(6).expect("compact");
    assert_eq!(firsts(&dir), vec![7, 10]);
    storage.compact(8).expect("compact");
    assert_eq!(firsts(&dir), vec![7, 10], "segment 7..9 holds 9 > 8");
    drop(storage);
    let (mut storage, rec) = open_ok(&dir, 1);
    assert_eq!(rec.log_base, LogPosition { index: 8, term: 1 });
    assert_eq!(rec.entries, entries(9, 12, 1));
    // The active segment survives even when the snapshot covers all of it; a fresh
    // segment starts after it, so the next compaction can delete it.
    storage.save_snapshot(&snapshot(12, 1)).expect("snapshot");
    storage.compact(12).expect("compact");
    assert_eq!(firsts(&dir), vec![10, 13]);
    storage.append(&entries(13, 13, 2)).expect("append");
    drop(storage);
    let (_, rec) = open_ok(&dir, 1);
    assert_eq!(rec.entries, entries(13, 13, 2));
}

#[test]
fn a_snapshot_past_the_log_replaces_it() {
    let (_tmp, dir) = data_dir();
    let (mut storage, _) = open_ok(&dir, BIG);
    storage.append(&entries(1, 5, 1)).expect("append");
    storage.save_snapshot(&snapshot(20, 4)).expect("snapshot");
    assert_eq!(storage.last_index(), 20);
    storage
        .append(&entries(21, 22, 4))
        .expect("append after snapshot");
    drop(storage);
    let (_, rec) = open_ok(&dir, BIG);
    assert_eq!(rec.log_base, LogPosition { index: 20, term: 4 });
    assert_eq!(rec.entries, entries(21, 22, 4));
}

#[test]
fn a_snapshot_that_disagrees_with_the_log_replaces_it() {
    let (_tmp, dir) = data_dir();
    let (mut storage, _) = open_ok(&dir, BIG);
    storage.append(&entries(1, 10, 1)).expect("append");
    // The leader's snapshot says entry 5 has term 2: our 5..10 are not in its log.
    storage.save_snapshot(&snapshot(5, 2)).expect("snapshot");
    assert_eq!(storage.last_index(), 5);
    drop(storage);
    let (_, rec) = open_ok(&dir, BIG);
    assert!(rec.entries.is_empty(), "{:?}", rec.entries);
}

#[test]
fn an_oversized_entry_is_refused_before_touching_the_disk() {
    let (_tmp, dir) = data_dir();
    let (mut storage, _) = open_ok(&dir, BIG);
    storage.append(&entries(1, 1, 1)).expect("append");
    let huge = Entry {
        term: 1,
        index: 2,
        payload: Payload::Command(vec![7; MAX_RECORD_BYTES as usize]),
    };
    let err = storage.append(&[huge]).expect_err("too large");
    assert_eq!(err.kind(), &StorageErrorKind::TooLarge, "{err}");
    assert!(err.to_string().contains("entry 2"), "{err}");
    // Nothing was written, so the storage stays usable.
    storage
        .append(&entries(2, 2, 1))
        .expect("append after a refused entry");
    drop(storage);
    let (_, rec) = open_ok(&dir, BIG);
    assert_eq!(rec.entries, entries(1, 2, 1));
}

#[test]
#[should_panic(expected = "leaves a gap")]
fn an_append_that_leaves_a_gap_is_a_caller_bug() {
    let (_tmp, dir) = data_dir();
    let (mut storage, _) = open_ok(&dir, BIG);
    let _ = storage.append(&entries(2, 3, 1));
}

#[test]
fn installing_a_received_snapshot_inside_the_log_compacts_the_wal() {
    // The leader's snapshot file at (8, 1), as the follower receives it.
    let (_leader_tmp, leader_dir) = data_dir();
    let (mut leader, _) = open_ok(&leader_dir, BIG);
    leader.append(&entries(1, 8, 1)).expect("append");
    leader.save_snapshot(&snapshot(8, 1)).expect("snapshot");
    let file = std::fs::read(leader_dir.join("snapshot")).expect("read snapshot file");
    // A follower that holds 1..=12 in segments starting at 1, 4, 7, 10.
    let (_tmp, dir) = data_dir();
    let (mut storage, _) = open_ok(&dir, 1);
    for first in [1, 4, 7, 10] {
        storage
            .append(&entries(first, first + 2, 1))
            .expect("append");
    }
    storage.write_snapshot_chunk(0, &file).expect("chunk");
    let last = LogPosition { index: 8, term: 1 };
    let installed = storage
        .install_received(last, |s| Ok(s.last))
        .expect("install");
    assert_eq!(installed, Ok(last));
    let firsts: Vec<u64> = segments(&dir)
        .iter()
        .map(|p| segment_first_index(p))
        .collect();
    assert_eq!(
        firsts,
        vec![7, 10],
        "segments wholly at or below the installed snapshot were kept"
    );
    drop(storage);
    let (_, rec) = open_ok(&dir, 1);
    assert_eq!(rec.log_base, last);
    assert_eq!(rec.entries, entries(9, 12, 1));
}
