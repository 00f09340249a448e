//! The error type of the client library.

use std::fmt;

/// Why a client call did not produce an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientError {
    kind: ClientErrorKind,
    message: String,
}

/// The kinds of [`ClientError`] (the CLI maps them to exit codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientErrorKind {
    /// No definite answer within the deadline, or the client's session expired. For a
    /// write, `outcome_unknown` says whether the request may have reached a leader (so
    /// may yet be applied, or was applied before its session expired); `false` means
    /// it provably was not applied. Always `false` for reads and status.
    Unavailable {
        /// True if a write may or may not have been applied.
        outcome_unknown: bool,
    },
    /// The other side does not speak our protocol, or refused our hello (e.g. another
    /// cluster), or answered something that does not fit the request.
    Protocol,
    /// A definite refusal by the cluster (e.g. a request too large), or bad input.
    Other,
}

impl ClientError {
    /// Creates an error; `message` is what [`fmt::Display`] prints.
    pub fn new(kind: ClientErrorKind, message: impl Into<String>) -> ClientError {
        ClientError {
            kind,
            message: message.into(),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ClientErrorKind {
        self.kind
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}
