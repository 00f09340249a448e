//! `Shared`: what every thread of a node holds an `Arc` to — the Raft mutex and the
//! Condvars paired with it, the KV store, the per-peer outboxes and the shutdown flag —
//! and `dispatch`, the one function that hands Raft's outputs to the threads that act on
//! them.
//!
//! # Lock order
//! `core` → `kv` → (an `Outbox`'s lock | a `Completion`'s lock | `connections` |
//! `fatal`).
//! No code takes `core` while holding `kv`, and the last group are leaves that are
//! never held while taking anything else. The core lock is never held across disk or
//! network I/O.

use std::time::{Duration, Instant};

use super::completion::Completion;
use super::config::NodeConfig;
use super::core_state::CoreState;
use super::deferred_log::DeferredLog;
use super::listener::Connections;
use super::peers::Book;
use super::pending::Decided;
use crate::kv::KvStore;
use crate::logging::{Level, Logger};
use crate::raft::{Message, Role};
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::thread::JoinHandle;
use crate::sync::{lock_io_free, Arc, IoFreeGuard, Mutex, MutexGuard, Signal};

/// The wake-ups one [`Shared::dispatch_deferred`] decided under the core lock, to be
/// delivered after releasing it. Each flag is set only if the thread was waiting on its
/// Signal then (counted under the core lock, so the later notify still reaches it).
#[must_use = "the wake-ups must be delivered once the core lock is released"]
pub struct Wakeups {
    /// Notify `persist_wanted` (the log writer).
    writer: bool,
    /// Notify `apply_wanted` (the applier).
    applier: bool,
    /// Notify `tick_wanted` (the election timer).
    timer: bool,
    /// Requests whose outcome is decided: their connection threads wait on them.
    decided: Vec<Decided>,
    /// Log lines decided under the core lock (role changes, peer faults).
    lines: DeferredLog,
}

impl Wakeups {
    /// Wakes the threads, then writes the log lines. Call after releasing the core
    /// lock ([`Shared::dispatch`], which delivers with it held on rare paths, takes
    /// the lines out first).
    pub fn deliver(self, shared: &Shared) {
        if self.writer {
            shared.persist_wanted.notify_one_unlocked();
        }
        if self.applier {
            shared.apply_wanted.notify_one_unlocked();
        }
        if self.timer {
            shared.tick_wanted.notify_one_unlocked();
        }
        for decided in self.decided {
            decided.complete();
        }
        self.lines.write(&shared.log);
    }
}

/// State shared by all threads of one node.
pub struct Shared {
    /// The node's configuration, fixed at start.
    pub config: NodeConfig,
    /// Where this node's log lines go.
    pub log: Logger,
    /// The node clock's origin; Raft's `now_ms` is milliseconds since then.
    started: Instant,
    /// The Raft mutex: the consensus state and the requests waiting on it.
    pub core: Mutex<CoreState>,
    /// Paired with `core`. The log writer waits here while Raft has nothing to persist.
    /// Notified through `dispatch` (a [`Wakeups`]) when Raft has persist work, and by
    /// shutdown.
    pub persist_wanted: Signal,
    /// Paired with `core`. The applier waits here while nothing is committed and
    /// unapplied. Notified through `dispatch` (a [`Wakeups`]) when Raft has committed
    /// entries, and by shutdown.
    pub apply_wanted: Signal,
    /// Paired with `core`. The election timer sleeps here until Raft's next tick is due.
    /// Notified through `dispatch` (a [`Wakeups`]) when the next tick moved earlier than
    /// the timer's sleep, and by shutdown.
    pub tick_wanted: Signal,
    /// The replicated state machine. Taken after `core` when both are held.
    pub kv: Mutex<KvStore>,
    /// The random incarnation of this node's data directory, sent in every hello.
    pub incarnation: u64,
    /// The address this node tells peers to reach it at (in its hello).
    pub advertised_addr: String,
    /// The incarnation of every member heard from, as in the data directory's peer
    /// book (a leaf lock; held while the book is rewritten, never under `core`).
    pub peer_book: Mutex<Book>,
    /// The replicator threads started so far (a leaf lock): the timer thread adds
    /// each it starts, shutdown joins them.
    pub replicators: Mutex<Vec<JoinHandle<()>>>,
    /// Set once this member learned it was removed from the cluster (a leaf lock,
    /// like `fatal`); the node then shuts down and its directory is marked removed.
    pub removed: Mutex<Option<String>>,
    /// Copy of `Members::removal_suspected`, for the replicators (which never take
    /// `core`): this member is not in its latest configuration.
    pub removal_suspected: AtomicBool,
    /// The leader this member knows of (0: none), for the replicators' probe.
    pub known_leader: AtomicU64,
    /// The highest commit index `dispatch` has seen, for `metrics.proposals_committed`.
    pub seen_commit: AtomicU64,
    /// Set once when shutdown starts; read without a lock by threads that block in
    /// the kernel (accept, socket reads) and are woken by closing their sockets.
    pub stopping: AtomicBool,
    /// Size in bytes of the latest snapshot file (0 if none), for `status`.
    pub snapshot_bytes: AtomicU64,
    /// Client requests read and not yet answered or dropped, over every client
    /// connection (status `client_requests_in_flight`); changed by each connection's
    /// `ConnQueue` as requests enter and leave it.
    pub client_requests_in_flight: Arc<AtomicU64>,
    /// Set by the log writer when the disk failed; the node then shuts down.
    pub fatal: Mutex<Option<String>>,
    /// Open connections and their threads (a leaf lock).
    pub connections: Mutex<Connections>,
    /// Filled in when shutdown is requested (Ctrl-C, a fatal disk error, a test);
    /// `Node::wait` blocks on it.
    pub shutdown_requested: Completion<()>,
    /// Filled in by the listener thread as it returns; shutdown waits on it, with a
    /// deadline, instead of joining a listener that might never wake.
    pub listener_exited: Completion<()>,
    /// Filled in by the metrics listener thread (`--metrics-addr`) as it returns.
    pub metrics_exited: Completion<()>,
    /// Counters and histograms, recorded with atomics only (module `metrics`).
    pub metrics: crate::metrics::Metrics,
}

impl Shared {
    /// Assembles the shared state.
    pub fn new(config: NodeConfig, log: Logger, core: CoreState, kv: KvStore) -> Shared {
        let advertised_addr = crate::net::normalize_addr(
            config
                .peers
                .get(config.id as usize - 1)
                .unwrap_or(&config.listen_addr),
        );
        Shared {
            incarnation: 0,
            advertised_addr,
            peer_book: Mutex::new(Book::default()),
            replicators: Mutex::new(Vec::new()),
            removed: Mutex::new(None),
            removal_suspected: AtomicBool::new(false),
            known_leader: AtomicU64::new(0),
            seen_commit: AtomicU64::new(core.raft.commit_index()),
            config,
            log,
            started: Instant::now(),
            core: Mutex::new(core),
            persist_wanted: Signal::new("persist_wanted"),
            apply_wanted: Signal::new("apply_wanted"),
            tick_wanted: Signal::new("tick_wanted"),
            kv: Mutex::new(kv),
            stopping: AtomicBool::new(false),
            snapshot_bytes: AtomicU64::new(0),
            client_requests_in_flight: Arc::new(AtomicU64::new(0)),
            fatal: Mutex::new(None),
            connections: Mutex::new(Connections::default()),
            shutdown_requested: Completion::new(),
            listener_exited: Completion::new(),
            metrics_exited: Completion::new(),
            metrics: crate::metrics::Metrics::default(),
        }
    }

    /// Milliseconds on the node clock (monotonic).
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Converts a node-clock time to a duration from now (zero if it has passed).
    pub fn until_ms(&self, at_ms: u64) -> Duration {
        Duration::from_millis(at_ms.saturating_sub(self.now_ms()))
    }

    /// Takes the Raft mutex as an I/O-free lock: every disk and socket operation checks
    /// (debug builds, tests) that the calling thread does not hold it. A panic while it
    /// was held leaves Raft in an unknown state, so poisoning is not recovered from.
    pub fn lock_core(&self) -> IoFreeGuard<'_, CoreState> {
        lock_io_free(&self.core, "raft")
    }

    /// Takes the KV mutex (after `core`, if both are held).
    pub fn lock_kv(&self) -> MutexGuard<'_, KvStore> {
        match self.kv.lock() {
            Ok(guard) => guard,
            Err(_) => panic!("kv mutex poisoned: a thread panicked while holding it"),
        }
    }

    /// Takes the connection registry (a leaf lock).
    pub fn lock_connections(&self) -> MutexGuard<'_, Connections> {
        self.connections.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True once shutdown has started.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Hands Raft's outputs to the threads that act on them, waking them at once. Call
    /// with the core lock held after anything that may have changed Raft. For the
    /// paths that run once per request or per batch, prefer
    /// [`Shared::dispatch_deferred`].
    pub fn dispatch(&self, core: &mut CoreState) {
        let mut wakeups = self.dispatch_deferred(core);
        // Never log under the lock: the lines wait for the next deferred delivery.
        let lines = std::mem::take(&mut wakeups.lines);
        core.deferred_log.put_back(lines);
        wakeups.deliver(self);
    }

    /// [`Shared::dispatch`], except that the wake-ups it decides, and the log lines
    /// queued under the lock, are returned instead of delivered: the caller releases
    /// the core lock, then calls [`Wakeups::deliver`]. A thread woken while the waker
    /// still holds the core lock wants that lock first, finds it taken and sleeps
    /// again on it (two more context switches); a batch of decided requests (a futex
    /// syscall each) would hold every other thread out of Raft; and a blocked stderr
    /// would stall the whole node.
    #[must_use = "the wake-ups must be delivered once the core lock is released"]
    pub fn dispatch_deferred(&self, core: &mut CoreState) -> Wakeups {
        let voters = core.raft.membership().voters.len();
        super::integrity::compare(core, self.config.id, voters);
        self.note_integrity(core);
        self.note_role_change(core);
        self.note_peer_faults(core);
        super::forward::serve_forwarded(self, core);
        let messages = core.raft.take_messages();
        self.route(core, messages);
        self.note_membership(core);
        self.release_reads(core);
        self.release_forwards(core);
        super::handoff::settle(core, self.config.id);
        Wakeups {
            writer: core.raft.has_persist_work() && self.persist_wanted.has_waiters(),
            applier: core.raft.has_committed() && self.apply_wanted.has_waiters(),
            timer: (core.raft.next_tick_ms() < core.timer_sleep_until_ms
                || core.members.has_to_start())
                && self.tick_wanted.has_waiters(),
            decided: core.pending.take_decided(),
            lines: std::mem::take(&mut core.deferred_log),
        }
    }

    /// Queues a line for a change of role, term or known leader, once.
    fn note_role_change(&self, core: &mut CoreState) {
        let now = (core.raft.role(), core.raft.term(), core.raft.leader());
        if now == core.observed {
            return;
        }
        let (role, term, leader) = now;
        let line = match role {
            Role::Leader => format!("became leader in term {term}"),
            Role::PreCandidate => format!(
                "election timeout: asking for pre-votes for term {}",
                term.saturating_add(1)
            ),
            Role::Candidate => format!("election started: candidate in term {term}"),
            Role::Follower => match leader {
                Some(id) => format!("follower of n{id} in term {term}"),
                None => format!("follower in term {term}, leader unknown"),
            },
        };
        core.deferred_log.push(&self.log, Level::Info, line);
        core.observed = now;
    }

    /// Queues an error line for each message the core dropped as impossible from a
    /// correct peer (a broken or corrupt peer; the line names it).
    /// Queues the integrity alarms `integrity::compare` decided, to be written after
    /// the core lock is released.
    fn note_integrity(&self, core: &mut CoreState) {
        for line in std::mem::take(&mut core.integrity.unlogged) {
            core.deferred_log.push(&self.log, Level::Error, line);
        }
    }

    fn note_peer_faults(&self, core: &mut CoreState) {
        let faults = core.raft.take_peer_faults();
        for fault in faults.faults {
            core.deferred_log
                .push(&self.log, Level::Error, fault.to_string());
        }
        if faults.dropped > 0 {
            let line = format!("{} more impossible peer messages dropped", faults.dropped);
            core.deferred_log.push(&self.log, Level::Error, line);
        }
    }

    /// Puts messages into their members' outboxes, starting links as needed (lock
    /// order: core, then outbox; see `members::route`).
    pub fn route(&self, core: &mut CoreState, messages: Vec<Message>) {
        super::members::route(core, self.config.id, &self.config.peers, messages);
    }

    /// Queues the lines of what routing noticed (messages for members whose address
    /// is unknown; this member's removal) and, once removed, asks the node to stop.
    fn note_membership(&self, core: &mut CoreState) {
        let unroutable = std::mem::take(&mut core.members.unroutable);
        if unroutable > 0 {
            let line = format!(
                "dropped {unroutable} messages for members whose address is unknown (give                  it in --peers, or wait for them to reach this node)"
            );
            core.deferred_log.push(&self.log, Level::Debug, line);
        }
        self.removal_suspected
            .store(core.members.removal_suspected, Ordering::Relaxed);
        let leader = core.raft.leader().unwrap_or(0);
        let before = self.known_leader.swap(leader, Ordering::Relaxed);
        if leader != 0 && leader != before {
            self.metrics.leader_changes_seen.inc();
        }
        let commit = core.raft.commit_index();
        let seen = self.seen_commit.fetch_max(commit, Ordering::Relaxed);
        self.metrics
            .proposals_committed
            .add(commit.saturating_sub(seen));
        if let Some(why) = core.members.removed.clone() {
            if self.note_removed(&why) {
                let line = format!("this member was removed from the cluster: {why}; stopping");
                core.deferred_log.push(&self.log, Level::Error, line);
            }
        }
    }

    /// Records that this member was removed (first call only; a leaf lock, so callable
    /// under `core`) and asks the node to shut down. True on the first call.
    pub fn note_removed(&self, why: &str) -> bool {
        let mut removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        if removed.is_some() {
            return false;
        }
        *removed = Some(why.to_string());
        drop(removed);
        self.shutdown_requested.complete(());
        true
    }

    /// Moves reads whose leadership check finished to their next stage.
    fn release_reads(&self, core: &mut CoreState) {
        for state in core.raft.take_read_states() {
            let applied = core.applied_index;
            core.pending.read_decided(state, applied);
        }
    }

    /// Moves forwarded writes the leader answered (or whose outcome became unknown) to
    /// their next stage.
    fn release_forwards(&self, core: &mut CoreState) {
        for outcome in core.raft.take_forward_outcomes() {
            let applied = core.applied_index;
            core.pending.forward_decided(outcome, applied);
        }
    }

    /// Records a fatal error (the disk failed) and asks the node to shut down.
    pub fn fail(&self, message: String) {
        self.log
            .error(format_args!("fatal: {message}; stopping the node"));
        let mut fatal = self.fatal.lock().unwrap_or_else(|p| p.into_inner());
        if fatal.is_none() {
            *fatal = Some(message);
        }
        drop(fatal);
        self.shutdown_requested.complete(());
    }
}
