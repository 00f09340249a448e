//! File-system helpers with error context: the atomic file write shared by
//! `hard_state`, `meta` and `snapshot`, directory fsync, and reading a file that may
//! not exist yet.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use super::error::StorageError;

/// Suffix of a file being replaced by [`write_atomic`].
pub const TMP_SUFFIX: &str = ".tmp";

/// Replaces `dir/name` with `bytes` atomically and durably: writes `name.tmp`, fsyncs
/// it, renames it over `name`, fsyncs `dir`. A crash at any point leaves either the old
/// or the new file under `name` (and perhaps a stale `name.tmp`, ignored and removed at
/// the next open).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    write_atomic_parts(dir, name, &[bytes])
}

/// [`write_atomic`] of the concatenation of `parts`, without building it in memory.
pub fn write_atomic_parts(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<(), StorageError> {
    crate::sync::assert_no_io_free_lock("writing an atomic file");
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let target = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| StorageError::io("create", &tmp, e))?;
    for part in parts {
        file.write_all(part)
            .map_err(|e| StorageError::io("write", &tmp, e))?;
    }
    file.sync_all().map_err(|e| StorageError::sync(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, &target).map_err(|e| StorageError::io("rename", &tmp, e))?;
    sync_dir(dir)
}

/// Makes the entries of `dir` (created, renamed, removed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let handle = File::open(dir).map_err(|e| StorageError::io("open", dir, e))?;
    handle.sync_all().map_err(|e| StorageError::sync(dir, e))
}

/// The whole content of `path`, or `None` if it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, StorageError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StorageError::io("read", path, e)),
    }
}

/// Removes `dir/name.tmp` if a crash left it behind; returns whether it did.
pub fn remove_stale_tmp(dir: &Path, name: &str) -> Result<bool, StorageError> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    match fs::remove_file(&tmp) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io("remove", &tmp, e)),
    }
}
