//! [`Pipeline`]: one connection to one node that keeps many requests in flight.
//!
//! Each request gets an id; [`Pipeline::recv`] returns answers as the node completes
//! them, each with the id of the request it answers, so they may come in another order
//! than the requests went. Unlike [`super::Client`], a pipeline neither finds the
//! leader nor retries: a redirect or "unavailable" is handed to the caller as it
//! came. Requests are buffered until the caller waits for an answer (or calls
//! [`Pipeline::flush`]), so a burst of sends costs one system call.
//!
//! Exactly-once writes: the session table applies a client's writes in sequence, so a
//! caller keeps at most one write in flight per session (`client_id`), as `raftkv
//! bench --conns` does with one session per logical client, and retries a write with
//! the same `(client_id, seq)`.

use std::collections::HashSet;
use std::io::{BufReader, BufWriter, Write};
use std::net::TcpStream;

use super::api::ClientOptions;
use super::error::{ClientError, ClientErrorKind};
use crate::net::peer::connect_with_timeout;
use crate::net::{
    client_handshake, encode_tagged_frame, frame_buffered, read_tagged_frame, ClientRequest,
    ClientResponse, HelloFrom, NetError, MAX_FRAME_BYTES,
};
use crate::raft::NodeId;

/// Default of the window: the node's default `--max-inflight-per-conn`.
pub const DEFAULT_WINDOW: usize = 128;

/// A connection to one node with up to `window` requests in flight.
pub struct Pipeline {
    /// The socket's read side, through a buffer: a burst of answers costs one `recv`.
    reader: BufReader<TcpStream>,
    /// The socket's write side; requests wait here until `flush`.
    writer: BufWriter<TcpStream>,
    /// Ids sent and not yet answered. Invariant: `in_flight.len() <= window`.
    in_flight: HashSet<u64>,
    /// Most requests in flight.
    window: usize,
    /// The id of the last request sent.
    last_id: u64,
    /// The address it was opened with.
    addr: String,
    /// The id of the node that welcomed us.
    node_id: NodeId,
}

impl Pipeline {
    /// Connects to `addr` and says hello (proving `opts.secret` if any). Reads and
    /// writes time out after `opts.timeout`. `window` (at least 1) bounds the requests
    /// in flight; keep it at or below the node's `--max-inflight-per-conn`, or the node
    /// stops reading until it has answered some.
    pub fn connect(
        addr: &str,
        opts: &ClientOptions,
        window: usize,
    ) -> Result<Pipeline, ClientError> {
        assert!(window >= 1, "a pipeline's window must be at least 1");
        let unavailable = |e: NetError| {
            ClientError::new(
                ClientErrorKind::Unavailable {
                    outcome_unknown: false,
                },
                format!("node {addr} unavailable: {e}"),
            )
        };
        let mut stream = connect_with_timeout(addr, opts.timeout).map_err(unavailable)?;
        let node_id = client_handshake(
            &mut stream,
            &opts.cluster,
            HelloFrom::Client,
            opts.secret.as_ref(),
        )
        .map_err(|e| {
            ClientError::new(
                ClientErrorKind::Protocol,
                format!("handshake with {addr}: {e}"),
            )
        })?;
        let timeouts = stream
            .set_read_timeout(Some(opts.timeout))
            .and_then(|()| stream.set_write_timeout(Some(opts.timeout)));
        timeouts.map_err(|e| unavailable(NetError::io(e)))?;
        let write_half = stream
            .try_clone()
            .map_err(|e| unavailable(NetError::io(e)))?;
        Ok(Pipeline {
            reader: BufReader::with_capacity(64 << 10, stream),
            writer: BufWriter::with_capacity(64 << 10, write_half),
            in_flight: HashSet::with_capacity(window),
            window,
            last_id: 0,
            addr: addr.to_string(),
            node_id,
        })
    }

    /// The address it was opened with.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The id of the node it is connected to.
    pub fn node_id(&self) -> NodeId {
        self.node_id
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Queues `request` and returns its id. Refused (nothing sent) when `window`
    /// requests are in flight: `recv` one first.
    pub fn send(&mut self, request: &ClientRequest) -> Result<u64, ClientError> {
        if self.in_flight.len() >= self.window {
            return Err(ClientError::new(
                ClientErrorKind::Other,
                format!(
                    "{} requests are in flight, the window: receive an answer first",
                    self.window
                ),
            ));
        }
        let id = self.last_id + 1;
        let mut frame = Vec::new();
        encode_tagged_frame(&mut frame, id, request)
            .map_err(|e| ClientError::new(ClientErrorKind::Other, format!("request: {e}")))?;
        self.writer
            .write_all(&frame)
            .map_err(|e| self.broken(NetError::io(e)))?;
        self.last_id = id;
        self.in_flight.insert(id);
        Ok(id)
    }

    /// Puts every queued request on the wire.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        self.writer
            .flush()
            .map_err(|e| self.broken(NetError::io(e)))
    }

    /// Waits for the next answer (flushing queued requests first unless an answer is
    /// already buffered) and returns it with the id of the request it answers. An error
    /// leaves the connection unusable: open a new one.
    pub fn recv(&mut self) -> Result<(u64, ClientResponse), ClientError> {
        if self.in_flight.is_empty() {
            return Err(ClientError::new(
                ClientErrorKind::Other,
                "no request is in flight to wait for",
            ));
        }
        if !frame_buffered(self.reader.buffer()) {
            self.flush()?;
        }
        let (id, response) =
            read_tagged_frame(&mut self.reader, MAX_FRAME_BYTES, 0).map_err(|e| self.broken(e))?;
        let response = response.map_err(|e| self.broken(e))?;
        if !self.in_flight.remove(&id) {
            return Err(self.broken(NetError::refused(format!(
                "an answer to request {id}, which is not in flight"
            ))));
        }
        Ok((id, response))
    }

    /// The error for a broken connection: a write in flight may or may not be applied.
    fn broken(&self, e: NetError) -> ClientError {
        ClientError::new(
            ClientErrorKind::Unavailable {
                outcome_unknown: !self.in_flight.is_empty(),
            },
            format!(
                "connection to {} lost with {} requests in flight: {e}",
                self.addr,
                self.in_flight.len()
            ),
        )
    }
}
