//! `ConnQueue`: the in-flight table of one pipelined client connection, between its
//! reader thread (which registers requests), its writer thread (which answers them)
//! and whoever completes a request (the applier, a peer connection thread, the timer,
//! `dispatch`, shutdown). docs/CONCURRENCY.md ("Pipelined client connections") tells
//! the whole protocol.
//!
//! Bounded: at most `limit` requests are in flight (registered, completed or answered
//! at once, and not yet written); the reader waits on `room` before it reads another.
//! The lock is a leaf, held for a few pushes or pops and never across I/O, so a
//! completer never blocks on a slow client. Waits: the writer on `changed` (woken by
//! `ready`, `answer`, `reader_done`, or its earliest deadline), the reader on `room`
//! (woken by `finished` and `close`). Both are notified only while their thread waits
//! (a flag under the lock), after unlocking.

use std::collections::BTreeMap;
use std::time::Instant;

use super::completion::Completion;
use super::pending::{ReadOutcome, WriteOutcome};
use crate::net::ClientResponse;
use crate::raft::LogPosition;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, Condvar, Mutex, MutexGuard};

/// What a registered request waits for.
pub enum Wait {
    /// A write proposed at `position`.
    Write {
        /// Where it was proposed (to forget it if it times out).
        position: LogPosition,
        /// Filled in by the applier, a later proposal at its index, or shutdown.
        done: Completion<WriteOutcome>,
    },
    /// A write forwarded to the leader under this member's number `id`.
    Forward {
        /// The forward's number (to forget it if it times out).
        id: u64,
        /// Filled in once this member applied the write, or its fate is known.
        done: Completion<WriteOutcome>,
    },
    /// A linearizable read of `key` registered under `read_id`.
    Read {
        /// Raft's id of the read (to forget it if it times out).
        read_id: u64,
        /// The key to read once the read is confirmed and applied.
        key: String,
        /// Filled in when the read may be served, or fails.
        done: Completion<ReadOutcome>,
    },
}

/// A registered request: the client's id for it, its deadline and what it waits for.
pub struct Entry {
    /// The id the client gave the request; the answer repeats it.
    pub id: u64,
    /// When the node gives up waiting and answers that it timed out.
    pub deadline: Instant,
    /// What it waits for.
    pub wait: Wait,
    /// The kind of request, for the metrics.
    pub op: crate::metrics::ClientOp,
    /// When it was read, for the latency metric.
    pub started: Instant,
}

/// What the writer takes in one go.
#[derive(Default)]
pub struct Batch {
    /// Answers decided by the reader: (client's id, response).
    pub answers: Vec<(u64, ClientResponse)>,
    /// Registered requests whose completion was filled.
    pub completed: Vec<Entry>,
    /// Registered requests whose deadline passed first.
    pub expired: Vec<Entry>,
}

impl Batch {
    /// How many requests it answers.
    pub fn len(&self) -> usize {
        self.answers.len() + self.completed.len() + self.expired.len()
    }

    /// True if it answers none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The state under the queue's lock.
#[derive(Default)]
struct State {
    /// Requests registered or answered and not yet written (or dropped).
    /// Invariant: `in_flight <= limit` and `in_flight >= waiting + ready + answers`.
    in_flight: usize,
    /// Registered requests by tag; tags grow, and all share one timeout, so the first
    /// has the earliest deadline.
    waiting: BTreeMap<u64, Entry>,
    /// Tags of `waiting` whose completion was filled, in that order.
    ready: Vec<u64>,
    /// Answers the reader decided.
    answers: Vec<(u64, ClientResponse)>,
    /// The reader reads no more requests.
    reader_done: bool,
    /// The writer stopped (the socket failed): everything is dropped.
    closed: bool,
    /// The writer waits on `changed`.
    writer_waiting: bool,
    /// The reader waits on `room`.
    reader_waiting: bool,
}

/// The in-flight table of one client connection (see the module doc).
pub struct ConnQueue {
    /// Most requests in flight (`--max-inflight-per-conn`).
    limit: usize,
    /// Guards everything else; a leaf lock.
    state: Mutex<State>,
    /// Paired with `state`: the writer waits for something to answer.
    changed: Condvar,
    /// Paired with `state`: the reader waits for a free slot.
    room: Condvar,
    /// The node's count of client requests in flight over every connection (status
    /// `client_requests_in_flight`): changed with `in_flight`, under the lock.
    total: Arc<AtomicU64>,
}

impl ConnQueue {
    /// An empty queue holding at most `limit` (at least 1) requests in flight, which it
    /// also counts in `total`.
    pub fn new(limit: usize, total: Arc<AtomicU64>) -> Arc<ConnQueue> {
        assert!(limit >= 1, "a connection must be able to hold one request");
        Arc::new(ConnQueue {
            limit,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            room: Condvar::new(),
            total,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(_) => panic!("connection queue poisoned: a thread panicked while holding it"),
        }
    }

    /// Reader: waits until fewer than `limit` requests are in flight. False if the
    /// writer closed the queue (the connection is over).
    pub fn wait_for_room(&self) -> bool {
        let mut state = self.lock();
        while !state.closed && state.in_flight >= self.limit {
            state.reader_waiting = true;
            state = match self.room.wait(state) {
                Ok(guard) => guard,
                Err(_) => panic!("connection queue poisoned"),
            };
            state.reader_waiting = false;
        }
        !state.closed
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    /// Reader: queues an answer to the request the client called `id`. False (and
    /// nothing queued) if the queue is closed.
    pub fn answer(&self, id: u64, response: ClientResponse) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.in_flight += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        state.answers.push((id, response));
        self.wake_writer(state);
        true
    }

    /// Reader, holding `core`: registers a request under `tag` (larger than every tag
    /// before it). False (and nothing registered) if the queue is closed: the caller
    /// must then not leave its completion in `PendingRequests`.
    pub fn register(&self, tag: u64, entry: Entry) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        debug_assert!(state.waiting.last_key_value().is_none_or(|(&t, _)| t < tag));
        state.in_flight += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        state.waiting.insert(tag, entry);
        true
    }

    /// A completion hook: the request registered under `tag` was decided. A tag no
    /// longer waiting (answered as timed out, or dropped) is ignored.
    pub fn ready(&self, tag: u64) {
        let mut state = self.lock();
        if state.closed || !state.waiting.contains_key(&tag) {
            return;
        }
        state.ready.push(tag);
        self.wake_writer(state);
    }

    /// Reader: it reads no more requests; the writer ends once nothing is in flight.
    pub fn reader_done(&self) {
        let mut state = self.lock();
        state.reader_done = true;
        self.wake_writer(state);
    }

    /// Notifies the writer after releasing the lock, if it waits.
    fn wake_writer(&self, state: MutexGuard<'_, State>) {
        let wake = state.writer_waiting;
        drop(state);
        if wake {
            self.changed.notify_one();
        }
    }

    /// Writer: waits for answers, completed requests or passed deadlines and takes them
    /// all. `None` once the queue is closed, or the reader is done and nothing is in
    /// flight.
    pub fn next_batch(&self) -> Option<Batch> {
        let mut state = self.lock();
        loop {
            if state.closed {
                return None;
            }
            let now = Instant::now();
            let batch = take_batch(&mut state, now);
            if !batch.is_empty() {
                return Some(batch);
            }
            if state.reader_done && state.in_flight == 0 {
                return None;
            }
            let earliest = state.waiting.values().next().map(|e| e.deadline);
            state.writer_waiting = true;
            // Spurious wake-ups and timeouts both loop back and look again.
            state = match earliest {
                Some(deadline) => match self.changed.wait_timeout(state, deadline - now) {
                    Ok((guard, _)) => guard,
                    Err(_) => panic!("connection queue poisoned"),
                },
                None => match self.changed.wait(state) {
                    Ok(guard) => guard,
                    Err(_) => panic!("connection queue poisoned"),
                },
            };
            state.writer_waiting = false;
        }
    }

    /// Writer: `n` requests of its last batch were answered; their slots are free.
    pub fn finished(&self, n: usize) {
        let mut state = self.lock();
        assert!(
            n <= state.in_flight,
            "answered {n} requests with only {} in flight",
            state.in_flight
        );
        state.in_flight -= n;
        self.total.fetch_sub(n as u64, Ordering::Relaxed);
        let wake = state.reader_waiting;
        drop(state);
        if wake {
            self.room.notify_one();
        }
    }

    /// Writer: the client is gone. Closes the queue and returns the requests still
    /// waiting (for the caller to forget in `PendingRequests`) and how many requests
    /// were in flight (all dropped now).
    pub fn close(&self) -> (Vec<Entry>, usize) {
        let mut state = self.lock();
        state.closed = true;
        let dropped = std::mem::take(&mut state.in_flight);
        self.total.fetch_sub(dropped as u64, Ordering::Relaxed);
        let waiting = std::mem::take(&mut state.waiting).into_values().collect();
        state.ready.clear();
        state.answers.clear();
        let wake = state.reader_waiting;
        drop(state);
        if wake {
            self.room.notify_one();
        }
        (waiting, dropped)
    }
}

/// Takes the answers, the completed requests and those whose deadline passed.
fn take_batch(state: &mut State, now: Instant) -> Batch {
    let mut batch = Batch {
        answers: std::mem::take(&mut state.answers),
        ..Batch::default()
    };
    for tag in std::mem::take(&mut state.ready) {
        if let Some(entry) = state.waiting.remove(&tag) {
            batch.completed.push(entry);
        }
    }
    while let Some(first) = state.waiting.first_entry() {
        if first.get().deadline > now {
            break;
        }
        batch.expired.push(first.remove());
    }
    batch
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn read_entry(id: u64, deadline: Instant) -> (Entry, Completion<ReadOutcome>) {
        let done = Completion::new();
        let entry = Entry {
            op: crate::metrics::ClientOp::Get,
            started: Instant::now(),
            id,
            deadline,
            wait: Wait::Read {
                read_id: id,
                key: "k".into(),
                done: done.clone(),
            },
        };
        (entry, done)
    }

    fn total() -> Arc<AtomicU64> {
        Arc::new(AtomicU64::new(0))
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[test]
    fn completed_requests_come_out_in_completion_order_with_their_ids() {
        let q = ConnQueue::new(4, total());
        for tag in 1..=3 {
            assert!(q.register(tag, read_entry(tag * 10, later()).0));
        }
        q.ready(3);
        q.ready(1);
        assert!(q.answer(99, ClientResponse::Value(None)));
        let batch = q.next_batch().expect("a batch");
        let ids: Vec<u64> = batch.completed.iter().map(|e| e.id).collect();
        assert_eq!(ids, [30, 10]);
        assert_eq!(batch.answers.len(), 1);
        assert_eq!(q.in_flight(), 4);
        q.finished(batch.len());
        assert_eq!(q.in_flight(), 1);
    }

    #[test]
    fn a_request_whose_deadline_passed_expires_and_its_late_completion_is_ignored() {
        let q = ConnQueue::new(2, total());
        let past = Instant::now();
        assert!(q.register(1, read_entry(7, past).0));
        let batch = q.next_batch().expect("the expired request");
        assert_eq!(batch.expired.len(), 1);
        q.ready(1); // completed after it was answered as timed out
        q.finished(batch.len());
        q.reader_done();
        assert!(q.next_batch().is_none(), "nothing is in flight");
    }

    #[test]
    fn the_reader_waits_at_the_limit_until_the_writer_answers() {
        let q = ConnQueue::new(1, total());
        assert!(q.answer(1, ClientResponse::Value(None)));
        let q2 = Arc::clone(&q);
        let reader = crate::sync::thread::spawn(move || q2.wait_for_room());
        let batch = q.next_batch().expect("a batch");
        q.finished(batch.len());
        assert!(reader.join().expect("reader"), "room after the answer");
    }

    #[test]
    fn closing_drops_everything_and_refuses_more() {
        let count = total();
        let q = ConnQueue::new(1, Arc::clone(&count));
        assert!(q.register(1, read_entry(1, later()).0));
        let q2 = Arc::clone(&q);
        let reader = crate::sync::thread::spawn(move || q2.wait_for_room());
        let (waiting, dropped) = q.close();
        assert_eq!((waiting.len(), dropped), (1, 1));
        assert!(
            !reader.join().expect("reader"),
            "a closed queue has no room"
        );
        assert!(!q.answer(2, ClientResponse::Value(None)));
        assert!(!q.register(2, read_entry(2, later()).0));
        assert_eq!(q.in_flight(), 0);
        assert_eq!(
            count.load(Ordering::Relaxed),
            0,
            "the node-wide count drops too"
        );
        assert!(q.next_batch().is_none());
    }
}
