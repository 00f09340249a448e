//! The threaded runtime: drives the pure Raft core from dedicated OS threads, persists
//! through `storage`, applies to `kv`, talks over `net`.
//!
//! This is the only module that spawns threads or takes locks. The threads of one node
//! (see `docs/CONCURRENCY.md` for the full table, lock order and shutdown sequence):
//!
//! | thread | module | waits on |
//! |---|---|---|
//! | `nI-listener` | [`listener`] | `accept()` |
//! | `nI-conn-K` (one per connection) | [`connection`] | socket read |
//! | `nI-timer` | [`timer`] | `tick_wanted` Condvar, until Raft's next tick |
//! | `nI-writer` | [`writer`] | `persist_wanted` Condvar |
//! | `nI-applier` | [`applier`] | `apply_wanted` Condvar |
//! | `nI-replicator-nJ` (one per member it sends to; started by the timer) | [`replicator`] | its peer's `Outbox` |

pub mod applier;
pub mod client_conn;
pub mod client_ops;
pub mod completion;
pub mod config;
pub mod conn_queue;
pub mod connection;
pub mod core_state;
pub mod deferred_log;
pub mod forward;
pub mod handoff;
pub mod integrity;
pub mod listener;
pub mod member_ops;
pub mod members;
mod metrics_listener;
#[cfg(all(test, shuttle))]
mod models;
pub mod outbox;
pub mod peers;
pub mod pending;
pub mod replicator;
mod request_metrics;
pub mod shared;
pub mod timer;
pub mod writer;

use std::fmt;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

pub use config::NodeConfig;

use crate::kv::{KvError, KvStore};
use crate::logging::Logger;
use crate::net::{self, StatusReport};
use crate::raft::{self, InitialState, NodeId, Raft};
use crate::storage::{Meta, Recovered, Storage, StorageError};
use crate::sync::thread::{self, JoinHandle};
use crate::sync::Arc;
use core_state::CoreState;
use shared::Shared;

/// Why a node could not start, or stopped on its own.
#[derive(Debug)]
pub enum NodeError {
    /// A configuration value is unusable.
    Config(String),
    /// The data directory could not be opened or recovered, or the disk failed.
    Storage(StorageError),
    /// The listen address could not be bound.
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory's snapshot could not be decoded, or its state machine is
    /// not at the position the snapshot file covers: the directory is corrupt.
    Snapshot(KvError),
    /// A thread could not be started.
    Spawn(std::io::Error),
    /// The node stopped because its disk failed.
    Fatal(String),
    /// The node stopped because it was removed from the cluster; its data directory
    /// is marked and will not start again.
    Removed(String),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::Config(m) => write!(f, "bad configuration: {m}"),
            NodeError::Storage(e) => write!(f, "{e}"),
            NodeError::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            NodeError::Snapshot(e) => write!(
                f,
                "the data directory is corrupt: cannot load its snapshot: {e}"
            ),
            NodeError::Spawn(e) => write!(f, "cannot start a thread: {e}"),
            NodeError::Fatal(m) => write!(f, "stopped after a fatal error: {m}"),
            NodeError::Removed(m) => write!(
                f,
                "this member was removed from the cluster ({m}); its data directory will \
                 not start again"
            ),
        }
    }
}

impl std::error::Error for NodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NodeError::Storage(e) => Some(e),
            NodeError::Bind { source, .. } => Some(source),
            NodeError::Spawn(e) => Some(e),
            NodeError::Snapshot(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StorageError> for NodeError {
    fn from(e: StorageError) -> Self {
        NodeError::Storage(e)
    }
}

/// A running node. Dropping it shuts it down.
pub struct Node {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    listener: Option<JoinHandle<()>>,
    /// The metrics listener thread and its address (`--metrics-addr`).
    metrics: Option<(JoinHandle<()>, SocketAddr)>,
    workers: Vec<JoinHandle<()>>,
}

/// Asks a node to shut down from another thread (e.g. a Ctrl-C handler).
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl ShutdownHandle {
    /// Makes [`Node::wait`] return.
    pub fn request(&self) {
        self.shared.shutdown_requested.complete(());
    }
}

impl Node {
    /// Opens the data directory, recovers, binds the listen address and starts every
    /// thread.
    pub fn start(config: NodeConfig) -> Result<Node, NodeError> {
        config.validate().map_err(NodeError::Config)?;
        let log = Logger::new(format!("n{}", config.id), config.log_level);
        let meta = Meta {
            node_id: config.id,
            cluster: config.cluster.clone(),
            peers: config.peers.clone(),
            incarnation: rand::random(),
            join: config.join,
        };
        let (storage, recovered) = Storage::open(&config.data_dir, &meta)?;
        for warning in &recovered.warnings {
            log.warn(format_args!("recovery: {warning}"));
        }
        log_recovery(&log, &config, &recovered);
        let kv = match &recovered.snapshot {
            Some(snapshot) => KvStore::restore_at(&snapshot.data, snapshot.last.index)
                .map_err(NodeError::Snapshot)?,
            None => KvStore::new(),
        };
        let mut kv = kv;
        if let Ok(key) = std::env::var("RAFTKV_TEST_FLIP_KEY") {
            // Test-only fault (see `KvStore::set_flip_key`): the divergence tests.
            log.warn(format_args!(
                "test fault: puts of {key:?} are stored altered"
            ));
            kv.set_flip_key(Some(key));
        }
        let applied_index = recovered.log_base.index;
        let (join, incarnation) = (recovered.meta.join, recovered.meta.incarnation);
        let peer_book = recovered.peer_book.clone();
        let raft = Raft::new(
            raft_config(&config, join),
            initial_state(recovered),
            rand::random(),
            0,
        );
        let addr = net::normalize_addr(&config.listen_addr);
        let listener = TcpListener::bind(&addr).map_err(|source| NodeError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| NodeError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let snapshot_bytes = storage.snapshot_bytes();
        let mut core = CoreState::new(raft, applied_index);
        let heard = peer_book.iter().map(|(&id, r)| (id, r.addr.clone()));
        core.members = members::Members::new(heard.collect());
        let mut shared = Shared::new(config, log, core, kv);
        shared.incarnation = incarnation;
        shared.peer_book = crate::sync::Mutex::new(peers::Book::new(peer_book));
        let shared = Arc::new(shared);
        shared
            .snapshot_bytes
            .store(snapshot_bytes, crate::sync::atomic::Ordering::Relaxed);
        shared.log.info(format_args!("listening on {local_addr}"));
        let mut node = Node {
            shared,
            local_addr,
            listener: None,
            metrics: None,
            workers: Vec::new(),
        };
        node.spawn_threads(listener, storage)?;
        node.spawn_metrics()?;
        Ok(node)
    }

    fn spawn_threads(&mut self, listener: TcpListener, storage: Storage) -> Result<(), NodeError> {
        let id = self.shared.config.id;
        let shared = Arc::clone(&self.shared);
        self.listener = Some(spawn(format!("n{id}-listener"), move || {
            listener::run(&shared, listener)
        })?);
        let shared = Arc::clone(&self.shared);
        self.workers
            .push(spawn(format!("n{id}-timer"), move || timer::run(&shared))?);
        // Replicators start as Raft first addresses each member (the timer thread
        // spawns them); kick the first dispatch so a bootstrap member's start at once.
        {
            let mut core = self.shared.lock_core();
            self.shared.dispatch(&mut core);
        }
        let shared = Arc::clone(&self.shared);
        self.workers.push(spawn(format!("n{id}-writer"), move || {
            writer::run(&shared, storage)
        })?);
        let shared = Arc::clone(&self.shared);
        self.workers.push(spawn(format!("n{id}-applier"), move || {
            applier::run(&shared)
        })?);
        Ok(())
    }

    /// Binds `--metrics-addr`, if given, and starts the metrics listener thread.
    fn spawn_metrics(&mut self) -> Result<(), NodeError> {
        let Some(wanted) = &self.shared.config.metrics_addr else {
            return Ok(());
        };
        let addr = net::normalize_addr(wanted);
        let bind_error = |source| NodeError::Bind {
            addr: addr.clone(),
            source,
        };
        let listener = TcpListener::bind(&addr).map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        self.shared
            .log
            .info(format_args!("serving /metrics and /health on {local}"));
        let shared = Arc::clone(&self.shared);
        let id = shared.config.id;
        let handle = spawn(format!("n{id}-metrics"), move || {
            metrics_listener::run(&shared, listener)
        })?;
        self.metrics = Some((handle, local));
        Ok(())
    }

    /// The address the metrics listener listens on, if `--metrics-addr` was given.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, addr)| *addr)
    }

    /// The address the node listens on (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.shared.config.id
    }

    /// The node's status, as `raftkv client status` shows it.
    pub fn status(&self) -> StatusReport {
        client_ops::status_report(&self.shared)
    }

    /// A handle that asks this node to shut down.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Blocks until shutdown is requested (a [`ShutdownHandle`], or a fatal disk error).
    pub fn wait(&self) {
        loop {
            let far = std::time::Instant::now() + Duration::from_secs(3600);
            if self.shared.shutdown_requested.wait_until(far).is_some() {
                // Leave the signal set for anyone else who waits.
                self.shared.shutdown_requested.complete(());
                return;
            }
        }
    }

    /// If this node leads, hands leadership to the most up-to-date voter and waits
    /// (at most the longest election timeout) until another member leads: call it
    /// before [`Node::shutdown`] for a planned stop (the binary does on Ctrl-C and
    /// SIGTERM), so the cluster needs no election. See [`handoff`].
    pub fn hand_off(&self) {
        handoff::before_shutdown(&self.shared);
    }

    /// Stops every thread and joins it. Returns the fatal error, if one stopped the node.
    pub fn shutdown(mut self) -> Result<(), NodeError> {
        self.stop();
        let fatal = self
            .shared
            .fatal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(message) = fatal {
            return Err(NodeError::Fatal(message));
        }
        let removed = self
            .shared
            .removed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match removed {
            Some(why) => {
                // Every thread is joined, the storage closed: leave the marker.
                let dir = &self.shared.config.data_dir;
                crate::storage::mark_removed(dir, &why)?;
                Err(NodeError::Removed(why))
            }
            None => Ok(()),
        }
    }

    /// The shutdown sequence (docs/CONCURRENCY.md): flag, wake the listener and join it
    /// (or, if it does not wake within a few seconds, leave it behind),
    /// wake every Condvar and fail every waiter, close the outboxes and sockets, join
    /// everything.
    fn stop(&mut self) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let shared = &self.shared;
        shared.log.info(format_args!("shutting down"));
        shared
            .stopping
            .store(true, crate::sync::atomic::Ordering::SeqCst);
        shared.shutdown_requested.complete(());
        if wake_listener(wake_addr(self.local_addr), &shared.listener_exited) {
            let _ = listener.join();
        } else {
            // Leave it blocked in accept(): the process is on its way out, and a
            // shutdown that never returns would be worse.
            shared.log.error(format_args!(
                "the listener did not wake for shutdown; leaving its thread behind"
            ));
        }
        if let Some((metrics, addr)) = self.metrics.take() {
            if wake_listener(wake_addr(addr), &shared.metrics_exited) {
                let _ = metrics.join();
            } else {
                shared.log.error(format_args!(
                    "the metrics listener did not wake for shutdown; leaving its thread behind"
                ));
            }
        }
        let outboxes = {
            let mut core = shared.lock_core();
            core.shutdown = true;
            core.pending.fail_all();
            shared.persist_wanted.notify_all();
            shared.apply_wanted.notify_all();
            shared.tick_wanted.notify_all();
            core.members.outboxes()
        };
        for outbox in outboxes {
            outbox.close();
        }
        let connections = shared.lock_connections().close_all();
        for handle in connections.into_iter().chain(self.workers.drain(..)) {
            let _ = handle.join();
        }
        // The timer, which starts the replicators, is joined: no more can start.
        let replicators =
            std::mem::take(&mut *shared.replicators.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in replicators {
            let _ = handle.join();
        }
        shared.log.info(format_args!("stopped"));
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Attempts to wake our listener (blocked in `accept()`).
const WAKE_ATTEMPTS: u32 = 3;
/// How long each attempt may take to connect, and then waits for the listener.
const WAKE_WAIT: Duration = Duration::from_secs(1);

/// Wakes the listener's blocking `accept()` with a connection to ourselves and waits
/// for it to signal `exited`; retries a few times. False if it did not exit within
/// about `WAKE_ATTEMPTS * 2 * WAKE_WAIT` (the connect kept failing, say).
fn wake_listener(addr: SocketAddr, exited: &completion::Completion<()>) -> bool {
    for _ in 0..WAKE_ATTEMPTS {
        let _ = TcpStream::connect_timeout(&addr, WAKE_WAIT);
        if exited
            .wait_until(std::time::Instant::now() + WAKE_WAIT)
            .is_some()
        {
            return true;
        }
    }
    false
}

/// Where to connect to wake our own listener (an unspecified address is not
/// connectable).
fn wake_addr(local: SocketAddr) -> SocketAddr {
    let mut addr = local;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    addr
}

fn spawn(name: String, body: impl FnOnce() + Send + 'static) -> Result<JoinHandle<()>, NodeError> {
    thread::Builder::new()
        .name(name)
        .spawn(body)
        .map_err(NodeError::Spawn)
}

/// Raft's tuning. A member created with `--join` has no bootstrap voters: its
/// configuration comes from the leader's log.
fn raft_config(config: &NodeConfig, join: bool) -> raft::Config {
    let voters = match join {
        true => Vec::new(),
        false => (1..=config.peers.len() as NodeId).collect(),
    };
    let mut rc = raft::Config::new(config.id, voters);
    rc.election_timeout_min_ms = config.election_timeout_min_ms;
    rc.election_timeout_max_ms = config.election_timeout_max_ms;
    rc.heartbeat_interval_ms = config.heartbeat_interval_ms;
    rc.max_snapshot_chunk_bytes = config.snapshot_chunk_bytes;
    // The batch limits the peer frame limit was derived from (crate::limits).
    rc.max_bytes_per_append = crate::limits::MAX_APPEND_BATCH_BYTES as usize;
    rc.max_entries_per_append = crate::limits::MAX_APPEND_BATCH_ENTRIES as usize;
    rc
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn waking_a_listener_that_cannot_be_reached_gives_up() {
        // Nobody listens on this port any more: every connect is refused.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let never = completion::Completion::new();
        assert!(!wake_listener(addr, &never));
    }

    #[test]
    fn waking_a_listener_that_exits_succeeds() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let exited = completion::Completion::new();
        let signal = exited.clone();
        let thread = std::thread::spawn(move || {
            let _ = listener.accept();
            signal.complete(());
        });
        assert!(wake_listener(addr, &exited));
        thread.join().expect("listener thread");
    }
}

fn initial_state(recovered: Recovered) -> InitialState {
    InitialState {
        hard_state: recovered.hard_state,
        log_base: recovered.log_base,
        entries: recovered.entries,
        // None without a snapshot: the bootstrap voters (--peers), or none (--join).
        membership: recovered.snapshot.and_then(|s| s.membership),
    }
}

fn log_recovery(log: &Logger, config: &NodeConfig, recovered: &Recovered) {
    let last = recovered
        .entries
        .last()
        .map_or(recovered.log_base.index, |e| e.index);
    log.info(format_args!(
        "recovered {}: term {}, vote {}, snapshot at {}, {} log entries (last index {last})",
        config.data_dir.display(),
        recovered.hard_state.current_term,
        recovered
            .hard_state
            .voted_for
            .map_or("none".to_string(), |v| format!("n{v}")),
        recovered.log_base.index,
        recovered.entries.len(),
    ));
}
