//! `Outbox`: the queue of Raft messages for one peer, between the threads that step
//! Raft (producers, holding the core lock) and that peer's replicator thread (the only
//! consumer).
//!
//! Waits on: `ready`, paired with `state`. Notified by: `push` (new messages: entries,
//! commit advance, heartbeats, responses), only while the replicator is inside its wait
//! and not yet notified (`State::waiting`, set by the replicator and cleared by the
//! notifying push, under the lock; the notify itself comes after the lock is released),
//! and `close` (shutdown). The inner
//! lock is taken after the core lock (lock order: core, then outbox) and never the
//! other way.

use std::collections::VecDeque;
use std::time::Duration;

use crate::raft::Message;
use crate::sync::{Condvar, Mutex, MutexGuard};

/// Most messages queued for one peer. Raft tolerates lost messages, so when a peer is
/// slow or down the oldest are dropped rather than letting memory grow.
pub const MAX_QUEUED_MESSAGES: usize = 4096;

/// Messages waiting to be written to one peer.
pub struct Outbox {
    /// Guarded state; paired with `ready`.
    state: Mutex<State>,
    /// Notified when messages are pushed or the outbox is closed.
    ready: Condvar,
}

struct State {
    queue: VecDeque<Message>,
    closed: bool,
    /// Closed by [`Outbox::retire`]: the replicator takes what is queued first.
    drain_first: bool,
    dropped: u64,
    /// The replicator is inside `wait_take`'s wait and no push has notified it yet:
    /// only then does `push` notify (a notify is a futex syscall even with nobody
    /// waiting, a busy replicator, still writing its last batch, takes the new messages
    /// on its next round anyway, and one notify is enough to wake a waiting one).
    waiting: bool,
}

/// What a replicator gets from [`Outbox::wait_take`].
#[derive(Debug)]
pub enum Take {
    /// Messages to send, oldest first.
    Messages(Vec<Message>),
    /// Nothing arrived within the timeout.
    TimedOut,
    /// The node is shutting down.
    Closed,
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox::new()
    }
}

impl Outbox {
    /// An empty, open outbox.
    pub fn new() -> Outbox {
        Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                closed: false,
                drain_first: false,
                dropped: 0,
                waiting: false,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues messages and wakes the replicator.
    pub fn push(&self, messages: impl IntoIterator<Item = Message>) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        state.queue.extend(messages);
        while state.queue.len() > MAX_QUEUED_MESSAGES {
            state.queue.pop_front();
            state.dropped += 1;
        }
        let wake = std::mem::replace(&mut state.waiting, false);
        // Notify after unlocking: the woken replicator's first step is to take this lock.
        drop(state);
        if wake {
            self.ready.notify_one();
        }
    }

    /// Waits up to `timeout` for messages and takes at most `max` of them.
    pub fn wait_take(&self, timeout: Duration, max: usize) -> Take {
        let deadline = std::time::Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if state.closed && (!state.drain_first || state.queue.is_empty()) {
                return Take::Closed;
            }
            if !state.queue.is_empty() {
                let n = state.queue.len().min(max);
                return Take::Messages(state.queue.drain(..n).collect());
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Take::TimedOut;
            }
            state.waiting = true;
            state = match self.ready.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
            state.waiting = false;
        }
    }

    /// Drops everything queued (the peer is unreachable; Raft will resend what matters).
    /// Returns how many were dropped.
    pub fn clear(&self) -> usize {
        let mut state = self.lock();
        let n = state.queue.len();
        state.queue.clear();
        n
    }

    /// Closes the outbox: the replicator's next or current wait returns `Closed`.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.drain_first = false;
        self.ready.notify_all();
    }

    /// Closes the outbox once what is queued is taken (its member was removed: the
    /// last messages tell it so); takes no more.
    pub fn retire(&self) {
        let mut state = self.lock();
        state.closed = true;
        state.drain_first = !state.queue.is_empty();
        self.ready.notify_all();
    }

    /// How many messages were dropped because the queue was full since the last call
    /// (the replicator logs them, after releasing this lock).
    pub fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::{Message, MessageBody};

    fn vote(n: u64) -> Message {
        Message {
            from: 1,
            to: 2,
            term: n,
            body: MessageBody::RequestVoteResponse { vote_granted: true },
        }
    }

    #[test]
    fn take_returns_messages_in_order_up_to_max() {
        let o = Outbox::new();
        o.push([vote(1), vote(2), vote(3)]);
        match o.wait_take(Duration::from_millis(1), 2) {
            Take::Messages(m) => assert_eq!(m, vec![vote(1), vote(2)]),
            other => panic!("expected messages, got {other:?}"),
        }
        match o.wait_take(Duration::from_millis(1), 2) {
            Take::Messages(m) => assert_eq!(m, vec![vote(3)]),
            other => panic!("expected messages, got {other:?}"),
        }
        assert!(matches!(
            o.wait_take(Duration::from_millis(1), 2),
            Take::TimedOut
        ));
    }

    #[test]
    fn close_wakes_a_waiting_replicator() {
        let o = crate::sync::Arc::new(Outbox::new());
        let o2 = crate::sync::Arc::clone(&o);
        let t = crate::sync::thread::spawn(move || o2.wait_take(Duration::from_secs(30), 8));
        o.close();
        let got = t.join().expect("waiter thread");
        assert!(matches!(got, Take::Closed), "{got:?}");
    }

    #[test]
    fn overflow_drops_the_oldest() {
        let o = Outbox::new();
        o.push((0..MAX_QUEUED_MESSAGES as u64 + 3).map(vote));
        assert_eq!(o.take_dropped(), 3);
        assert_eq!(o.take_dropped(), 0, "counted since the last call");
        match o.wait_take(Duration::from_millis(1), 1) {
            Take::Messages(m) => assert_eq!(m[0].term, 3),
            other => panic!("expected messages, got {other:?}"),
        }
    }

    #[test]
    fn a_retired_outbox_hands_out_what_is_queued_then_closes() {
        let o = Outbox::new();
        o.push([vote(1)]);
        o.retire();
        o.push([vote(2)]);
        match o.wait_take(Duration::from_millis(1), 8) {
            Take::Messages(m) => assert_eq!(m, vec![vote(1)]),
            other => panic!("expected the queued message, got {other:?}"),
        }
        assert!(matches!(
            o.wait_take(Duration::from_millis(1), 8),
            Take::Closed
        ));
    }
}
