//! A connection thread: reads the hello, then serves either a peer (Raft messages in,
//! stepped into Raft) or a client (request, answer, request, ...).
//!
//! Waits on: the socket read. Woken by: the peer or client; at shutdown, by its socket
//! being closed. Takes the core lock briefly per message or request; never while
//! reading or writing the socket.

use std::io::{BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::client_ops;
use super::shared::Shared;
use crate::net::{
    self, ClientRequest, ClientResponse, Hello, HelloFrom, HelloReply, NetError, NetErrorKind,
};
use crate::raft::{Message, NodeId};

/// A hello must arrive this soon after connecting.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest hello accepted.
const MAX_HELLO_BYTES: u32 = 4096;

/// Serves one connection until it closes, errs or the node stops.
pub fn serve(shared: &Shared, stream: TcpStream, peer_addr: &str) {
    match serve_inner(shared, stream) {
        Ok(()) => {}
        Err(err) if matches!(err.kind(), NetErrorKind::Closed) || shared.is_stopping() => {}
        Err(err) => shared
            .log
            .info(format_args!("connection from {peer_addr} closed: {err}")),
    }
}

fn serve_inner(shared: &Shared, stream: TcpStream) -> Result<(), NetError> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(HELLO_TIMEOUT))?;
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = BufWriter::new(stream.try_clone()?);
    let hello: Hello = net::read_frame(&mut reader, MAX_HELLO_BYTES)?;
    if let Err(reason) = accept_hello(shared, &hello) {
        net::write_frame(
            &mut writer,
            &HelloReply::Refused {
                reason: reason.clone(),
            },
        )?;
        writer.flush()?;
        return Err(NetError::refused(reason));
    }
    net::write_frame(
        &mut writer,
        &HelloReply::Welcome {
            node_id: shared.config.id,
        },
    )?;
    writer.flush()?;
    stream.set_read_timeout(None)?;
    match hello.from {
        HelloFrom::Peer { id } => serve_peer(shared, id, &mut reader),
        HelloFrom::Client => serve_client(shared, &mut reader, &mut writer),
    }
}

/// Checks version, cluster and, for a peer, that its id is another member.
fn accept_hello(shared: &Shared, hello: &Hello) -> Result<(), String> {
    net::check_hello(hello, &shared.config.cluster)?;
    if let HelloFrom::Peer { id } = hello.from {
        let members = shared.config.peers.len() as NodeId;
        if id == 0 || id > members || id == shared.config.id {
            return Err(format!(
                "peer id {id} is not another member of this {members}-member cluster"
            ));
        }
    }
    Ok(())
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

/// Answers client requests, one at a time, until the client leaves.
fn serve_client(
    shared: &Shared,
    reader: &mut impl std::io::Read,
    writer: &mut BufWriter<TcpStream>,
) -> Result<(), NetError> {
    loop {
        let response = match net::read_frame::<_, ClientRequest>(reader, net::MAX_FRAME_BYTES) {
            Ok(request) => client_ops::handle(shared, request),
            // The whole frame was read, so the stream is still in step: answer and go on.
            Err(err) if matches!(err.kind(), NetErrorKind::Decode(_)) => ClientResponse::Error {
                message: format!("bad request: {err}"),
            },
            Err(err) => {
                if matches!(err.kind(), NetErrorKind::TooLarge { .. }) {
                    let message = format!("bad request: {err}");
                    let _ = net::write_frame(writer, &ClientResponse::Error { message });
                    let _ = writer.flush();
                }
                return Err(err);
            }
        };
        net::write_frame(writer, &response)?;
        writer.flush()?;
    }
}
