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
    /// The client has no session (it was evicted, or the request is a delayed
    /// leftover of one) and this is not its first write (`seq` above 1): it was not
    /// applied, because it might have been applied before, or be older than the
    /// client's last write. The client cannot tell which, so its outcome is unknown;
    /// it must open a new session (a new id, `seq` 1).
    SessionExpired {
        /// The client.
        client_id: u64,
        /// The sequence number of the refused request.
        seq: u64,
    },
    /// A snapshot decoded, but its state machine is not at the position the snapshot
    /// file says it covers: the file is corrupt or was not written by this store.
    SnapshotPosition {
        /// The index the snapshot file says it covers.
        file_index: u64,
        /// The applied index of the state machine inside it.
        applied_index: u64,
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
            KvErrorKind::SnapshotPosition {
                file_index,
                applied_index,
            } => write!(
                f,
                "the snapshot file covers the log up to index {file_index}, but the state \
                 machine in it has applied index {applied_index}"
            ),
            KvErrorKind::SessionExpired { client_id, seq } => write!(
                f,
                "session expired: client {client_id:#x} has no session (evicted by newer \
                 clients) and seq {seq} is not a first write, so it was refused (an earlier \
                 attempt of it may have been applied)"
            ),
        }
    }
}

impl std::error::Error for KvError {}
