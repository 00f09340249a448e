//! The commands a client can replicate, their results, and their encoding in log entries.

use bincode::Options;
use serde::{Deserialize, Serialize};

use super::error::{KvError, KvErrorKind};

/// Largest encoded [`Request`] accepted: bounds what one log entry can make a member
/// allocate. A node refuses bigger requests before they enter the log (an oversized
/// entry would only be rejected at apply time, on every member). Defined with the
/// frame and record limits it must fit in, in [`crate::limits`].
pub const MAX_REQUEST_BYTES: u64 = crate::limits::MAX_REQUEST_BYTES;

/// A change to the map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Sets `key` to `value`.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: String,
    },
    /// Removes `key` if present.
    Delete {
        /// The key.
        key: String,
    },
    /// Sets `key` to `new` only if its current value equals `expected`.
    Cas {
        /// The key.
        key: String,
        /// The value required now; `None` means "only if absent".
        expected: Option<String>,
        /// The value to store on success.
        new: String,
    },
    /// A state digest check (proposed by the leader every `--digest-check-entries`
    /// entries): changes nothing; every member notes its digest at this index. Its
    /// request carries client id 0 and is outside the session table.
    Check,
}

/// The outcome of applying a [`Command`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandResult {
    /// A `Put` was applied.
    Put,
    /// A `Delete` was applied.
    Deleted {
        /// Whether the key was present before.
        existed: bool,
    },
    /// A `Cas` matched and stored the new value.
    CasOk,
    /// A `Cas` did not match; nothing changed.
    CasMismatch {
        /// The value found instead of the expected one.
        current: Option<String>,
    },
    /// A `Check` was applied: the member's state digest at its index.
    Checked {
        /// The digest (`KvStore::digest`).
        digest: u64,
    },
}

/// One client write: the payload of one log entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen at random by the client, stable for its lifetime.
    pub client_id: u64,
    /// Starts at 1 and grows by one per write; kept across retries of the same write.
    pub seq: u64,
    /// What to do.
    pub command: Command,
}

/// Encodes a request as a log entry payload.
///
/// Encoding is not size-limited (it cannot fail for these types), so a request that came
/// from the network never panics here; the limit is enforced by [`decode_request`], on
/// every member alike. A proposer should refuse a payload longer than
/// [`MAX_REQUEST_BYTES`] before it enters the log.
pub fn encode_request(r: &Request) -> Vec<u8> {
    // Same encoding as `decode_request`'s options: the limit and the trailing-bytes
    // check only affect decoding.
    match bincode::DefaultOptions::new().serialize(r) {
        Ok(bytes) => bytes,
        Err(e) => panic!(
            "encoding request client {:#x} seq {} into memory failed: {e}",
            r.client_id, r.seq
        ),
    }
}

/// The payload of a state digest check entry.
pub fn encode_check() -> Vec<u8> {
    encode_request(&Request {
        client_id: 0,
        seq: 0,
        command: Command::Check,
    })
}

/// Decodes a log entry payload. Fails on malformed, oversized or trailing bytes.
pub fn decode_request(bytes: &[u8]) -> Result<Request, KvError> {
    bincode::DefaultOptions::new()
        .with_limit(MAX_REQUEST_BYTES)
        .reject_trailing_bytes()
        .deserialize(bytes)
        .map_err(|e| KvError::new(KvErrorKind::BadRequest(e.to_string())))
}
