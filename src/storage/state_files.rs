//! The two state files besides `meta`: `hard_state` (term and vote) and `snapshot`.
//! Both are replaced whole with [`write_atomic`], so a crash leaves the old or the new
//! version, never a mix.

use std::path::Path;

use serde::{Deserialize, Serialize};

use bincode::Options;

use super::codec::{
    bincode_options, check_envelope, decode_file, encode_file, encode_header, HEADER_BYTES,
};
use super::crc32::Crc32;
use super::error::StorageError;
use super::files::{read_optional, remove_stale_tmp, write_atomic, write_atomic_parts};
use crate::raft::{HardState, LogPosition, Membership};

/// Name of the hard state file inside the data directory.
pub const HARD_STATE_FILE: &str = "hard_state";
/// Name of the snapshot file inside the data directory.
pub const SNAPSHOT_FILE: &str = "snapshot";
const HARD_STATE_MAGIC: &[u8; 4] = b"RKVH";
/// Magic of the snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 4] = b"RKVS";

/// A snapshot as stored: the last log position it covers, the configuration as of
/// that position, and the state machine's bytes, which storage does not interpret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotFile {
    /// The last entry the snapshot includes (the new log base).
    pub last: LogPosition,
    /// The cluster configuration as of `last` (`None`: the bootstrap one, from the
    /// node's flags). The log after a snapshot may hold no configuration entry, so
    /// without it a restarted member would forget who the members are.
    pub membership: Option<Membership>,
    /// The encoded state machine (kv map, sessions); opaque here.
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
    let len = bytes.len() as u64;
    Ok(Some((decode_snapshot(bytes, &path)?, len)))
}

/// Decodes a whole snapshot file, reusing its buffer for the data: a snapshot is as
/// large as the state machine, so it is never copied (same layout as
/// `decode_file::<SnapshotFile>`).
pub fn decode_snapshot(mut bytes: Vec<u8>, path: &Path) -> Result<SnapshotFile, StorageError> {
    let body = check_envelope(SNAPSHOT_MAGIC, &bytes, path)?;
    let at = HEADER_BYTES as u64;
    let (last, membership, len): (LogPosition, Option<Membership>, u64) =
        bincode_options(body.len() as u64)
            .allow_trailing_bytes()
            .deserialize(body)
            .map_err(|e| StorageError::corrupt(path, at, format!("cannot decode: {e}")))?;
    let prefix = bincode_options(u64::MAX)
        .serialized_size(&(last, &membership, len))
        .map_err(|e| StorageError::corrupt(path, at, format!("cannot decode: {e}")))?;
    if prefix + len != body.len() as u64 {
        let detail = format!("snapshot data of {len} bytes in a body of {}", body.len());
        return Err(StorageError::corrupt(path, at, detail));
    }
    bytes.drain(..HEADER_BYTES + prefix as usize);
    Ok(SnapshotFile {
        last,
        membership,
        data: bytes,
    })
}

/// Replaces the snapshot file; returns its size in bytes. Written in parts (header,
/// position and configuration, data) so the data is never copied.
pub fn save_snapshot(dir: &Path, snap: &SnapshotFile) -> Result<u64, StorageError> {
    let path = dir.join(SNAPSHOT_FILE);
    let prefix = bincode_options(u64::MAX)
        .serialize(&(snap.last, &snap.membership, snap.data.len() as u64))
        .map_err(|e| {
            let detail = format!("cannot encode: {e}");
            StorageError::other(super::StorageErrorKind::Io, "encode", &path, detail)
        })?;
    let crc = Crc32::new().update(&prefix).update(&snap.data).finish();
    let body_len = (prefix.len() + snap.data.len()) as u64;
    let header = encode_header(SNAPSHOT_MAGIC, body_len, crc);
    write_atomic_parts(dir, SNAPSHOT_FILE, &[&header, &prefix, &snap.data])?;
    Ok(HEADER_BYTES as u64 + body_len)
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
