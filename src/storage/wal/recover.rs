//! Opening the WAL at startup: scan every segment, cut a torn tail, check that the
//! segments join up, and line the log up with the snapshot.

use std::fs;
use std::path::Path;

use super::scan::{scan_segment, Scanned};
use super::segment::{create_segment, list_segments, open_for_append};
use super::{record, Segment, Wal, WAL_DIR};
use crate::raft::{Entry, Index, LogPosition};
use crate::storage::error::StorageError;
use crate::storage::files::sync_dir;

impl Wal {
    /// Opens `data_dir/wal` (creating it if needed) and returns the entries after
    /// `base` (the snapshot's last position), consecutive from `base.index + 1`.
    ///
    /// If the stored log does not reach `base`, or disagrees with its term there, the
    /// snapshot superseded it (a crash came between saving a snapshot and resetting
    /// the log): the log is discarded with a warning, as §7 of the Raft paper says.
    pub fn recover(
        data_dir: &Path,
        base: LogPosition,
        segment_max_bytes: u64,
        warnings: &mut Vec<String>,
    ) -> Result<(Wal, Vec<Entry>), StorageError> {
        let dir = data_dir.join(WAL_DIR);
        if !dir.exists() {
            fs::create_dir(&dir).map_err(|e| StorageError::io("create", &dir, e))?;
            sync_dir(data_dir)?;
        }
        let (segments, mut entries) = scan_all(&dir, warnings)?;
        let first_index = segments.first().map_or(base.index + 1, |s| s.first_index);
        let next_index = segments.last().map_or(base.index + 1, |s| s.next_index());
        check_start(&segments, first_index, base)?;
        let mut wal = Wal::from_segments(dir, segment_max_bytes, segments, base)?;
        let superseded = next_index <= base.index
            || (base.index >= first_index && wal.term_at(base.index) != Some(base.term));
        if superseded {
            warnings.push(format!(
                "discarded wal entries {first_index}..{next_index}: snapshot at index {} term {} supersedes them",
                base.index, base.term
            ));
            wal.reset(base.index + 1)?;
            entries.clear();
        }
        entries.retain(|e| e.index > base.index);
        check_after_base(&wal, &entries, base)?;
        Ok((wal, entries))
    }

    /// The writer over scanned segments, or over a fresh one at `base.index + 1`.
    fn from_segments(
        dir: std::path::PathBuf,
        segment_max_bytes: u64,
        mut segments: Vec<Segment>,
        base: LogPosition,
    ) -> Result<Wal, StorageError> {
        if segments.is_empty() {
            let path = create_segment(&dir, base.index + 1)?;
            let len = record::SEGMENT_HEADER_BYTES;
            segments.push(Segment {
                first_index: base.index + 1,
                path,
                locs: Vec::new(),
                len,
            });
        }
        let active = open_for_append(&segments[segments.len() - 1].path)?;
        Ok(Wal {
            dir,
            segment_max_bytes,
            segments,
            active,
        })
    }
}

/// Refuses a log that starts after the snapshot: entries in between are missing.
fn check_start(
    segments: &[Segment],
    first_index: Index,
    base: LogPosition,
) -> Result<(), StorageError> {
    if first_index <= base.index + 1 {
        return Ok(());
    }
    let detail = match base.index {
        0 => format!("wal starts at index {first_index} but there is no snapshot"),
        b => format!("wal starts at index {first_index} but the snapshot ends at {b}"),
    };
    Err(StorageError::corrupt(&segments[0].path, 0, detail))
}

/// Scans every segment in order, checking that each starts where the previous ended.
fn scan_all(
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<(Vec<Segment>, Vec<Entry>), StorageError> {
    let listed = list_segments(dir, warnings)?;
    let mut segments: Vec<Segment> = Vec::with_capacity(listed.len());
    let mut entries = Vec::new();
    for (i, (first_index, path)) in listed.iter().enumerate() {
        if let Some(prev) = segments.last() {
            if prev.next_index() != *first_index {
                let detail = format!(
                    "segment starts at index {first_index}, the previous one ends before {}",
                    prev.next_index()
                );
                return Err(StorageError::corrupt(path, 0, detail));
            }
        }
        let bytes = fs::read(path).map_err(|e| StorageError::io("read", path, e))?;
        let prev_term = entries.last().map_or(0, |e: &Entry| e.term);
        let scanned = scan_segment(path, &bytes, *first_index, prev_term, i + 1 == listed.len())?;
        let Scanned {
            entries: found,
            locs,
            valid_len,
            torn,
        } = scanned;
        if let Some(reason) = torn {
            cut_torn_tail(path, valid_len, bytes.len() as u64)?;
            warnings.push(format!(
                "truncated torn record at {} offset {valid_len}: {reason}",
                path.display()
            ));
        }
        entries.extend(found);
        segments.push(Segment {
            first_index: *first_index,
            path: path.clone(),
            locs,
            len: valid_len,
        });
    }
    Ok((segments, entries))
}

/// Truncates a segment to its last good record, durably.
fn cut_torn_tail(path: &Path, valid_len: u64, file_len: u64) -> Result<(), StorageError> {
    assert!(
        valid_len < file_len,
        "torn tail at {valid_len} inside a {file_len} byte file"
    );
    let file = open_for_append(path)?;
    file.set_len(valid_len)
        .map_err(|e| StorageError::io("truncate", path, e))?;
    file.sync_all().map_err(|e| StorageError::sync(path, e))
}

/// Checks the recovered log joins the snapshot: consecutive, terms not below its term.
fn check_after_base(wal: &Wal, entries: &[Entry], base: LogPosition) -> Result<(), StorageError> {
    let expected_next = base.index + 1 + entries.len() as u64;
    assert_eq!(
        wal.next_index(),
        expected_next,
        "recovered entries and wal disagree"
    );
    let Some(first) = entries.first() else {
        return Ok(());
    };
    assert_eq!(
        first.index,
        base.index + 1,
        "recovered log must start after the snapshot"
    );
    if first.term < base.term {
        let seg = wal
            .segments
            .iter()
            .rev()
            .find(|s| s.first_index <= first.index);
        let seg = seg.expect("the first entry is stored");
        let offset = seg.locs[(first.index - seg.first_index) as usize].offset;
        let detail = format!(
            "entry {} has term {} below the snapshot's term {}",
            first.index, first.term, base.term
        );
        return Err(StorageError::corrupt(&seg.path, offset, detail));
    }
    Ok(())
}
