//! The data directory's `LOCK`: an advisory lock (`flock` on Unix) held for the
//! lifetime of the `Storage`, so two processes never write one directory.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use super::error::{StorageError, StorageErrorKind};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = "LOCK";

/// Holds the lock until dropped (closing the file releases it, also when the process
/// dies).
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes `dir/LOCK` without waiting; `Locked` if another holder has it.
    pub fn acquire(dir: &Path) -> Result<DirLock, StorageError> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| StorageError::io("open", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(StorageError::other(
                StorageErrorKind::Locked,
                "lock",
                dir,
                format!("{} is held", path.display()),
            )),
            Err(TryLockError::Error(e)) => Err(StorageError::io("lock", &path, e)),
        }
    }
}
