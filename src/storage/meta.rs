//! `meta`: who this data directory belongs to. Written once at the first start; every
//! later start must present the same node id, cluster and peer list. It also holds the
//! directory's random incarnation (peers refuse a member whose incarnation changed: its
//! directory was wiped) and whether it was created to join an existing cluster.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::codec::{decode_file, encode_file};
use super::error::{StorageError, StorageErrorKind};
use super::files::{read_optional, remove_stale_tmp, write_atomic};
use crate::raft::NodeId;

/// Name of the meta file inside the data directory.
pub const META_FILE: &str = "meta";
const META_MAGIC: &[u8; 4] = b"RKVM";

/// The identity a data directory was created with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// This node's id (its 1-based position in `peers`).
    pub node_id: NodeId,
    /// The cluster id (`--cluster`).
    pub cluster: String,
    /// Every member's address as this node was told at creation (`--peers`).
    pub peers: Vec<String>,
    /// Random, chosen when the directory is created; the stored value wins on a
    /// restart (callers pass a fresh random one).
    pub incarnation: u64,
    /// Created by `node --join`: no bootstrap configuration. The stored value wins.
    pub join: bool,
}

/// Writes `meta` if the directory has none, else checks it matches (incarnation and
/// `join` aside). Returns the meta as stored.
pub fn check_or_create(dir: &Path, meta: &Meta) -> Result<Meta, StorageError> {
    let path = dir.join(META_FILE);
    remove_stale_tmp(dir, META_FILE)?;
    match read_optional(&path)? {
        None => {
            write_atomic(dir, META_FILE, &encode_file(META_MAGIC, meta, &path)?)?;
            Ok(meta.clone())
        }
        Some(bytes) => {
            let stored: Meta = decode_file(META_MAGIC, &bytes, &path)?;
            match describe_mismatch(&stored, meta) {
                None => Ok(stored),
                Some(detail) => Err(StorageError::other(
                    StorageErrorKind::MetaMismatch,
                    "check",
                    dir,
                    detail,
                )),
            }
        }
    }
}

/// `peers` with `:PORT` read as `127.0.0.1:PORT`, as everywhere else (the same rule
/// as `net::normalize_addr`; storage does not depend on `net`).
fn normalized(peers: &[String]) -> Vec<String> {
    peers
        .iter()
        .map(|p| match p.strip_prefix(':') {
            Some(port) => format!("127.0.0.1:{port}"),
            None => p.clone(),
        })
        .collect()
}

/// Says what differs between the stored and the given identity, if anything.
fn describe_mismatch(stored: &Meta, given: &Meta) -> Option<String> {
    let mut diffs = Vec::new();
    if stored.node_id != given.node_id {
        diffs.push(format!(
            "it belongs to node {}, not node {}",
            stored.node_id, given.node_id
        ));
    }
    if stored.cluster != given.cluster {
        diffs.push(format!(
            "it belongs to cluster {:?}, not {:?}",
            stored.cluster, given.cluster
        ));
    }
    if normalized(&stored.peers) != normalized(&given.peers) {
        let (old, new) = (stored.peers.join(","), given.peers.join(","));
        diffs.push(format!("it was created with peers {old}, not {new}"));
    }
    if diffs.is_empty() {
        None
    } else {
        Some(diffs.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::{describe_mismatch, Meta};

    fn meta(peers: &[&str]) -> Meta {
        Meta {
            node_id: 1,
            cluster: "raftkv".to_string(),
            peers: peers.iter().map(|p| p.to_string()).collect(),
            incarnation: 7,
            join: false,
        }
    }

    #[test]
    fn a_short_address_matches_its_long_form() {
        let short = meta(&[":8101", ":8102"]);
        assert_eq!(
            describe_mismatch(&short, &meta(&["127.0.0.1:8101", ":8102"])),
            None
        );
        assert!(describe_mismatch(&short, &meta(&[":8101", ":8103"])).is_some());
    }
}
