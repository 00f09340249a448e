//! Segment files on disk: their names, listing them, creating one.
//!
//! A segment is named for the index of its first record, zero-padded so that names
//! sort like indexes: `00000000000000000001.wal`. Segments are created whole (header
//! written to a `.tmp`, fsynced, renamed, directory fsynced), so a segment file always
//! has a complete header.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::record::encode_segment_header;
use crate::raft::Index;
use crate::storage::error::StorageError;
use crate::storage::files::{write_atomic, TMP_SUFFIX};

const SEGMENT_SUFFIX: &str = ".wal";

/// The file name of the segment starting at `first_index`.
pub fn segment_name(first_index: Index) -> String {
    format!("{first_index:020}{SEGMENT_SUFFIX}")
}

/// The first index a segment file name stands for, if it is one.
fn parse_segment_name(name: &str) -> Option<Index> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `wal_dir`, sorted by first index. Removes `*.tmp` leftovers of an
/// interrupted segment creation and reports them, and any foreign file, in `warnings`.
pub fn list_segments(
    wal_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<(Index, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let listing = fs::read_dir(wal_dir).map_err(|e| StorageError::io("list", wal_dir, e))?;
    for item in listing {
        let item = item.map_err(|e| StorageError::io("list", wal_dir, e))?;
        let path = item.path();
        let name = item.file_name().to_string_lossy().into_owned();
        if let Some(first_index) = parse_segment_name(&name) {
            out.push((first_index, path));
        } else if name.ends_with(TMP_SUFFIX) {
            fs::remove_file(&path).map_err(|e| StorageError::io("remove", &path, e))?;
            warnings.push(format!("removed unfinished segment {}", path.display()));
        } else {
            warnings.push(format!("ignored unknown file {}", path.display()));
        }
    }
    out.sort();
    Ok(out)
}

/// Durably creates an empty segment starting at `first_index`; returns its path.
pub fn create_segment(wal_dir: &Path, first_index: Index) -> Result<PathBuf, StorageError> {
    let name = segment_name(first_index);
    write_atomic(wal_dir, &name, &encode_segment_header(first_index))?;
    Ok(wal_dir.join(name))
}

/// Opens an existing segment for appending at its end.
pub fn open_for_append(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| StorageError::io("open", path, e))
}

/// Removes segment files and makes the removal durable.
pub fn remove_segments<'a>(
    wal_dir: &Path,
    paths: impl Iterator<Item = &'a PathBuf>,
) -> Result<(), StorageError> {
    let mut removed = false;
    for path in paths {
        fs::remove_file(path).map_err(|e| StorageError::io("remove", path, e))?;
        removed = true;
    }
    if removed {
        crate::storage::files::sync_dir(wal_dir)?;
    }
    Ok(())
}
