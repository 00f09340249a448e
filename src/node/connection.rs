//! A connection thread: reads the hello, then serves either a peer (Raft messages in,
//! stepped into Raft) or a client (as the reader of a pipelined connection, with a
//! writer thread of its own: `client_conn`).
//!
//! Waits on: the socket read, bounded by the hello timeout before the hello and by the
//! client idle timeout on a client connection. Woken by: the peer or client; the
//! timeout; its socket being closed (at shutdown, or by the listener's budgets). Takes
//! the core lock briefly per message or request; never while reading or writing the
//! socket.

use std::io::{BufReader, BufWriter};
use std::net::TcpStream;
use std::time::Duration;

use super::client_conn;
use super::shared::Shared;
use crate::net::{self, HelloFrom, NetError, NetErrorKind};
use crate::raft::{Message, NodeId};
use crate::sync::Arc;

/// A hello must arrive this soon after connecting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves connection `id` (of the registry) until it closes, errs or the node stops.
pub fn serve(shared: &Arc<Shared>, stream: TcpStream, peer_addr: &str, id: u64) {
    match serve_inner(shared, stream, id) {
        Ok(()) => {}
        Err(err) if matches!(err.kind(), NetErrorKind::Closed) || shared.is_stopping() => {}
        Err(err) if matches!(err.kind(), NetErrorKind::AuthFailed(_)) => shared
            .log
            .warn(format_args!("connection from {peer_addr} refused: {err}")),
        Err(err) => shared
            .log
            .info(format_args!("connection from {peer_addr} closed: {err}")),
    }
}

fn serve_inner(shared: &Arc<Shared>, stream: TcpStream, id: u64) -> Result<(), NetError> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(HELLO_TIMEOUT))?;
    stream.set_write_timeout(Some(HELLO_TIMEOUT))?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = BufWriter::new(stream.try_clone()?);
    let from = net::accept_hello_with(
        &mut reader,
        &mut writer,
        &shared.config.cluster,
        shared.config.id,
        &shared.config.secrets,
        |from| admit(shared, id, from),
    )?;
    match from {
        HelloFrom::Peer { id: peer, .. } => {
            stream.set_read_timeout(None)?;
            serve_peer(shared, peer, &mut reader)
        }
        HelloFrom::Client => {
            let idle = shared.config.client_idle_timeout();
            stream.set_read_timeout(idle)?;
            stream.set_write_timeout(idle)?;
            drop(writer);
            client_conn::serve(shared, &mut reader, &stream, id)
        }
    }
}

/// Checks that a peer is a member of the configuration with the data directory it
/// had when last heard from (`peers::admit`), then admits the connection within the
/// budgets of `listener`. `Err` is the refusal reason sent back.
fn admit(shared: &Shared, id: u64, from: &HelloFrom) -> Result<(), String> {
    let peer = match from {
        HelloFrom::Peer {
            id: peer,
            incarnation,
            addr,
        } => {
            super::peers::admit(shared, *peer, *incarnation, addr)?;
            Some(*peer)
        }
        HelloFrom::Client => None,
    };
    shared
        .lock_connections()
        .classify(id, peer, shared.config.max_clients)
}

/// Most messages stepped under one hold of the core lock.
const MAX_MESSAGES_PER_STEP: usize = 64;

/// Steps every Raft message from peer `from` into Raft. Frames that arrived together
/// (a replicator writes its whole batch at once) are stepped under one hold of the core
/// lock and dispatched once, so a burst of AppendEntries or responses costs one lock
/// round and one wake-up of each downstream thread, not one per message.
fn serve_peer(
    shared: &Shared,
    from: NodeId,
    reader: &mut BufReader<TcpStream>,
) -> Result<(), NetError> {
    shared
        .log
        .debug(format_args!("peer n{from} connected to us"));
    let mut batch = Vec::with_capacity(MAX_MESSAGES_PER_STEP);
    loop {
        batch.push(read_peer_message(shared, from, reader)?);
        while batch.len() < MAX_MESSAGES_PER_STEP && net::frame_buffered(reader.buffer()) {
            batch.push(read_peer_message(shared, from, reader)?);
        }
        let wakeups = {
            let mut core = shared.lock_core();
            if core.shutdown {
                return Ok(());
            }
            if super::members::is_removed(&core.raft, from) {
                // Hang up on a removed member: its next hello is refused saying why,
                // and it stops.
                return Err(NetError::refused(format!("n{from} was removed")));
            }
            let now = shared.now_ms();
            for message in batch.drain(..) {
                core.raft.step(message, now);
            }
            shared.dispatch_deferred(&mut core)
        };
        // A confirmed ReadIndex round releases many reads: wake them without the lock.
        wakeups.deliver(shared);
    }
}

/// Reads one Raft message and checks it is from `from` to us.
fn read_peer_message(
    shared: &Shared,
    from: NodeId,
    reader: &mut BufReader<TcpStream>,
) -> Result<Message, NetError> {
    let message: Message = net::read_frame(reader, net::MAX_FRAME_BYTES)?;
    if message.from != from || message.to != shared.config.id {
        return Err(NetError::refused(format!(
            "peer n{from} sent a message from n{} to n{}",
            message.from, message.to
        )));
    }
    Ok(message)
}
