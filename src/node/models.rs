//! Model tests of every hand-off between the node's threads, under the shuttle model
//! checker (randomized and PCT schedules). Run with
//! `RUSTFLAGS="--cfg shuttle" cargo test --lib shuttle_` (see `.ci/run`).
//!
//! Shuttle explores thread interleavings and reports a deadlock when every thread is
//! blocked — which is how a lost wake-up shows up. It does not model `wait_timeout`
//! expiring (its timed waits wait for a notification), so these models never rely on a
//! timeout firing: where the runtime would time out, the model drives an explicit event.

use std::time::{Duration, Instant};

use shuttle::scheduler::PctScheduler;
use shuttle::{check_pct, check_random, Runner};

use super::completion::Completion;
use super::outbox::{Outbox, Take};
use crate::raft::{Message, MessageBody};
use crate::sync::{lock_io_free, thread, Arc, Mutex, Signal};

const ITERATIONS: usize = 2000;
const FAR: Duration = Duration::from_secs(3600);

fn message(term: u64) -> Message {
    Message {
        from: 1,
        to: 2,
        term,
        body: MessageBody::RequestVoteResponse { vote_granted: true },
    }
}

/// Runs `model` under a random scheduler and a PCT scheduler.
fn explore(model: fn()) {
    check_random(model, ITERATIONS);
    check_pct(model, ITERATIONS, 3);
    let runner = Runner::new(PctScheduler::new(2, ITERATIONS), Default::default());
    runner.run(model);
}

/// A client write's completion: the waiter always sees the applier's value, whichever
/// runs first (no lost wake-up, no stale value).
#[test]
fn shuttle_completion_delivers_the_value_exactly_once() {
    explore(|| {
        let done: Completion<u32> = Completion::new();
        let applier = {
            let done = done.clone();
            thread::spawn(move || {
                done.complete(7);
                done.complete(8); // a second outcome is ignored
            })
        };
        let got = done.wait_until(Instant::now() + FAR);
        assert_eq!(got, Some(7));
        applier.join().expect("applier");
    });
}

/// The replicator wake-up: every pushed message reaches the replicator, in order,
/// without any other event to wake it (a lost notification deadlocks the model).
#[test]
fn shuttle_outbox_push_wakes_the_replicator() {
    explore(|| {
        let outbox = Arc::new(Outbox::new());
        let replicator = {
            let outbox = Arc::clone(&outbox);
            thread::spawn(move || {
                let mut seen = Vec::new();
                while seen.len() < 3 {
                    match outbox.wait_take(FAR, 8) {
                        Take::Messages(batch) => seen.extend(batch.into_iter().map(|m| m.term)),
                        Take::TimedOut => {}
                        Take::Closed => break,
                    }
                }
                seen
            })
        };
        outbox.push([message(1)]);
        outbox.push([message(2), message(3)]);
        assert_eq!(replicator.join().expect("replicator"), vec![1, 2, 3]);
    });
}

/// Closing the outbox unblocks a replicator that waits on an empty queue.
#[test]
fn shuttle_outbox_close_unblocks_the_replicator() {
    explore(|| {
        let outbox = Arc::new(Outbox::new());
        let replicator = {
            let outbox = Arc::clone(&outbox);
            thread::spawn(move || while !matches!(outbox.wait_take(FAR, 1), Take::Closed) {})
        };
        outbox.close();
        replicator.join().expect("replicator");
    });
}

/// Retiring the outbox of a removed member: the replicator still gets every message
/// pushed before the retirement (the entry that tells the member it was removed), and
/// then `Closed`, whatever the interleaving.
#[test]
fn shuttle_outbox_retire_delivers_the_queued_then_closes() {
    explore(|| {
        let outbox = Arc::new(Outbox::new());
        let replicator = {
            let outbox = Arc::clone(&outbox);
            thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    match outbox.wait_take(FAR, 1) {
                        Take::Messages(batch) => seen.extend(batch.into_iter().map(|m| m.term)),
                        Take::TimedOut => {}
                        Take::Closed => return seen,
                    }
                }
            })
        };
        outbox.push([message(1), message(2)]);
        outbox.retire();
        assert_eq!(replicator.join().expect("replicator"), vec![1, 2]);
    });
}

/// The state a `Signal` model guards: work items and a shutdown flag, like the Raft
/// mutex with `persist_wanted` / `apply_wanted`.
struct Work {
    pending: u32,
    taken: u32,
    shutdown: bool,
}

impl Work {
    fn shared() -> Arc<Mutex<Work>> {
        Arc::new(Mutex::new(Work {
            pending: 0,
            taken: 0,
            shutdown: false,
        }))
    }

    /// The consumer's step: takes one queued item if there is one.
    fn take_one(&mut self) -> bool {
        if self.pending == 0 {
            return false;
        }
        self.pending -= 1;
        self.taken += 1;
        true
    }
}

/// The consumer's side (the writer's or applier's loop): takes items while any are
/// queued; once none are, returns how many it took if `done` holds, else waits.
fn spawn_consumer(
    state: &Arc<Mutex<Work>>,
    signal: &Arc<Signal>,
    done: fn(&Work) -> bool,
) -> thread::JoinHandle<u32> {
    let (state, signal) = (Arc::clone(state), Arc::clone(signal));
    thread::spawn(move || {
        let mut guard = lock_io_free(&state, "model");
        loop {
            if guard.take_one() {
                continue;
            }
            if done(&guard) {
                return guard.taken;
            }
            guard = signal.wait(guard);
        }
    })
}

/// The producer's side: queues `n` items, each under the lock with a `notify_one`.
fn produce(state: &Mutex<Work>, signal: &Signal, n: u32) {
    for _ in 0..n {
        let mut guard = lock_io_free(state, "model");
        guard.pending += 1;
        signal.notify_one();
    }
}

/// The producer's side as the busy paths run it (`Shared::dispatch_deferred`): queues
/// `n` items, each time deciding under the lock whether the consumer waits, and
/// notifying after releasing it.
fn produce_notifying_after_unlock(state: &Mutex<Work>, signal: &Signal, n: u32) {
    for _ in 0..n {
        let wake = {
            let mut guard = lock_io_free(state, "model");
            guard.pending += 1;
            signal.has_waiters()
        };
        if wake {
            signal.notify_one_unlocked();
        }
    }
}

/// The writer/applier pattern: a producer changes state and notifies under the lock;
/// the consumer loops on the predicate. Every item is taken before shutdown completes,
/// or shutdown wakes the consumer: it never sleeps forever.
#[test]
fn shuttle_signal_handoff_loses_no_wakeup() {
    explore(|| {
        let state = Work::shared();
        let signal = Arc::new(Signal::new("work_wanted"));
        let consumer = spawn_consumer(&state, &signal, |work| work.shutdown);
        produce(&state, &signal, 2);
        {
            let mut guard = lock_io_free(&state, "model");
            guard.shutdown = true;
            signal.notify_all();
        }
        let taken = consumer.join().expect("consumer");
        assert_eq!(taken, 2, "shutdown came after both items were queued");
    });
}

/// `Signal::notify_one` skips the syscall when nobody waits: every item must still
/// reach a consumer that went to sleep just before it was queued. Only `notify_one`
/// can wake the consumer here (no shutdown `notify_all` to rescue a lost wake-up), so a
/// wrong waiter count deadlocks the model.
#[test]
fn shuttle_signal_notify_one_reaches_a_sleeping_waiter() {
    explore(|| three_items_reach_a_consumer_woken_only_by(produce));
}

/// A notify delivered after the lock is released still reaches a consumer counted as
/// waiting under it: only these notifies can wake the consumer, so a lost one
/// deadlocks the model.
#[test]
fn shuttle_signal_notify_after_unlock_reaches_a_sleeping_waiter() {
    explore(|| three_items_reach_a_consumer_woken_only_by(produce_notifying_after_unlock));
}

/// A consumer that waits until it took three items, and a producer (`produce` or
/// `produce_notifying_after_unlock`) queuing three: the producer's notifies are the
/// only wake-ups, so a lost one deadlocks the model.
fn three_items_reach_a_consumer_woken_only_by(produce: fn(&Mutex<Work>, &Signal, u32)) {
    let state = Work::shared();
    let signal = Arc::new(Signal::new("work_wanted"));
    let consumer = spawn_consumer(&state, &signal, |work| work.taken == 3);
    produce(&state, &signal, 3);
    assert_eq!(consumer.join().expect("consumer"), 3);
}

/// Shutdown wakes every kind of waiter at once: a thread on a Signal, a replicator on
/// its outbox, and a client connection on its completion.
#[test]
fn shuttle_shutdown_unblocks_every_waiter() {
    explore(|| {
        let state = Work::shared();
        let signal = Arc::new(Signal::new("tick_wanted"));
        let outbox = Arc::new(Outbox::new());
        let done: Completion<&'static str> = Completion::new();
        let timer = {
            let (state, signal) = (Arc::clone(&state), Arc::clone(&signal));
            thread::spawn(move || {
                let mut guard = lock_io_free(&state, "model");
                while !guard.shutdown {
                    guard = signal.wait_timeout(guard, FAR).0;
                }
            })
        };
        let replicator = {
            let outbox = Arc::clone(&outbox);
            thread::spawn(move || while !matches!(outbox.wait_take(FAR, 1), Take::Closed) {})
        };
        let connection = {
            let done = done.clone();
            thread::spawn(move || done.wait_until(Instant::now() + FAR))
        };
        // The shutdown sequence of Node::stop, in the same order.
        {
            let mut guard = lock_io_free(&state, "model");
            guard.shutdown = true;
            done.complete("shutdown");
            signal.notify_all();
        }
        outbox.close();
        timer.join().expect("timer");
        replicator.join().expect("replicator");
        assert_eq!(connection.join().expect("connection"), Some("shutdown"));
    });
}

/// A pipelined client connection: with room for one request, the reader registers two
/// (waiting for room before the second), a completer thread per request completes it
/// through its hook, and the writer answers both and ends once the reader is done. A
/// lost wake-up of the writer (`changed`) or of the reader (`room`) deadlocks the model.
#[test]
fn shuttle_pipelined_connection_answers_every_request_and_frees_its_room() {
    use super::conn_queue::{ConnQueue, Entry, Wait};
    use super::pending::ReadOutcome;
    use crate::sync::atomic::AtomicU64;
    explore(|| {
        let total = Arc::new(AtomicU64::new(0));
        let queue = ConnQueue::new(1, Arc::clone(&total));
        let reader = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || {
                let mut completers = Vec::new();
                for tag in 1..=2u64 {
                    assert!(queue.wait_for_room());
                    let hook_queue = Arc::clone(&queue);
                    let done: Completion<ReadOutcome> =
                        Completion::with_hook(move || hook_queue.ready(tag));
                    let wait = Wait::Read {
                        read_id: tag,
                        key: "k".into(),
                        done: done.clone(),
                    };
                    let entry = Entry {
                        op: crate::metrics::ClientOp::Get,
                        started: Instant::now(),
                        id: tag * 10,
                        deadline: Instant::now() + FAR,
                        wait,
                    };
                    assert!(queue.register(tag, entry));
                    completers.push(thread::spawn(move || done.complete(ReadOutcome::Ready)));
                }
                queue.reader_done();
                for completer in completers {
                    completer.join().expect("completer");
                }
            })
        };
        let mut answered = Vec::new();
        while let Some(batch) = queue.next_batch() {
            let n = batch.len();
            answered.extend(batch.completed.iter().map(|e| e.id));
            queue.finished(n);
        }
        reader.join().expect("reader");
        assert_eq!(answered, [10, 20]);
        assert_eq!(queue.in_flight(), 0);
        assert_eq!(total.load(crate::sync::atomic::Ordering::SeqCst), 0);
    });
}
