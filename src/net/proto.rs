//! The messages of the handshake and of client connections.

use std::io::{Read, Write};
use std::net::TcpStream;

use serde::{Deserialize, Serialize};

use super::auth::{fresh_nonce, Mac, Nonce, PeerClaim, Secret, Side, Transcript};
use super::error::{NetError, NetErrorKind};
use super::frame::{read_frame, write_frame};
use super::status::StatusReport;
use super::{MAX_HELLO_BYTES, PROTOCOL_VERSION};
use crate::kv::{CommandResult, Request};
use crate::raft::{MembershipChange, NodeId};

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
        /// The sender's id.
        id: NodeId,
        /// The random incarnation of the sender's data directory: a member whose
        /// directory was wiped comes back with another, and is refused.
        incarnation: u64,
        /// Where the sender listens, as it tells others to reach it (used by a member
        /// that knows no other address for it, such as one that just joined).
        addr: String,
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
    /// The node demands proof of the secret for this kind of connection: answer with a
    /// [`HelloProof`].
    Challenge {
        /// The answering node's id.
        node_id: NodeId,
        /// The node's fresh nonce.
        nonce: Nonce,
    },
    /// The connector's proof was accepted, and this is the node's own proof.
    Proven {
        /// The node's proof over the same transcript.
        mac: Mac,
    },
}

/// The connector's answer to a [`HelloReply::Challenge`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloProof {
    /// The connector's fresh nonce.
    pub nonce: Nonce,
    /// The connector's proof (see `net::auth`).
    pub mac: Mac,
}

/// The secrets a node demands of connections, per kind; `None` admits without proof.
#[derive(Clone, Debug, Default)]
pub struct NodeSecrets {
    /// Demanded of peers (`--peer-secret-file`).
    pub peer: Option<Secret>,
    /// Demanded of clients (`--client-secret-file`).
    pub client: Option<Secret>,
}

/// The refusal a connector gets whatever failed in the proof (a wrong secret, a
/// replayed proof, a malformed one): nothing that helps a guesser.
pub const AUTH_REFUSAL: &str = "authentication failed";

/// What a client asks. It travels in a tagged frame (`net::tagged`) whose id the
/// answer repeats; a connection may carry many at once.
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
    /// Hand leadership to `target`, or (`None`) to the voter whose log is the most up
    /// to date (thesis §3.10). Answered by [`ClientResponse::TransferLeader`] once the
    /// leader has started the transfer (or refused it); the client then waits for the
    /// target to lead.
    TransferLeader {
        /// The voter that is to lead.
        target: Option<NodeId>,
    },
    /// List the members of the leader's latest configuration.
    Members,
    /// Make one membership change; answered once it is committed.
    ChangeMembers(MembershipChange),
}

/// One member, as `member list` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Its id.
    pub id: NodeId,
    /// True for a voter, false for a learner.
    pub voter: bool,
    /// Its address as the answering leader reaches it.
    pub addr: String,
}

/// The answer to a [`ClientRequest`], in a tagged frame with the request's id.
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
    /// The answer to [`ClientRequest::TransferLeader`]: `Ok(id)`, the leader started
    /// handing leadership to `id` (or `id` already leads); `Err(reason)`, the transfer
    /// was refused (a learner, an unknown id, another transfer in progress) and nothing
    /// changed.
    TransferLeader(Result<NodeId, String>),
    /// The members of the latest configuration, ascending by id (the answer to
    /// `Members`, and to a `ChangeMembers` once the change is committed).
    Members(Vec<MemberInfo>),
    /// The membership change was refused; nothing was appended.
    MemberRefused {
        /// Why, for a human.
        reason: String,
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

/// Connecting side: sends a [`Hello`] and reads the [`HelloReply`], proving `secret`
/// if the node demands it. Returns the answering node's id; a refusal is
/// [`NetErrorKind::Refused`] with its reason. With a `secret`, a node that does not
/// demand one, or fails to prove it, is refused too (no silent downgrade).
pub fn client_handshake(
    stream: &mut TcpStream,
    cluster: &str,
    from: HelloFrom,
    secret: Option<&Secret>,
) -> Result<NodeId, NetError> {
    let hello = Hello {
        version: PROTOCOL_VERSION,
        cluster: cluster.to_string(),
        from,
    };
    write_frame(stream, &hello)?;
    let (node_id, acceptor_nonce) = match read_frame(stream, MAX_HELLO_BYTES)? {
        HelloReply::Welcome { node_id } => {
            return match secret {
                None => Ok(node_id),
                Some(_) => Err(NetError::refused(format!(
                    "node n{node_id} did not authenticate itself: it runs without the \
                     secret this side was given"
                ))),
            };
        }
        HelloReply::Challenge { node_id, nonce } => (node_id, nonce),
        HelloReply::Refused { reason } => return Err(NetError::refused(reason)),
        HelloReply::Proven { .. } => return Err(unexpected("a proof before a challenge")),
    };
    let Some(secret) = secret else {
        return Err(NetError::refused(format!(
            "node n{node_id} demands a secret and this side was given none"
        )));
    };
    let connector_nonce = fresh_nonce();
    let transcript = Transcript {
        version: PROTOCOL_VERSION,
        cluster,
        peer: peer_of(&hello.from),
        node_id,
        acceptor_nonce: &acceptor_nonce,
        connector_nonce: &connector_nonce,
    };
    let proof = HelloProof {
        nonce: connector_nonce,
        mac: transcript.prove(secret.current(), Side::Connector),
    };
    write_frame(stream, &proof)?;
    match read_frame(stream, MAX_HELLO_BYTES)? {
        HelloReply::Proven { mac } => {
            let expected = transcript.prove(secret.current(), Side::Acceptor);
            if crate::crypto::macs_equal(&expected, &mac) {
                Ok(node_id)
            } else {
                Err(NetError::refused(format!(
                    "node n{node_id} failed to prove the secret"
                )))
            }
        }
        HelloReply::Refused { reason } => Err(NetError::refused(reason)),
        _ => Err(unexpected(
            "another hello reply instead of the node's proof",
        )),
    }
}

fn unexpected(what: &str) -> NetError {
    NetError::new(NetErrorKind::Decode(format!(
        "handshake out of order: {what}"
    )))
}

/// What a member's hello claims, for the proofs to bind (`None` for a client).
fn peer_of(from: &HelloFrom) -> Option<PeerClaim<'_>> {
    match from {
        HelloFrom::Peer {
            id,
            incarnation,
            addr,
        } => Some(PeerClaim {
            id: *id,
            incarnation: *incarnation,
            addr,
        }),
        HelloFrom::Client => None,
    }
}

/// Accepting side: reads the [`Hello`], checks it with [`check_hello`] and answers
/// `Welcome { node_id }` or `Refused`, demanding no secret. Returns who is calling; a
/// refused hello is [`NetErrorKind::Refused`] (the refusal was sent; close the
/// connection).
pub fn accept_hello(
    stream: &mut TcpStream,
    cluster: &str,
    node_id: NodeId,
) -> Result<HelloFrom, NetError> {
    let mut reader = stream.try_clone().map_err(NetError::io)?;
    let secrets = NodeSecrets::default();
    accept_hello_with(&mut reader, stream, cluster, node_id, &secrets, |_| Ok(()))
}

/// [`accept_hello`] on a separate reader and writer, demanding proof of `secrets` for
/// the caller's kind, with a further check: `admit` sees who is calling once version,
/// cluster and proof passed, and may refuse with a reason (a node checks a peer's id
/// and its connection budgets here). A failed proof is answered with the generic
/// [`AUTH_REFUSAL`] and returned as [`NetErrorKind::AuthFailed`] with the detail.
pub fn accept_hello_with<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    cluster: &str,
    node_id: NodeId,
    secrets: &NodeSecrets,
    admit: impl FnOnce(&HelloFrom) -> Result<(), String>,
) -> Result<HelloFrom, NetError> {
    let hello: Hello = read_frame(reader, MAX_HELLO_BYTES)?;
    if let Err(reason) = check_hello(&hello, cluster) {
        return Err(refuse(writer, reason));
    }
    let secret = match hello.from {
        HelloFrom::Peer { .. } => secrets.peer.as_ref(),
        HelloFrom::Client => secrets.client.as_ref(),
    };
    let proof = match secret {
        Some(secret) => Some(demand_proof(reader, writer, &hello, node_id, secret)?),
        None => None,
    };
    if let Err(reason) = admit(&hello.from) {
        return Err(refuse(writer, reason));
    }
    let reply = match proof {
        Some(mac) => HelloReply::Proven { mac },
        None => HelloReply::Welcome { node_id },
    };
    write_frame(writer, &reply)?;
    Ok(hello.from)
}

/// Sends a challenge and checks the connector's proof; returns this node's own proof
/// (under the key the connector proved) to send once the connection is admitted.
fn demand_proof<R: Read, W: Write>(
    reader: &mut R,
    writer: &mut W,
    hello: &Hello,
    node_id: NodeId,
    secret: &Secret,
) -> Result<Mac, NetError> {
    let acceptor_nonce = fresh_nonce();
    write_frame(
        writer,
        &HelloReply::Challenge {
            node_id,
            nonce: acceptor_nonce,
        },
    )?;
    writer.flush().map_err(NetError::io)?;
    let proof: HelloProof = match read_frame(reader, MAX_HELLO_BYTES) {
        Ok(proof) => proof,
        Err(e) if matches!(e.kind(), NetErrorKind::Decode(_)) => {
            let _ = refuse(writer, AUTH_REFUSAL.to_string());
            return Err(auth_failed(hello, "its proof did not decode"));
        }
        Err(e) if matches!(e.kind(), NetErrorKind::Closed) => {
            return Err(auth_failed(
                hello,
                "it closed the connection instead of proving",
            ));
        }
        Err(e) => return Err(e),
    };
    let transcript = Transcript {
        version: hello.version,
        cluster: &hello.cluster,
        peer: peer_of(&hello.from),
        node_id,
        acceptor_nonce: &acceptor_nonce,
        connector_nonce: &proof.nonce,
    };
    match secret.verify(&transcript, Side::Connector, &proof.mac) {
        Some(key) => Ok(transcript.prove(key, Side::Acceptor)),
        None => {
            let _ = refuse(writer, AUTH_REFUSAL.to_string());
            Err(auth_failed(hello, "wrong proof"))
        }
    }
}

fn auth_failed(hello: &Hello, why: &str) -> NetError {
    let who = match hello.from {
        HelloFrom::Peer { id, .. } => format!("a peer claiming id {id}"),
        HelloFrom::Client => "a client".to_string(),
    };
    NetError::new(NetErrorKind::AuthFailed(format!("{who}: {why}")))
}

/// Sends a refusal (best effort: the caller closes the connection either way) and
/// returns it as an error.
fn refuse<W: Write>(writer: &mut W, reason: String) -> NetError {
    let _ = write_frame(
        writer,
        &HelloReply::Refused {
            reason: reason.clone(),
        },
    );
    let _ = writer.flush();
    NetError::refused(reason)
}
