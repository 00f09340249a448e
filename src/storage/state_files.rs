//! The two state files besides `meta`: `hard_state` (term and vote) and `snapshot`.
//! Both are replaced whole with [`write_atomic`], so a crash leaves the old or the new
//! version, never a mix.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::codec::{decode_file, encode_file};
use super::error::StorageError;
use super::files::{read_optional, remove_stale_tmp, write_atomic};
use crate::raft::{HardState, LogPosition};

/// Name of the hard state file inside the data directory.
pub const HARD_STATE_FILE: &str = "hard_state";
/// Name of the snapshot file inside the data directory.
pub const SNAPSHOT_FILE: &str = "snapshot";
const HARD_STATE_MAGIC: &[u8; 4] = b"RKVH";
/// Magic of the snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 4] = b"RKVS";

/// A snapshot as stored: the last log position it covers and the state machine's
/// bytes, which storage does not interpret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// The last entry the snapshot includes (the new log base).
    pub last: LogPosition,
    /// The encoded state machine (kv map, sessions, membership); opaque here.
    pub data: Vec<u8>,
}

/// The stored hard state, or the default (term 0, no vote) if none was saved yet.
pub fn load_hard_state(dir: &Path, warnings: &mut Vec<String>) -> Result<HardState, StorageError> {
    note_stale_tmp(dir, HARD_STATE_FILE, warnings)?;
    let path = dir.join(HARD_STATE_FILE);
    match read_optional(&path)? {
        None => Ok(HardState::default()),
        Some(bytes) => decode_file(HARD_STATE_MAGIC, &bytes, &path),
    }
}

/// Replaces the hard state file.
pub fn save_hard_state(dir: &Path, hs: &HardState) -> Result<(), StorageError> {
    let bytes = encode_file(HARD_STATE_MAGIC, hs, &dir.join(HARD_STATE_FILE))?;
    write_atomic(dir, HARD_STATE_FILE, &bytes)
}

/// The stored snapshot and its file size, if any.
pub fn load_snapshot(
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<Option<(SnapshotFile, u64)>, StorageError> {
    note_stale_tmp(dir, SNAPSHOT_FILE, warnings)?;
    let path = dir.join(SNAPSHOT_FILE);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(None);
    };
    let snap: SnapshotFile = decode_file(SNAPSHOT_MAGIC, &bytes, &path)?;
    Ok(Some((snap, bytes.len() as u64)))
}

/// Replaces the snapshot file; returns its size in bytes.
pub fn save_snapshot(dir: &Path, snap: &SnapshotFile) -> Result<u64, StorageError> {
    let bytes = encode_file(SNAPSHOT_MAGIC, snap, &dir.join(SNAPSHOT_FILE))?;
    write_atomic(dir, SNAPSHOT_FILE, &bytes)?;
    Ok(bytes.len() as u64)
}

/// Removes a `NAME.tmp` left by a crash before its rename, with a warning.
fn note_stale_tmp(dir: &Path, name: &str, warnings: &mut Vec<String>) -> Result<(), StorageError> {
    if remove_stale_tmp(dir, name)? {
        warnings.push(format!(
            "removed {name}.tmp left by an interrupted write in {}",
            dir.display()
        ));
    }
    Ok(())
}
