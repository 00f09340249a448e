//! `peers`: the incarnation (and advertised address) of every member this node has
//! heard from, so that a member whose data directory was wiped, and which comes back
//! under its old id with a new incarnation, is recognised and refused. Replaced whole
//! with `write_atomic`; written by whoever holds the book's lock (a leaf), never under
//! the Raft mutex. Also the `removed` marker: a member that learned it was removed
//! writes it, and the directory is refused from then on.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::codec::{decode_file, encode_file};
use super::error::{StorageError, StorageErrorKind};
use super::files::{read_optional, remove_stale_tmp, write_atomic};
use crate::raft::NodeId;

/// Name of the peer book inside the data directory.
pub const PEER_BOOK_FILE: &str = "peers";
/// Name of the marker a removed member leaves in its data directory.
pub const REMOVED_FILE: &str = "removed";
const PEER_BOOK_MAGIC: &[u8; 4] = b"RKVP";
const REMOVED_MAGIC: &[u8; 4] = b"RKVR";

/// What this node knows of one member it heard from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRecord {
    /// The incarnation of the member's data directory, from its hello.
    pub incarnation: u64,
    /// The address it said it listens at (used when neither `--peers` nor the
    /// configuration names one).
    pub addr: String,
}

/// The peer book: one record per member heard from.
pub type PeerBook = BTreeMap<NodeId, PeerRecord>;

/// The stored peer book (empty if none).
pub fn load(dir: &Path) -> Result<PeerBook, StorageError> {
    remove_stale_tmp(dir, PEER_BOOK_FILE)?;
    let path = dir.join(PEER_BOOK_FILE);
    match read_optional(&path)? {
        None => Ok(PeerBook::new()),
        Some(bytes) => decode_file(PEER_BOOK_MAGIC, &bytes, &path),
    }
}

/// Replaces the peer book (atomically).
pub fn save(dir: &Path, book: &PeerBook) -> Result<(), StorageError> {
    let bytes = encode_file(PEER_BOOK_MAGIC, book, &dir.join(PEER_BOOK_FILE))?;
    write_atomic(dir, PEER_BOOK_FILE, &bytes)
}

/// Leaves the `removed` marker with `why` (atomically): the directory will not start
/// again.
pub fn mark_removed(dir: &Path, why: &str) -> Result<(), StorageError> {
    let bytes = encode_file(REMOVED_MAGIC, &why.to_string(), &dir.join(REMOVED_FILE))?;
    write_atomic(dir, REMOVED_FILE, &bytes)
}

/// Refuses a directory that holds the `removed` marker, saying why it was removed.
pub fn check_not_removed(dir: &Path) -> Result<(), StorageError> {
    let path = dir.join(REMOVED_FILE);
    let Some(bytes) = read_optional(&path)? else {
        return Ok(());
    };
    let why: String = decode_file(REMOVED_MAGIC, &bytes, &path)?;
    Err(StorageError::other(
        StorageErrorKind::Removed,
        "start on",
        dir,
        format!(
            "this member was removed from its cluster ({why}); its id is retired. To serve \
             again, add it as a new member (`raftkv client member add NEW_ID ADDR \
             --learner`) and start it with --join on an empty data directory"
        ),
    ))
}
