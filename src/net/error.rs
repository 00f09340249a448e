//! The error type of framing and the handshake.

use std::{fmt, io};

/// A framing, decoding, I/O or handshake failure.
///
/// After any error other than [`NetErrorKind::Timeout`], [`NetErrorKind::Skipped`] and
/// [`NetErrorKind::Decode`] of a whole frame read, the stream is out of step (part of a
/// frame may have been consumed or sent): drop the connection.
#[derive(Debug)]
pub struct NetError {
    kind: NetErrorKind,
    source: Option<io::Error>,
}

/// The kinds of [`NetError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetErrorKind {
    /// The other side closed the connection cleanly, between frames.
    Closed,
    /// A frame's length exceeds the maximum; nothing was allocated or sent.
    TooLarge {
        /// The announced or encoded body length.
        len: u64,
        /// The maximum in force.
        max: u64,
    },
    /// A frame's length exceeded the maximum, and its body was read and thrown away
    /// (`read_frame_or_skip`): unlike the other kinds, the stream is still in step.
    Skipped {
        /// The announced body length.
        len: u64,
        /// The maximum in force.
        max: u64,
    },
    /// A frame body did not decode as the expected type.
    Decode(String),
    /// An I/O error, including a connection cut inside a frame.
    Io(io::ErrorKind),
    /// The other side refused our hello, with its reason.
    Refused(String),
    /// The other side failed to prove the secret in the hello (the detail is for our
    /// log only; the other side got a generic refusal).
    AuthFailed(String),
    /// A read or write timed out before any byte of the frame moved; the stream is
    /// still in step and the call may be repeated.
    Timeout,
}

impl NetError {
    /// Creates an error of the given kind.
    pub fn new(kind: NetErrorKind) -> NetError {
        NetError { kind, source: None }
    }

    /// Wraps an I/O error; timeouts become [`NetErrorKind::Timeout`].
    pub fn io(e: io::Error) -> NetError {
        let kind = match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => NetErrorKind::Timeout,
            other => NetErrorKind::Io(other),
        };
        NetError {
            kind,
            source: Some(e),
        }
    }

    /// Wraps an I/O error as [`NetErrorKind::Io`] even if it is a timeout: used when a
    /// timeout struck inside a frame and the stream is out of step.
    pub(crate) fn io_mid_frame(e: io::Error) -> NetError {
        NetError {
            kind: NetErrorKind::Io(e.kind()),
            source: Some(e),
        }
    }

    /// A refusal with its reason (a bad hello, a peer breaking the protocol).
    pub fn refused(reason: impl Into<String>) -> NetError {
        NetError::new(NetErrorKind::Refused(reason.into()))
    }

    /// What went wrong.
    pub fn kind(&self) -> &NetErrorKind {
        &self.kind
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            NetErrorKind::Closed => write!(f, "connection closed"),
            NetErrorKind::TooLarge { len, max } => {
                write!(f, "frame of {len} bytes exceeds the maximum of {max}")
            }
            NetErrorKind::Skipped { len, max } => write!(
                f,
                "frame of {len} bytes exceeds the maximum of {max} (skipped)"
            ),
            NetErrorKind::Decode(why) => write!(f, "undecodable frame: {why}"),
            NetErrorKind::Io(_) => match &self.source {
                Some(e) => write!(f, "i/o error: {e}"),
                None => write!(f, "i/o error"),
            },
            NetErrorKind::Refused(reason) => write!(f, "refused: {reason}"),
            NetErrorKind::AuthFailed(who) => write!(f, "authentication failed from {who}"),
            NetErrorKind::Timeout => write!(f, "timed out"),
        }
    }
}

impl std::error::Error for NetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<io::Error> for NetError {
    fn from(e: io::Error) -> Self {
        NetError::io(e)
    }
}
