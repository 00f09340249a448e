//! Frames and the wire protocol: peers and clients over TCP.
//!
//! Every message is a frame: a `u32` big-endian body length, then a bincode body
//! (`bincode::DefaultOptions`, decoded from the slice with a size limit). The length is
//! checked against a maximum before anything is allocated. Every connection starts
//! with a [`Hello`] carrying [`PROTOCOL_VERSION`] and the cluster id, answered by a
//! [`HelloReply`]; a mismatch is refused. A node given a secret for the caller's kind
//! answers with a challenge instead, and both sides prove the secret ([`auth`]
//! describes the proofs). One listening port serves both kinds of connection, and the
//! hello says which:
//!
//! - a **peer** connection then carries `raft::Message` frames one way only; answers
//!   travel on the responder's own outbound connection;
//! - a **client** connection carries [`ClientRequest`]s and [`ClientResponse`]s in
//!   *tagged* frames ([`tagged`]): each request carries an id and each response names
//!   the id it answers, so a connection may hold many requests at once and have them
//!   answered in the order they complete.
//!
//! `net` uses `raft`'s types, `kv`'s command types, `crypto` and `limits`, nothing else of this
//! crate.

pub mod auth;
mod error;
mod frame;
pub mod peer;
mod proto;
mod status;
pub mod tagged;

pub use auth::{generate_secret, Secret};
pub use error::{NetError, NetErrorKind};
pub use frame::{encode_frame, frame_buffered, read_frame, read_frame_or_skip, write_frame};
pub use peer::{check_addr, connect_with_timeout, normalize_addr};
pub use proto::{
    accept_hello, accept_hello_with, check_hello, client_handshake, ClientRequest, ClientResponse,
    Hello, HelloFrom, HelloProof, HelloReply, MemberInfo, NodeSecrets, AUTH_REFUSAL,
};
pub use status::StatusReport;
pub use tagged::{encode_tagged_frame, read_tagged_frame, write_tagged_frame};

/// Version of this protocol, sent in every [`Hello`]. 2: peers answer a request of an
/// older term with the `StaleTerm` message. 3: client frames are tagged with a request
/// id (pipelined connections), and `StatusReport` ends with
/// `client_requests_in_flight`.
pub const PROTOCOL_VERSION: u32 = 3;

/// Largest frame body accepted or sent (see [`crate::limits`] for how it relates to
/// the request, entry and record limits).
pub const MAX_FRAME_BYTES: u32 = crate::limits::MAX_FRAME_BYTES;

/// Largest request frame body a node reads from a client; bigger ones are skipped and
/// refused with [`ClientResponse::TooLarge`].
pub const MAX_CLIENT_FRAME_BYTES: u32 = crate::limits::MAX_CLIENT_FRAME_BYTES;

/// Largest hello or hello reply accepted: a handshake is small, and a stranger should
/// not make us allocate much before we know who it is.
pub const MAX_HELLO_BYTES: u32 = 64 << 10;

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tests;
