//! The messages of the handshake and of client connections.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde::{Deserialize, Serialize};

use super::error::{NetError, NetErrorKind};
use super::frame::{read_frame, write_frame};
use super::status::StatusReport;
use super::{MAX_HELLO_BYTES, PROTOCOL_VERSION};
use crate::kv::{CommandResult, Request};
use crate::raft::NodeId;

/// The first frame on every connection, sent by the side that connected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's [`PROTOCOL_VERSION`].
    pub version: u32,
    /// The cluster the sender belongs to or wants (`--cluster`, default `raftkv`).
    pub cluster: String,
    /// Who is calling, which decides what the connection carries next.
    pub from: HelloFrom,
}

/// The kind of connection a [`Hello`] opens.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloFrom {
    /// A member; `raft::Message` frames follow, one way.
    Peer {
        /// The sender's id (its position in `--peers`).
        id: NodeId,
    },
    /// A client; request/response pairs follow.
    Client,
}

/// The answer to a [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Accepted by the node with this id.
    Welcome {
        /// The answering node's id.
        node_id: NodeId,
    },
    /// Refused; the connection is closed after this frame.
    Refused {
        /// Why, for a human.
        reason: String,
    },
}

/// What a client asks, one at a time on its connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientRequest {
    /// Replicate a write (answered once it is applied).
    Write(Request),
    /// Read a key: linearizable (ReadIndex) unless `stale`.
    Get {
        /// The key.
        key: String,
        /// Read the contacted node's state machine as is, without confirming
        /// leadership; served by any member.
        stale: bool,
    },
    /// Report the contacted node's state (never redirected).
    Status,
}

/// The answer to a [`ClientRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientResponse {
    /// The write was applied with this result.
    Written(CommandResult),
    /// The value read (`None`: no such key).
    Value(Option<String>),
    /// The node's state.
    Status(StatusReport),
    /// This node is not the leader; try the one named, if known.
    NotLeader {
        /// The leader's id, if known.
        leader_id: Option<NodeId>,
        /// The leader's address as this node reaches it, if known.
        leader_addr: Option<String>,
    },
    /// The request could not be served now.
    Unavailable {
        /// Why, for a human.
        reason: String,
        /// True if a write may have entered the log (e.g. leadership lost or a timeout
        /// while waiting for its commit): it may still be applied.
        outcome_unknown: bool,
    },
    /// The request was refused for good (e.g. malformed).
    Error {
        /// Why, for a human.
        message: String,
    },
    /// The request was refused for good, before it was proposed: it is larger than a
    /// node accepts (`kv::MAX_REQUEST_BYTES`). Nothing was applied.
    TooLarge {
        /// The size of the encoded request, or of its frame if that was over the
        /// client frame limit.
        len: u64,
        /// The limit: the largest encoded request a node accepts.
        max: u64,
    },
    /// The write was refused by the state machine because the client's session
    /// expired (evicted by newer clients): it was not applied now, but it may be a
    /// retry of a write applied before, so its outcome is unknown. The client must
    /// open a new session for later writes.
    SessionExpired {
        /// Why, for a human.
        message: String,
    },
}

/// Server side: checks a hello's version and cluster. `Err` is the refusal reason.
pub fn check_hello(hello: &Hello, cluster: &str) -> Result<(), String> {
    if hello.version != PROTOCOL_VERSION {
        return Err(format!(
            "protocol version {} not supported (this node speaks {PROTOCOL_VERSION})",
            hello.version
        ));
    }
    if hello.cluster != cluster {
        return Err(format!(
            "cluster {:?} does not match this node's cluster {cluster:?}",
            hello.cluster
        ));
    }
    Ok(())
}

/// Connecting side: sends a [`Hello`] and reads the [`HelloReply`]. Returns the
/// answering node's id; a refusal is [`NetErrorKind::Refused`] with its reason.
pub fn client_handshake(
    stream: &mut TcpStream,
    cluster: &str,
    from: HelloFrom,
) -> Result<NodeId, NetError> {
    let hello = Hello {
        version: PROTOCOL_VERSION,
        cluster: cluster.to_string(),
        from,
    };
    write_frame(stream, &hello)?;
    match read_frame(stream, MAX_HELLO_BYTES)? {
        HelloReply::Welcome { node_id } => Ok(node_id),
        HelloReply::Refused { reason } => Err(NetError::new(NetErrorKind::Refused(reason))),
    }
}

/// Accepting side: reads the [`Hello`], checks it with [`check_hello`] and answers
/// `Welcome { node_id }` or `Refused`. Returns who is calling; a refused hello is
/// [`NetErrorKind::Refused`] (the refusal was sent; close the connection).
pub fn accept_hello(
    stream: &mut TcpStream,
    cluster: &str,
    node_id: NodeId,
) -> Result<HelloFrom, NetError> {
    let mut reader = stream.try_clone().map_err(NetError::io)?;
    accept_hello_with(&mut reader, stream, cluster, node_id, |_| Ok(()))
}

/// [`accept_hello`] on a separate reader and writer, with a further check: `admit`
/// sees who is calling once version and cluster passed, and may refuse with a reason
/// (a node checks a peer's id and its connection budgets here).
pub fn accept_hello_with<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    cluster: &str,
    node_id: NodeId,
    admit: impl FnOnce(&HelloFrom) -> Result<(), String>,
) -> Result<HelloFrom, NetError> {
    let hello: Hello = read_frame(reader, MAX_HELLO_BYTES)?;
    match check_hello(&hello, cluster).and_then(|()| admit(&hello.from)) {
        Ok(()) => {
            write_frame(writer, &HelloReply::Welcome { node_id })?;
            Ok(hello.from)
        }
        Err(reason) => {
            let refusal = HelloReply::Refused {
                reason: reason.clone(),
            };
            // Best effort: the caller closes the connection either way.
            let _ = write_frame(writer, &refusal);
            Err(NetError::new(NetErrorKind::Refused(reason)))
        }
    }
}
