//! The error type of the state machine.

use std::fmt;

/// Why the state machine refused a payload or a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvError {
    kind: KvErrorKind,
}

/// The kinds of [`KvError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvErrorKind {
    /// A request payload did not decode (or exceeded [`super::MAX_REQUEST_BYTES`]).
    BadRequest(String),
    /// A snapshot did not decode or broke an invariant of the store.
    BadSnapshot(String),
    /// The client already had a later request applied; this one was not applied.
    /// Only a delayed duplicate of an old request can cause it, because a client sends
    /// its next sequence number only after the previous one got an answer.
    StaleRequest {
        /// The client.
        client_id: u64,
        /// The sequence number of the refused request.
        seq: u64,
        /// The last sequence number applied for this client.
        last_seq: u64,
    },
}

impl KvError {
    /// Creates an error of the given kind.
    pub fn new(kind: KvErrorKind) -> KvError {
        KvError { kind }
    }

    /// What went wrong.
    pub fn kind(&self) -> &KvErrorKind {
        &self.kind
    }
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            KvErrorKind::BadRequest(why) => write!(f, "bad request payload: {why}"),
            KvErrorKind::BadSnapshot(why) => write!(f, "bad snapshot: {why}"),
            KvErrorKind::StaleRequest {
                client_id,
                seq,
                last_seq,
            } => write!(
                f,
                "stale request: client {client_id:#x} seq {seq} is older than applied seq {last_seq}"
            ),
        }
    }
}

impl std::error::Error for KvError {}
