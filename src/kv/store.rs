//! [`KvStore`]: the map, the session table and the applied index, with snapshots.

use std::collections::BTreeMap;

use bincode::Options;
use serde::{Deserialize, Serialize};

use super::command::{decode_request, Command, CommandResult};
use super::digest::StateDigest;
use super::error::{KvError, KvErrorKind};
use super::session::{Check, Session, SessionTable};

/// Sessions kept by [`KvStore::new`]; see the policy in the module `kv::session`.
pub const DEFAULT_MAX_SESSIONS: usize = 10_000;

/// Bytes of sessions kept by [`KvStore::new`] (32 MiB): each session counts 64 bytes
/// plus the value a saved `CasMismatch` holds. Without it, 10,000 saved mismatches
/// of 4 MiB values would be 40 GiB, in memory and in every snapshot.
pub const DEFAULT_MAX_SESSION_BYTES: u64 = 32 << 20;

/// Version of the snapshot encoding, checked by [`KvStore::restore`]. Format 2 added
/// the session byte bound; format 3 the state digest. Format 2 is still read.
const SNAPSHOT_FORMAT: u32 = 3;

/// The replicated state machine.
///
/// Session policy: a write from a client is identified by `(client_id, seq)`. A `seq`
/// above the client's last one is applied and its result saved; the same `seq` again
/// returns the saved result without applying; a lower `seq` is refused as
/// [`KvErrorKind::StaleRequest`]; a `seq` above 1 from a client without a session is
/// refused as [`KvErrorKind::SessionExpired`]. At most `max_sessions` clients and
/// `max_session_bytes` bytes of saved results are remembered; going over evicts the
/// clients whose last request is oldest in the log. Everything depends only on the
/// applied entries, so all members agree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvStore {
    /// The data. A BTreeMap so that snapshots are byte-identical across members.
    /// `Box<str>` rather than `String`: no spare capacity and 16 bytes less per entry
    /// in the tree's nodes, which matters for a node's peak memory (issue 6); the
    /// encoding is the same.
    map: BTreeMap<Box<str>, Box<str>>,
    /// Client sessions. Invariant: every session's last_index <= applied_index.
    sessions: SessionTable,
    /// Index of the last log entry applied (0 before any).
    applied_index: u64,
    /// Invariant: the digest of `map` (module `kv::digest`).
    digest: StateDigest,
    /// Invariant: the sum of the lengths of the keys and values in `map`.
    data_bytes: u64,
    /// Test-only fault: a put of this key stores its value with the first byte's low
    /// bit flipped, as a non-deterministic or buggy state machine would (set from the
    /// environment variable `RAFTKV_TEST_FLIP_KEY` by the node; never in snapshots).
    flip_key: Option<Box<str>>,
}

/// The snapshot layout, borrowed for encoding.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    format: u32,
    applied_index: u64,
    max_sessions: u64,
    max_session_bytes: u64,
    map: &'a BTreeMap<Box<str>, Box<str>>,
    sessions: &'a BTreeMap<u64, Session>,
    digest: u64,
}

/// The snapshot layout, owned for decoding; same fields in the same order.
#[derive(Deserialize)]
struct SnapshotOwned {
    format: u32,
    applied_index: u64,
    max_sessions: u64,
    max_session_bytes: u64,
    map: BTreeMap<Box<str>, Box<str>>,
    sessions: BTreeMap<u64, Session>,
    /// `None` in format 2, which had no digest.
    #[serde(deserialize_with = "some_u64")]
    digest: Option<u64>,
}

fn some_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    u64::deserialize(d).map(Some)
}

/// Format 2's layout, without the digest.
#[derive(Deserialize)]
struct SnapshotV2 {
    format: u32,
    applied_index: u64,
    max_sessions: u64,
    max_session_bytes: u64,
    map: BTreeMap<Box<str>, Box<str>>,
    sessions: BTreeMap<u64, Session>,
}

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new()
    }
}

impl KvStore {
    /// An empty store keeping at most [`DEFAULT_MAX_SESSIONS`] sessions and
    /// [`DEFAULT_MAX_SESSION_BYTES`] bytes of them.
    pub fn new() -> KvStore {
        KvStore::with_limits(DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSION_BYTES)
    }

    /// An empty store keeping at most `max_sessions` (>= 1) sessions and the default
    /// byte bound.
    pub fn with_max_sessions(max_sessions: usize) -> KvStore {
        KvStore::with_limits(max_sessions, DEFAULT_MAX_SESSION_BYTES)
    }

    /// An empty store keeping at most `max_sessions` (>= 1) sessions and
    /// `max_session_bytes` bytes of them (one session larger than that alone is still
    /// kept). Every member must use the same values; they travel in snapshots.
    pub fn with_limits(max_sessions: usize, max_session_bytes: u64) -> KvStore {
        KvStore {
            map: BTreeMap::new(),
            sessions: SessionTable::new(max_sessions, max_session_bytes),
            applied_index: 0,
            digest: StateDigest::default(),
            data_bytes: 0,
            flip_key: None,
        }
    }

    /// Test-only fault: see the `flip_key` field. Used by the divergence tests.
    pub fn set_flip_key(&mut self, key: Option<String>) {
        self.flip_key = key.map(Into::into);
    }

    /// Bytes of keys and values held: what `--quota-bytes` limits.
    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// Applies the payload of the committed entry at `index` (must be
    /// `applied_index + 1`). A retried `(client_id, seq)` returns the saved result
    /// without applying again. An undecodable payload or a stale request yields `Err`
    /// and changes nothing but `applied_index`, identically on every member.
    pub fn apply(&mut self, index: u64, payload: &[u8]) -> Result<CommandResult, KvError> {
        self.advance(index);
        let request = decode_request(payload)?;
        if request.command == Command::Check {
            return Ok(CommandResult::Checked {
                digest: self.digest.value(),
            });
        }
        let (client_id, seq) = (request.client_id, request.seq);
        match self.sessions.check(client_id, seq) {
            Check::Fresh => {
                let result = self.execute(request.command);
                self.sessions.record(client_id, seq, result.clone(), index);
                Ok(result)
            }
            Check::Duplicate(result) => {
                self.sessions.record(client_id, seq, result.clone(), index);
                Ok(result)
            }
            Check::Stale { last_seq } => Err(KvError::new(KvErrorKind::StaleRequest {
                client_id,
                seq,
                last_seq,
            })),
            Check::Expired => Err(KvError::new(KvErrorKind::SessionExpired { client_id, seq })),
        }
    }

    /// Applies a Raft no-op entry at `index`: only advances `applied_index`.
    pub fn apply_noop(&mut self, index: u64) {
        self.advance(index);
    }

    fn advance(&mut self, index: u64) {
        assert_eq!(
            index,
            self.applied_index + 1,
            "applying index {index} after applied index {}",
            self.applied_index
        );
        self.applied_index = index;
    }

    fn execute(&mut self, command: Command) -> CommandResult {
        match command {
            Command::Put { key, value } => {
                self.set(key, value);
                CommandResult::Put
            }
            Command::Delete { key } => {
                let old = self.map.remove(key.as_str());
                if let Some(old) = &old {
                    self.digest.remove(key.as_bytes(), old.as_bytes());
                    self.data_bytes -= (key.len() + old.len()) as u64;
                }
                CommandResult::Deleted {
                    existed: old.is_some(),
                }
            }
            Command::Cas { key, expected, new } => {
                let current = self.map.get(key.as_str()).map(|v| &**v);
                if current == expected.as_deref() {
                    self.set(key, new);
                    CommandResult::CasOk
                } else {
                    CommandResult::CasMismatch {
                        current: current.map(str::to_string),
                    }
                }
            }
            // Handled before the session table in `apply`; kept total here.
            Command::Check => CommandResult::Checked {
                digest: self.digest.value(),
            },
        }
    }

    /// Sets `key` to `value`, keeping the digest and the byte count.
    fn set(&mut self, key: String, mut value: String) {
        if self.flip_key.as_deref() == Some(key.as_str()) {
            value = flip_first_byte(value);
        }
        self.digest.add(key.as_bytes(), value.as_bytes());
        self.data_bytes += (key.len() + value.len()) as u64;
        if let Some(old) = self.map.insert(key.as_str().into(), value.into()) {
            self.digest.remove(key.as_bytes(), old.as_bytes());
            self.data_bytes -= (key.len() + old.len()) as u64;
        }
    }

    /// The digest of the map as of `applied_index`: equal on every member that
    /// applied the same entries (module `kv::digest`).
    pub fn digest(&self) -> u64 {
        self.digest.value()
    }

    /// The value of `key`, as of `applied_index`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(|v| &**v)
    }

    /// Index of the last entry applied.
    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of client sessions remembered.
    pub fn session_count(&self) -> usize {
        self.sessions.sessions().len()
    }

    /// Bytes of client sessions remembered, as counted against the byte bound.
    pub fn session_bytes(&self) -> u64 {
        self.sessions.bytes()
    }

    /// Encodes the whole state: map, sessions (with their cap) and applied index.
    /// Members at the same applied index produce identical bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let view = SnapshotRef {
            format: SNAPSHOT_FORMAT,
            applied_index: self.applied_index,
            max_sessions: self.sessions.max_sessions() as u64,
            max_session_bytes: self.sessions.max_bytes(),
            map: &self.map,
            sessions: self.sessions.sessions(),
            digest: self.digest.value(),
        };
        match bincode::DefaultOptions::new().serialize(&view) {
            Ok(bytes) => bytes,
            Err(e) => panic!("encoding a snapshot into memory failed: {e}"),
        }
    }

    /// [`KvStore::restore`] of a snapshot file said to cover the log up to `index`:
    /// also refuses a state machine at another applied index
    /// ([`KvErrorKind::SnapshotPosition`]).
    pub fn restore_at(bytes: &[u8], index: u64) -> Result<KvStore, KvError> {
        let kv = KvStore::restore(bytes)?;
        if kv.applied_index != index {
            return Err(KvError::new(KvErrorKind::SnapshotPosition {
                file_index: index,
                applied_index: kv.applied_index,
            }));
        }
        Ok(kv)
    }

    /// Decodes a snapshot made by [`KvStore::snapshot`], checking its invariants and
    /// that its data hashes to the digest it carries: a snapshot altered after it was
    /// encoded is refused even if its file checksum was recomputed.
    pub fn restore(bytes: &[u8]) -> Result<KvStore, KvError> {
        let bad = |why: String| KvError::new(KvErrorKind::BadSnapshot(why));
        let snap = decode_snapshot(bytes).map_err(|e| bad(e.to_string()))?;
        if snap.format != SNAPSHOT_FORMAT && snap.format != 2 {
            return Err(bad(format!("unknown format {}", snap.format)));
        }
        let max_sessions = usize::try_from(snap.max_sessions)
            .map_err(|_| bad(format!("max_sessions {} too large", snap.max_sessions)))?;
        let sessions =
            SessionTable::from_sessions(max_sessions, snap.max_session_bytes, snap.sessions)
                .ok_or_else(|| bad("inconsistent session table".to_string()))?;
        if sessions.newest_use() > snap.applied_index {
            return Err(bad(format!(
                "session used at index {} after applied index {}",
                sessions.newest_use(),
                snap.applied_index
            )));
        }
        let digest = StateDigest::of(snap.map.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
        if let Some(carried) = snap.digest {
            if carried != digest.value() {
                return Err(bad(format!(
                    "state digest mismatch: the snapshot says {carried:#018x}, its data \
                     hashes to {:#018x}; the data was altered after it was written",
                    digest.value()
                )));
            }
        }
        let data_bytes = snap
            .map
            .iter()
            .map(|(k, v)| (k.len() + v.len()) as u64)
            .sum();
        Ok(KvStore {
            map: snap.map,
            sessions,
            applied_index: snap.applied_index,
            digest,
            data_bytes,
            flip_key: None,
        })
    }
}

/// `value` with its first byte's low bit flipped (if that keeps it UTF-8 and it is
/// not empty), for the test-only fault.
fn flip_first_byte(value: String) -> String {
    let mut bytes = value.into_bytes();
    if let Some(first) = bytes.first_mut() {
        if first.is_ascii() {
            *first ^= 1;
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

/// Decodes either layout: the format number comes first in both.
fn decode_snapshot(bytes: &[u8]) -> Result<SnapshotOwned, bincode::Error> {
    let options = bincode::DefaultOptions::new().with_limit(bytes.len() as u64);
    let format: u32 = options.allow_trailing_bytes().deserialize(bytes)?;
    let options = options.reject_trailing_bytes();
    if format != 2 {
        return options.deserialize(bytes);
    }
    let v2: SnapshotV2 = options.deserialize(bytes)?;
    Ok(SnapshotOwned {
        format: v2.format,
        applied_index: v2.applied_index,
        max_sessions: v2.max_sessions,
        max_session_bytes: v2.max_session_bytes,
        map: v2.map,
        sessions: v2.sessions,
        digest: None,
    })
}
