//! The replicator thread of one peer: keeps one persistent TCP connection to that peer
//! and writes the Raft messages queued in its outbox (AppendEntries with entries,
//! heartbeats, votes, responses). Messages are one-way: the peer's answers arrive on
//! the connection the peer opened to us.
//!
//! Waits on: the peer's `Outbox` (its own lock and Condvar) with `wait_timeout`. Woken
//! by: new messages (entries proposed, commit advanced, heartbeat due, a response to
//! send), shutdown. Never takes the core lock; holds no lock while on the socket.
//! When the peer is unreachable it reconnects with exponential backoff and drops the
//! messages queued meanwhile — Raft resends what matters.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::members::REMOVED_REFUSAL;
use super::outbox::{Outbox, Take};
use super::shared::Shared;
use crate::net::{self, HelloFrom};
use crate::raft::{LogPosition, Message, MessageBody, NodeId};
use crate::storage::{self, SnapshotReader};
use crate::sync::atomic::Ordering;

/// Most messages written per wake-up before flushing.
const MAX_MESSAGES_PER_FLUSH: usize = 256;
/// First reconnect delay after a failure; doubles up to `MAX_BACKOFF`.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// Time allowed to connect and exchange the hello.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Write timeout for a small batch; larger batches get more (see `write_timeout`).
const BASE_WRITE_TIMEOUT: Duration = Duration::from_millis(200);
/// Largest send buffer kept between batches.
const MAX_KEPT_BUFFER_BYTES: usize = 4 << 20;

/// The connection state of one peer link.
struct Link {
    peer: NodeId,
    addr: String,
    stream: Option<TcpStream>,
    /// The write timeout last set on `stream` (setting it is a syscall; most batches
    /// are small and keep the base timeout).
    write_timeout: Option<Duration>,
    /// The encoded batch being sent; reused across sends to avoid an allocation each.
    out: Vec<u8>,
    backoff: Duration,
    next_attempt: Instant,
    /// True once a failure was logged, so an unreachable peer is logged once, not
    /// on every attempt.
    down_logged: bool,
    /// When the link last said hello or sent something, for the removal probe.
    active: Instant,
}

/// Runs until shutdown, or until the outbox is closed because the member was removed.
pub fn run(shared: &Shared, peer: NodeId, addr: String, outbox: &Outbox) {
    let mut link = Link {
        peer,
        addr,
        stream: None,
        write_timeout: None,
        out: Vec::new(),
        backoff: MIN_BACKOFF,
        next_attempt: Instant::now(),
        down_logged: false,
        active: Instant::now(),
    };
    let idle_wait = Duration::from_millis(shared.config.heartbeat_interval_ms);
    let traffic = shared.metrics.peer(peer);
    // The snapshot file of the transfer to this peer in progress, kept open.
    let mut snapshot_reader: Option<SnapshotReader> = None;
    loop {
        let messages = match outbox.wait_take(idle_wait, MAX_MESSAGES_PER_FLUSH) {
            Take::Closed => return,
            Take::TimedOut => {
                probe_if_removed(shared, &mut link);
                continue;
            }
            Take::Messages(m) => fill_snapshot_chunks(shared, &mut snapshot_reader, m),
        };
        log_dropped(shared, peer, outbox);
        if messages.is_empty() {
            continue;
        }
        if link.stream.is_none() && !connect(shared, &mut link) {
            outbox.clear();
            continue;
        }
        match send(&mut link, &messages) {
            Err(err) => {
                shared
                    .log
                    .info(format_args!("peer n{} lost: {err}", link.peer));
                link.stream = None;
                link.down_logged = true;
                link.next_attempt = Instant::now() + link.backoff;
            }
            Ok(sent) => {
                traffic.sent_bytes.add(sent as u64);
                link.active = Instant::now();
            }
        }
    }
}

/// Logs the messages the outbox dropped because its queue was full, if any (no lock
/// is held here: `take_dropped` released the outbox's).
fn log_dropped(shared: &Shared, peer: NodeId, outbox: &Outbox) {
    let dropped = outbox.take_dropped();
    if dropped > 0 {
        shared.log.warn(format_args!(
            "dropped the {dropped} oldest messages queued for peer n{peer}: its queue of \
             {} was full (Raft resends what matters)",
            super::outbox::MAX_QUEUED_MESSAGES
        ));
    }
}

/// Tries to (re)connect if the backoff allows; true if connected.
fn connect(shared: &Shared, link: &mut Link) -> bool {
    if Instant::now() < link.next_attempt || shared.is_stopping() {
        return false;
    }
    let result = net::connect_with_timeout(&link.addr, CONNECT_TIMEOUT).and_then(|mut stream| {
        net::client_handshake(
            &mut stream,
            &shared.config.cluster,
            HelloFrom::Peer {
                id: shared.config.id,
                incarnation: shared.incarnation,
                addr: shared.advertised_addr.clone(),
            },
            shared.config.secrets.peer.as_ref(),
        )?;
        Ok(stream)
    });
    link.active = Instant::now();
    match result {
        Ok(stream) => {
            shared.log.info(format_args!(
                "peer n{} connected at {}",
                link.peer, link.addr
            ));
            link.stream = Some(stream);
            link.write_timeout = None;
            link.backoff = MIN_BACKOFF;
            link.down_logged = false;
            true
        }
        Err(err) if err.to_string().contains(REMOVED_REFUSAL) => {
            // Only a member whose committed configuration removed us says so.
            let why = format!("n{} refused it: {err}", link.peer);
            if shared.note_removed(&why) {
                shared.log.error(format_args!(
                    "this member was removed from the cluster ({why}); stopping"
                ));
            }
            link.next_attempt = Instant::now() + MAX_BACKOFF;
            false
        }
        Err(err) => {
            if !link.down_logged {
                shared.log.info(format_args!(
                    "peer n{} unreachable at {}: {err}; retrying with backoff",
                    link.peer, link.addr
                ));
                link.down_logged = true;
            }
            link.next_attempt = Instant::now() + link.backoff;
            link.backoff = (link.backoff * 2).min(MAX_BACKOFF);
            false
        }
    }
}

/// A member may have been removed without hearing that the removal committed, or
/// without even receiving the entry: the leader stops sending to a member once its
/// removal commits. So a link idle for the maximum election timeout says hello again
/// if this member is not in its latest configuration, or if the link goes to the
/// leader it knows (a healthy follower answers its leader's heartbeats, so that link
/// is never idle): a member whose committed configuration removed us refuses the
/// hello saying so, and the node stops (`connect`).
fn probe_if_removed(shared: &Shared, link: &mut Link) {
    let every = Duration::from_millis(shared.config.election_timeout_max_ms);
    let suspect = shared.removal_suspected.load(Ordering::Relaxed)
        || shared.known_leader.load(Ordering::Relaxed) == link.peer;
    if !suspect || link.active.elapsed() < every {
        return;
    }
    link.stream = None;
    link.next_attempt = Instant::now();
    connect(shared, link);
}

/// Writes a batch of messages with one `write_all`: encoding them into one buffer
/// first turns N messages into one syscall and a few segments instead of N of each.
/// Returns the bytes written.
fn send(link: &mut Link, messages: &[Message]) -> Result<usize, net::NetError> {
    let Some(stream) = link.stream.as_mut() else {
        return Ok(0);
    };
    let bytes: usize = messages.iter().map(message_bytes).sum();
    let timeout = write_timeout(bytes);
    if link.write_timeout != Some(timeout) {
        stream
            .set_write_timeout(Some(timeout))
            .map_err(net::NetError::from)?;
        link.write_timeout = Some(timeout);
    }
    link.out.clear();
    for message in messages {
        net::encode_frame(&mut link.out, message)?;
    }
    crate::sync::assert_no_io_free_lock("sending to a peer");
    stream
        .write_all(&link.out)
        .map_err(net::NetError::io_mid_frame)?;
    let sent = link.out.len();
    if link.out.capacity() > MAX_KEPT_BUFFER_BYTES {
        // One huge catch-up batch should not pin its buffer for the link's lifetime.
        link.out = Vec::new();
    }
    Ok(sent)
}

/// Fills in the data of the InstallSnapshot chunks Raft asked for, from this node's
/// snapshot file, read without any lock (the file is only ever replaced by a rename).
/// `reader` keeps the file of the transfer in progress open, so the transfer can
/// finish after a newer snapshot replaced it. A chunk that cannot be served is
/// dropped; Raft retries, and after repeated timeouts starts over with its latest.
fn fill_snapshot_chunks(
    shared: &Shared,
    reader: &mut Option<SnapshotReader>,
    messages: Vec<Message>,
) -> Vec<Message> {
    let max = shared.config.snapshot_chunk_bytes;
    let mut out = Vec::with_capacity(messages.len());
    for mut message in messages {
        if let MessageBody::InstallSnapshot {
            last,
            offset,
            data,
            done,
            ..
        } = &mut message.body
        {
            match read_chunk(shared, reader, *last, *offset, max) {
                Ok(Some((bytes, end))) => {
                    *data = bytes;
                    *done = end;
                    if end {
                        // Let a replaced file's space go; a lost last chunk is
                        // served again if the file is still this snapshot.
                        *reader = None;
                    }
                }
                Ok(None) => continue,
                Err(err) => {
                    shared
                        .log
                        .warn(format_args!("cannot read the snapshot to send: {err}"));
                    *reader = None;
                    continue;
                }
            }
        }
        out.push(message);
    }
    out
}

/// A chunk of the snapshot at `last`, from the open reader if it is that snapshot,
/// else from a newly opened one.
fn read_chunk(
    shared: &Shared,
    reader: &mut Option<SnapshotReader>,
    last: LogPosition,
    offset: u64,
    max: usize,
) -> Result<Option<(Vec<u8>, bool)>, storage::StorageError> {
    if reader.as_ref().map(SnapshotReader::last) != Some(last) {
        *reader = SnapshotReader::open(&shared.config.data_dir, last)?;
    }
    match reader.as_mut() {
        Some(r) => r.read_chunk(offset, max),
        None => Ok(None),
    }
}

/// Approximate size of a message, to scale the write timeout.
fn message_bytes(message: &Message) -> usize {
    match &message.body {
        MessageBody::AppendEntries { entries, .. } => {
            64 + entries.iter().map(|e| e.size_bytes()).sum::<usize>()
        }
        MessageBody::InstallSnapshot { data, .. } => 64 + data.len(),
        MessageBody::ForwardProposal { data, .. } => 64 + data.len(),
        _ => 64,
    }
}

/// 200 ms for a heartbeat, plus 1 ms per 64 KiB for a large batch (a slow peer gets
/// time proportional to the data, a dead one is detected quickly).
fn write_timeout(bytes: usize) -> Duration {
    BASE_WRITE_TIMEOUT + Duration::from_millis((bytes / (64 * 1024)) as u64)
}
