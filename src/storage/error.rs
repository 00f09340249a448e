//! The one error type of storage: a kind to match on, plus the file and the operation
//! that failed, for a message an operator can act on.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What went wrong, for callers that react differently (the node maps `Locked` and
/// everything else to exit code 4, and treats `SyncFailed` as fatal).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageErrorKind {
    /// Another process holds the directory's `LOCK`.
    Locked,
    /// The directory was created for another node id, cluster or peer list.
    MetaMismatch,
    /// A file is damaged or not ours: bad magic, unknown version, CRC mismatch, an
    /// impossible record. `offset` is the byte offset in the file where it was found.
    Corrupt {
        /// Byte offset of the damaged header or record.
        offset: u64,
    },
    /// `fsync`/`fdatasync` failed. Fatal: after a failed fsync the kernel may have
    /// dropped the dirty pages and cleared the error, so retrying can report success
    /// for data that is gone. The `Storage` refuses all further writes
    /// ([`StorageErrorKind::Poisoned`]) and the node must exit and recover from disk.
    SyncFailed,
    /// An earlier write or fsync failed; this `Storage` accepts no more writes.
    Poisoned,
    /// A log entry encodes to more than the WAL's record limit.
    TooLarge,
    /// Any other I/O error (permissions, missing files, disk full, ...).
    Io,
    /// The directory belongs to a member that was removed from its cluster.
    Removed,
}

/// A storage failure: its kind, the operation, the file, and the cause.
///
/// `Display` is one line that already ends with the underlying I/O error's message,
/// so print it with `{}` alone; `source()` returns that I/O error for callers that
/// inspect it (e.g. its `io::ErrorKind`).
#[derive(Debug)]
pub struct StorageError {
    kind: StorageErrorKind,
    /// What we were doing, lowercase: "open", "fsync", "read", "decode", ...
    op: &'static str,
    /// The file or directory concerned.
    path: PathBuf,
    /// Extra words for the message (what differs, why a record is impossible).
    detail: Option<String>,
    /// The underlying I/O error, if any.
    source: Option<io::Error>,
}

impl StorageError {
    /// What went wrong.
    pub fn kind(&self) -> &StorageErrorKind {
        &self.kind
    }

    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn io(op: &'static str, path: &Path, source: io::Error) -> StorageError {
        StorageError::new(StorageErrorKind::Io, op, path, None, Some(source))
    }

    pub(crate) fn sync(path: &Path, source: io::Error) -> StorageError {
        StorageError::new(
            StorageErrorKind::SyncFailed,
            "fsync",
            path,
            None,
            Some(source),
        )
    }

    pub(crate) fn corrupt(path: &Path, offset: u64, detail: String) -> StorageError {
        let kind = StorageErrorKind::Corrupt { offset };
        StorageError::new(kind, "read", path, Some(detail), None)
    }

    pub(crate) fn other(
        kind: StorageErrorKind,
        op: &'static str,
        path: &Path,
        detail: String,
    ) -> StorageError {
        StorageError::new(kind, op, path, Some(detail), None)
    }

    fn new(
        kind: StorageErrorKind,
        op: &'static str,
        path: &Path,
        detail: Option<String>,
        source: Option<io::Error>,
    ) -> StorageError {
        StorageError {
            kind,
            op,
            path: path.to_path_buf(),
            detail,
            source,
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            StorageErrorKind::Locked => write!(
                f,
                "data directory {path} is in use by another raftkv process"
            )?,
            StorageErrorKind::Corrupt { offset } => {
                write!(f, "corrupt data in {path} at offset {offset}")?
            }
            StorageErrorKind::MetaMismatch => write!(f, "data directory {path} does not match")?,
            StorageErrorKind::Removed => write!(f, "cannot start on {path}")?,
            StorageErrorKind::Poisoned => write!(
                f,
                "cannot {} {path}: an earlier write or fsync failed",
                self.op
            )?,
            _ => write!(f, "{} of {path} failed", self.op)?,
        }
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
