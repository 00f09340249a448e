//! A pipelined client connection: the connection thread reads requests (the *reader*)
//! and a second thread (the *writer*, `nI-conn-K-out`) writes the answers in the order
//! they complete. Between them sits the connection's [`ConnQueue`], bounded by
//! `--max-inflight-per-conn`. docs/CONCURRENCY.md ("Pipelined client connections")
//! gives the protocol, its waits and who wakes each.
//!
//! The reader waits on the socket read (bounded by the client idle timeout) and on the
//! queue's `room`; the writer on the queue's `changed` and on its socket write. Neither
//! holds a lock across I/O.

use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use super::client_ops::{self, Slot};
use super::conn_queue::{Batch, ConnQueue};
use super::request_metrics;
use super::shared::Shared;
use crate::net::{self, ClientRequest, ClientResponse, NetError, NetErrorKind};
use crate::sync::{thread, Arc};

/// Serves a client connection whose hello is done: starts its writer, reads and starts
/// requests until the client leaves, goes idle or breaks the protocol, then waits for
/// the writer to answer what is in flight.
pub fn serve(
    shared: &Arc<Shared>,
    reader: &mut BufReader<TcpStream>,
    stream: &TcpStream,
    conn_id: u64,
) -> Result<(), NetError> {
    let queue = ConnQueue::new(
        shared.config.max_inflight_per_conn,
        Arc::clone(&shared.client_requests_in_flight),
    );
    let out = stream.try_clone()?;
    let (shared2, queue2) = (Arc::clone(shared), Arc::clone(&queue));
    let writer = thread::Builder::new()
        .name(format!("n{}-conn-{conn_id}-out", shared.config.id))
        .spawn(move || write_answers(&shared2, &queue2, out))
        .map_err(NetError::io)?;
    let read = read_requests(shared, &queue, reader);
    queue.reader_done();
    if writer.join().is_err() {
        shared
            .log
            .error(format_args!("a client connection's writer thread panicked"));
    }
    read
}

/// The reader: one request at a time, while fewer than the limit are in flight.
fn read_requests(
    shared: &Shared,
    queue: &Arc<ConnQueue>,
    reader: &mut BufReader<TcpStream>,
) -> Result<(), NetError> {
    let mut next_tag = 0u64;
    loop {
        if !queue.wait_for_room() || shared.is_stopping() {
            return Ok(());
        }
        let read = net::read_tagged_frame::<_, ClientRequest>(
            reader,
            net::MAX_CLIENT_FRAME_BYTES,
            net::MAX_FRAME_BYTES,
        );
        let (id, request) = match read {
            Ok(frame) => frame,
            Err(err) if matches!(err.kind(), NetErrorKind::Timeout) => {
                if queue.in_flight() > 0 {
                    continue; // waiting for answers is not idle
                }
                shared
                    .log
                    .debug(format_args!("closing an idle client connection"));
                return Ok(());
            }
            Err(err) => return Err(err),
        };
        let started = Instant::now();
        let answer = match request {
            Ok(request) => {
                next_tag += 1;
                let op = request_metrics::op_of(&request);
                let slot = Slot {
                    queue,
                    tag: next_tag,
                    id,
                    op,
                    started,
                };
                match client_ops::start(shared, request, &slot) {
                    Some(answer) => {
                        request_metrics::record(shared, op, started, &answer);
                        answer
                    }
                    None => continue,
                }
            }
            Err(err) => match refusal(&err) {
                (answer, true) => answer,
                (answer, false) => {
                    // Too large even to skip: answer, then hang up.
                    queue.answer(id, answer);
                    return Err(err);
                }
            },
        };
        queue.answer(id, answer);
    }
}

/// The answer to a frame that was read but not decoded, and whether the stream is
/// still in step after it (if not, the connection closes once it is answered).
fn refusal(err: &NetError) -> (ClientResponse, bool) {
    match *err.kind() {
        NetErrorKind::Skipped { len, .. } => (client_ops::too_large(len), true),
        NetErrorKind::TooLarge { len, .. } => (client_ops::too_large(len), false),
        _ => {
            let message = format!("bad request: {err}");
            (ClientResponse::Error { message }, true)
        }
    }
}

/// The writer: answers batches until the reader is done and nothing is in flight, or
/// the socket fails (then it drops everything and shuts the socket down, which ends
/// the reader too).
fn write_answers(shared: &Shared, queue: &ConnQueue, mut out: TcpStream) {
    let mut buf = Vec::new();
    while let Some(batch) = queue.next_batch() {
        let n = batch.len();
        buf.clear();
        encode_batch(shared, batch, &mut buf);
        let written = out.write_all(&buf).and_then(|()| out.flush());
        if let Err(err) = written {
            shared.log.debug(format_args!(
                "a client connection broke while answering: {err}"
            ));
            close(shared, queue, &out);
            return;
        }
        queue.finished(n);
    }
    // The reader ended (or the queue was closed): nothing is in flight.
}

/// Builds the answers of `batch` and appends them as tagged frames to `buf`.
fn encode_batch(shared: &Shared, batch: Batch, buf: &mut Vec<u8>) {
    client_ops::forget(shared, &batch.expired);
    let answers = batch.answers.into_iter();
    let completed = batch.completed.into_iter().map(|entry| {
        let response = client_ops::finish(shared, entry.wait);
        request_metrics::record(shared, entry.op, entry.started, &response);
        (entry.id, response)
    });
    let expired = batch.expired.iter().map(|entry| {
        let response = client_ops::timed_out(shared, &entry.wait);
        request_metrics::record(shared, entry.op, entry.started, &response);
        (entry.id, response)
    });
    for (id, response) in answers.chain(completed).chain(expired) {
        if let Err(err) = net::encode_tagged_frame(buf, id, &response) {
            // An answer never nears the frame limit; say so rather than go silent.
            shared
                .log
                .error(format_args!("cannot encode an answer: {err}"));
            let fallback = ClientResponse::Error {
                message: format!("the answer could not be encoded: {err}"),
            };
            let _ = net::encode_tagged_frame(buf, id, &fallback);
        }
    }
}

/// The client is gone: drop every request in flight, forget those still waiting in
/// `PendingRequests`, and shut the socket down so the reader's read ends.
fn close(shared: &Shared, queue: &ConnQueue, out: &TcpStream) {
    let (waiting, _dropped) = queue.close();
    client_ops::forget(shared, &waiting);
    let _ = out.shutdown(Shutdown::Both);
}
