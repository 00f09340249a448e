//! Recovery of the WAL after crashes and damage: torn tails are cut, corruption in
//! the middle is refused with the file and offset.

mod storage_support;

use std::fs;
use std::path::Path;

use raftkv::raft::LogPosition;
use raftkv::storage::{SnapshotFile, StorageErrorKind};
use storage_support::*;

const BIG: u64 = 64 << 20;

/// Writes 1..=5 as one entry per batch; returns the segment and the offsets at which
/// each record starts (and the final length).
fn five_records(dir: &Path) -> (std::path::PathBuf, Vec<u64>) {
    let (mut storage, _) = open_ok(dir, BIG);
    let seg = segments(dir).remove(0);
    let mut offsets = vec![file_len(&seg)];
    for i in 1..=5 {
        storage.append(&[entry(i, 1)]).expect("append");
        offsets.push(file_len(&seg));
    }
    (seg, offsets)
}

#[test]
fn torn_tail_at_every_offset_recovers_the_previous_record() {
    let (_tmp, dir) = data_dir();
    let (seg, offsets) = five_records(&dir);
    let full = fs::read(&seg).expect("read segment");
    let (start, end) = (offsets[4], offsets[5]);
    for cut in start..end {
        fs::write(&seg, &full[..cut as usize]).expect("cut segment");
        let (storage, rec) = open_ok(&dir, BIG);
        assert_eq!(rec.entries, entries(1, 4, 1), "cut at {cut}");
        assert_eq!(storage.last_index(), 4, "cut at {cut}");
        if cut == start {
            assert!(
                rec.warnings.is_empty(),
                "cut at a record boundary: {:?}",
                rec.warnings
            );
        } else {
            assert_eq!(rec.warnings.len(), 1, "cut at {cut}: {:?}", rec.warnings);
            let warning = &rec.warnings[0];
            assert!(warning.contains("truncated torn record"), "{warning}");
            assert!(warning.contains(&format!("offset {start}")), "{warning}");
        }
        assert_eq!(
            file_len(&seg),
            start,
            "torn tail cut at {cut} is truncated on disk"
        );
    }
    // After the repair the log continues normally.
    let (mut storage, _) = open_ok(&dir, BIG);
    storage
        .append(&entries(5, 6, 2))
        .expect("append after repair");
    drop(storage);
    let (_, rec) = open_ok(&dir, BIG);
    let mut expected = entries(1, 4, 1);
    expected.extend(entries(5, 6, 2));
    assert_eq!(rec.entries, expected);
}

#[test]
fn flipped_byte_in_a_middle_record_is_refused() {
    let (_tmp, dir) = data_dir();
    let (seg, offsets) = five_records(&dir);
    let full = fs::read(&seg).expect("read segment");
    // One byte of the body, one of the length, one of the CRC of record 3.
    for (what, at) in [
        ("body", offsets[2] + 10),
        ("length", offsets[2]),
        ("crc", offsets[2] + 5),
    ] {
        let mut bad = full.clone();
        bad[at as usize] ^= 0x40;
        fs::write(&seg, &bad).expect("write damaged segment");
        let err = open(&dir, BIG).expect_err(what);
        assert_eq!(
            err.kind(),
            &StorageErrorKind::Corrupt { offset: offsets[2] },
            "{what}: {err}"
        );
        let msg = err.to_string();
        assert!(msg.contains(&seg.display().to_string()), "{what}: {msg}");
        assert!(
            msg.contains(&format!("offset {}", offsets[2])),
            "{what}: {msg}"
        );
        assert_eq!(
            fs::read(&seg).expect("reread"),
            bad,
            "{what}: a refused file is not modified"
        );
    }
}

#[test]
fn bad_crc_on_the_final_record_is_a_torn_tail() {
    let (_tmp, dir) = data_dir();
    let (seg, offsets) = five_records(&dir);
    let mut bad = fs::read(&seg).expect("read segment");
    let last_body = offsets[4] + 9;
    bad[last_body as usize] ^= 0x01;
    fs::write(&seg, &bad).expect("write damaged segment");
    let (_, rec) = open_ok(&dir, BIG);
    assert_eq!(rec.entries, entries(1, 4, 1));
    assert_eq!(rec.warnings.len(), 1, "{:?}", rec.warnings);
}

#[test]
fn zeroed_tail_is_a_torn_tail() {
    let (_tmp, dir) = data_dir();
    let (seg, offsets) = five_records(&dir);
    let mut bytes = fs::read(&seg).expect("read segment");
    bytes.truncate(offsets[3] as usize);
    bytes.resize(offsets[5] as usize + 4096, 0);
    fs::write(&seg, &bytes).expect("write zeroed tail");
    let (_, rec) = open_ok(&dir, BIG);
    assert_eq!(rec.entries, entries(1, 3, 1));
    assert_eq!(file_len(&seg), offsets[3]);
}

#[test]
fn torn_looking_damage_in_an_earlier_segment_is_refused() {
    let (_tmp, dir) = data_dir();
    {
        let (mut storage, _) = open_ok(&dir, 1);
        for i in 1..=3 {
            storage.append(&[entry(i, 1)]).expect("append");
        }
    }
    let segs = segments(&dir);
    assert_eq!(
        segs.len(),
        3,
        "one entry per segment with a 1-byte threshold"
    );
    let len = file_len(&segs[0]);
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&segs[0])
        .expect("open");
    file.set_len(len - 3).expect("cut the first segment");
    let err = open(&dir, 1).expect_err("a cut in a non-final segment is corruption");
    assert!(
        matches!(err.kind(), StorageErrorKind::Corrupt { .. }),
        "{err}"
    );
}

#[test]
fn entries_at_or_below_the_snapshot_are_skipped() {
    let (_tmp, dir) = data_dir();
    {
        let (mut storage, _) = open_ok(&dir, BIG);
        storage.append(&entries(1, 10, 1)).expect("append");
        let snap = SnapshotFile {
            membership: None,
            last: LogPosition { index: 6, term: 1 },
            data: b"s".to_vec(),
        };
        storage.save_snapshot(&snap).expect("snapshot");
    }
    let (storage, rec) = open_ok(&dir, BIG);
    assert_eq!(rec.log_base, LogPosition { index: 6, term: 1 });
    assert_eq!(rec.entries, entries(7, 10, 1));
    assert_eq!(storage.last_index(), 10);
}

#[test]
fn a_snapshot_saved_before_a_crash_supersedes_a_shorter_log() {
    // Simulates a crash between writing the snapshot and resetting the WAL: the
    // snapshot file of another directory is copied next to an older log.
    let (_tmp, dir) = data_dir();
    let (_tmp2, other) = data_dir();
    {
        let (mut storage, _) = open_ok(&dir, BIG);
        storage.append(&entries(1, 5, 1)).expect("append");
        let (mut donor, _) = open_ok(&other, BIG);
        let snap = SnapshotFile {
            membership: None,
            last: LogPosition { index: 9, term: 3 },
            data: b"kv".to_vec(),
        };
        donor.save_snapshot(&snap).expect("snapshot");
    }
    fs::copy(other.join("snapshot"), dir.join("snapshot")).expect("copy snapshot");
    let (mut storage, rec) = open_ok(&dir, BIG);
    assert_eq!(rec.log_base, LogPosition { index: 9, term: 3 });
    assert!(rec.entries.is_empty());
    assert!(
        rec.warnings.iter().any(|w| w.contains("discarded wal")),
        "{:?}",
        rec.warnings
    );
    assert_eq!(storage.last_index(), 9);
    storage
        .append(&entries(10, 11, 3))
        .expect("append after the snapshot");
}

#[test]
fn a_wal_that_starts_after_the_snapshot_is_refused() {
    let (_tmp, dir) = data_dir();
    {
        let (mut storage, _) = open_ok(&dir, 1);
        for i in 1..=6 {
            storage.append(&[entry(i, 1)]).expect("append");
        }
        let snap = SnapshotFile {
            membership: None,
            last: LogPosition { index: 4, term: 1 },
            data: vec![],
        };
        storage.save_snapshot(&snap).expect("snapshot");
        storage.compact(4).expect("compact");
    }
    fs::remove_file(dir.join("snapshot")).expect("lose the snapshot");
    let err = open(&dir, 1).expect_err("entries 1..4 are missing");
    assert_eq!(
        err.kind(),
        &StorageErrorKind::Corrupt { offset: 0 },
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("wal starts at index 5 but there is no snapshot"),
        "{err}"
    );
}
