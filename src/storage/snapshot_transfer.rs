//! Moving a snapshot file between members (InstallSnapshot, §7): the leader reads
//! chunks of its `snapshot` file as stored; the follower writes them to
//! `snapshot.recv`, and once the last one is in, checks the whole file (magic,
//! version, CRC, decoding, position) before renaming it over `snapshot`.
//!
//! A crash mid-transfer leaves `snapshot.recv` behind; [`remove_stale_recv`] deletes it
//! at the next open, and the leader starts the transfer over.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bincode::Options;

use super::error::StorageError;
use super::state_files::{decode_snapshot, SnapshotFile, SNAPSHOT_FILE, SNAPSHOT_MAGIC};
use crate::raft::LogPosition;

/// Name of the snapshot being received.
pub const RECV_FILE: &str = "snapshot.recv";
/// Bytes of the snapshot file's envelope before the body (see `codec`).
const HEADER_BYTES: u64 = 20;

/// An open snapshot file being sent to a follower. Holding it open keeps its bytes
/// readable after a newer snapshot is renamed over it, so a transfer can finish.
#[derive(Debug)]
pub struct SnapshotReader {
    last: LogPosition,
    file: File,
    len: u64,
    path: PathBuf,
}

impl SnapshotReader {
    /// Opens this node's snapshot file if it is the snapshot at `want`; `None` if
    /// there is no snapshot or it is another one. Safe from any thread: the file is
    /// only ever replaced by a rename.
    pub fn open(dir: &Path, want: LogPosition) -> Result<Option<SnapshotReader>, StorageError> {
        let path = dir.join(SNAPSHOT_FILE);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageError::io("open", &path, e)),
        };
        let len = file
            .metadata()
            .map_err(|e| StorageError::io("stat", &path, e))?
            .len();
        if stored_position(&mut file, &path)? != Some(want) {
            return Ok(None);
        }
        Ok(Some(SnapshotReader {
            last: want,
            file,
            len,
            path,
        }))
    }

    /// The snapshot this reader reads.
    pub fn last(&self) -> LogPosition {
        self.last
    }

    /// Up to `max` bytes at `offset`, and whether they reach the end; `None` if
    /// `offset` is past the end.
    pub fn read_chunk(
        &mut self,
        offset: u64,
        max: usize,
    ) -> Result<Option<(Vec<u8>, bool)>, StorageError> {
        if offset > self.len {
            return Ok(None);
        }
        let take = (max as u64).min(self.len - offset);
        let mut data = vec![0u8; take as usize];
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(&mut data))
            .map_err(|e| StorageError::io("read", &self.path, e))?;
        Ok(Some((data, offset + take == self.len)))
    }
}

/// The position recorded at the start of a snapshot file's body (the first field of
/// [`SnapshotFile`]), or `None` if the file is too short to hold one.
fn stored_position(file: &mut File, path: &Path) -> Result<Option<LogPosition>, StorageError> {
    let mut head = Vec::with_capacity(64);
    file.seek(SeekFrom::Start(0))
        .and_then(|_| {
            Read::by_ref(file)
                .take(HEADER_BYTES + 40)
                .read_to_end(&mut head)
        })
        .map_err(|e| StorageError::io("read", path, e))?;
    if head.len() <= HEADER_BYTES as usize || &head[..4] != SNAPSHOT_MAGIC {
        return Ok(None);
    }
    let body = &head[HEADER_BYTES as usize..];
    Ok(bincode::DefaultOptions::new()
        .allow_trailing_bytes()
        .deserialize::<LogPosition>(body)
        .ok())
}

/// Writes a received chunk at `offset` of `dir/snapshot.recv` (offset 0 starts a new
/// file). Not synced here: [`check_received`] syncs the whole file once.
pub fn write_chunk(dir: &Path, offset: u64, data: &[u8]) -> Result<(), StorageError> {
    let path = dir.join(RECV_FILE);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(offset == 0)
        .open(&path)
        .map_err(|e| StorageError::io("create", &path, e))?;
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.write_all(data))
        .map_err(|e| StorageError::io("write", &path, e))
}

/// Syncs and reads back the received file and checks it is a whole, undamaged
/// snapshot at `last`. `Ok(Err(why))`: the transfer is bad (the file is removed);
/// `Err`: the disk failed.
pub fn check_received(
    dir: &Path,
    last: LogPosition,
) -> Result<Result<(SnapshotFile, u64, PathBuf), String>, StorageError> {
    let path = dir.join(RECV_FILE);
    let file = File::open(&path).map_err(|e| StorageError::io("open", &path, e))?;
    file.sync_all().map_err(|e| StorageError::sync(&path, e))?;
    drop(file);
    let bytes = fs::read(&path).map_err(|e| StorageError::io("read", &path, e))?;
    let len = bytes.len() as u64;
    let verdict = match decode_snapshot(bytes, &path) {
        Ok(snap) if snap.last == last => Ok((snap, len, path.clone())),
        Ok(snap) => Err(format!(
            "received snapshot is at {:?}, not {last:?}",
            snap.last
        )),
        Err(e) => Err(e.to_string()),
    };
    if verdict.is_err() {
        let _ = fs::remove_file(&path);
    }
    Ok(verdict)
}

/// Removes a `snapshot.recv` left by a crash mid-transfer; returns whether it did.
pub fn remove_stale_recv(dir: &Path) -> Result<bool, StorageError> {
    let path = dir.join(RECV_FILE);
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(StorageError::io("remove", &path, e)),
    }
}
