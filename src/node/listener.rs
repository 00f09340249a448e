//! The listener thread and the registry of connection threads, with the connection
//! budgets.
//!
//! The listener waits in `accept()`; it is woken by a new connection, or at shutdown by
//! a connection the node opens to itself. Each accepted connection gets its own thread
//! (`connection::serve`), registered in [`Connections`] so that shutdown can close its
//! socket (which wakes its blocking read) and join it.
//!
//! Budgets, so that clients can never lock the peers out:
//! - before its hello a connection is *pending*: at most [`MAX_PENDING_HELLOS`] at
//!   once, each with a hello timeout; when a new one would exceed that, the oldest
//!   pending one is closed (a member's hello takes a round trip, a silent stranger's
//!   takes the whole timeout, so a flood of silent sockets displaces itself);
//! - a *client* is admitted after its hello only while fewer than `--max-clients` are
//!   open; otherwise the hello is refused with a reason;
//! - a *peer* has no budget to exhaust: each member keeps one connection to us, so a
//!   new hello from member J closes J's older connection (it is dead or dying).

use std::collections::{BTreeMap, HashMap};
use std::net::{TcpListener, TcpStream};

use super::connection;
use super::shared::Shared;
use crate::raft::NodeId;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::Arc;

/// Most connections accepted whose hello has not arrived yet.
pub const MAX_PENDING_HELLOS: usize = 64;

/// What an open connection is, as far as its hello told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Accepted; its hello has not been accepted yet.
    Pending,
    /// A client.
    Client,
    /// Member `id`.
    Peer(NodeId),
    /// Closed by the registry (evicted or replaced); its thread is on its way out and
    /// it counts against no budget.
    Closed,
}

/// An open connection: a handle on its socket (to close it) and its kind.
struct Open {
    stream: TcpStream,
    kind: Kind,
}

/// The open connections of a node and their threads. Guarded by
/// `Shared::connections`, a leaf lock.
#[derive(Default)]
pub struct Connections {
    next_id: u64,
    /// Each open connection, by id (ids grow, so the first pending one is the oldest).
    open: BTreeMap<u64, Open>,
    /// Open connections of kind `Pending`.
    pending: usize,
    /// Open connections of kind `Client`.
    clients: usize,
    /// Threads of connections, by id; those whose connection ended are joined and
    /// dropped as new connections are admitted.
    threads: HashMap<u64, JoinHandle<()>>,
    /// Ids of connections whose thread is exiting (it removed itself from `open`).
    ended: Vec<u64>,
}

impl Connections {
    /// Closes every open socket and hands back every connection thread to join.
    pub fn close_all(&mut self) -> Vec<JoinHandle<()>> {
        for conn in self.open.values() {
            let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        }
        self.open.clear();
        self.pending = 0;
        self.clients = 0;
        self.ended.clear();
        std::mem::take(&mut self.threads).into_values().collect()
    }

    /// Records what connection `id`'s hello said it is, within the budgets; `Err` is
    /// the reason to refuse it with. A peer's older connection is closed.
    pub fn classify(
        &mut self,
        id: u64,
        peer: Option<NodeId>,
        max_clients: usize,
    ) -> Result<(), String> {
        let Some(kind) = self.open.get(&id).map(|c| c.kind) else {
            return Err("the connection was closed".into());
        };
        if kind != Kind::Pending {
            return Err("the connection was closed".into());
        }
        let new_kind = match peer {
            None if self.clients >= max_clients => {
                return Err(format!(
                    "too many client connections: {} open, the limit is {max_clients} \
                     (--max-clients); try again later",
                    self.clients
                ));
            }
            None => Kind::Client,
            Some(member) => {
                for conn in self.open.values_mut() {
                    if conn.kind == Kind::Peer(member) {
                        let _ = conn.stream.shutdown(std::net::Shutdown::Both);
                        conn.kind = Kind::Closed;
                    }
                }
                Kind::Peer(member)
            }
        };
        self.set_kind(id, new_kind);
        Ok(())
    }

    /// Changes an open connection's kind, keeping the counts.
    fn set_kind(&mut self, id: u64, kind: Kind) {
        if let Some(conn) = self.open.get_mut(&id) {
            let old = std::mem::replace(&mut conn.kind, kind);
            self.uncount(old);
            self.count(kind);
        }
    }

    fn count(&mut self, kind: Kind) {
        match kind {
            Kind::Pending => self.pending += 1,
            Kind::Client => self.clients += 1,
            Kind::Peer(_) | Kind::Closed => {}
        }
    }

    fn uncount(&mut self, kind: Kind) {
        match kind {
            Kind::Pending => self.pending -= 1,
            Kind::Client => self.clients -= 1,
            Kind::Peer(_) | Kind::Closed => {}
        }
    }

    /// Closes the oldest pending connection if the pending budget is full; returns
    /// its id.
    fn evict_pending(&mut self) -> Option<u64> {
        if self.pending < MAX_PENDING_HELLOS {
            return None;
        }
        let (&id, conn) = self.open.iter().find(|(_, c)| c.kind == Kind::Pending)?;
        let _ = conn.stream.shutdown(std::net::Shutdown::Both);
        self.set_kind(id, Kind::Closed);
        Some(id)
    }

    /// Registers a new pending connection; returns its id.
    fn register(&mut self, stream: TcpStream) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        self.open.insert(
            id,
            Open {
                stream,
                kind: Kind::Pending,
            },
        );
        self.count(Kind::Pending);
        id
    }

    /// Joins the threads of connections that ended. Each has nothing left to do but
    /// return, so the join is immediate.
    fn reap(&mut self) {
        for id in std::mem::take(&mut self.ended) {
            if let Some(handle) = self.threads.remove(&id) {
                let _ = handle.join();
            }
        }
    }

    /// Called by a connection thread as its last act.
    fn end(&mut self, id: u64) {
        if let Some(conn) = self.open.remove(&id) {
            self.uncount(conn.kind);
        }
        self.ended.push(id);
    }

    /// (pending, clients) now; for tests.
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        (self.pending, self.clients)
    }
}

/// Runs until shutdown; signals `exited` as its last act.
pub fn run(shared: &Arc<Shared>, listener: TcpListener) {
    for incoming in listener.incoming() {
        if shared.is_stopping() {
            break;
        }
        match incoming {
            Ok(stream) => admit(shared, stream),
            Err(err) => {
                // E.g. out of file descriptors. Back off briefly instead of spinning;
                // this is a pause after an error, not a synchronization.
                shared.log.warn(format_args!("accept failed: {err}"));
                thread::sleep(std::time::Duration::from_millis(50));
            }
        }
    }
    shared.listener_exited.complete(());
}

/// Starts a thread for a new connection, as pending (see the module doc).
fn admit(shared: &Arc<Shared>, stream: TcpStream) {
    let peer_addr = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let Ok(handle) = stream.try_clone() else {
        return;
    };
    let mut conns = shared.lock_connections();
    conns.reap();
    let evicted = conns.evict_pending();
    let id = conns.register(handle);
    let shared2 = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("n{}-conn-{id}", shared.config.id))
        .spawn(move || {
            connection::serve(&shared2, stream, &peer_addr, id);
            shared2.lock_connections().end(id);
        });
    let failed = match spawned {
        Ok(handle) => {
            conns.threads.insert(id, handle);
            None
        }
        Err(err) => {
            conns.end(id);
            Some(err)
        }
    };
    drop(conns);
    if let Some(old) = evicted {
        shared.log.warn(format_args!(
            "{MAX_PENDING_HELLOS} connections are waiting to say hello: closed the oldest \
             (connection {old})"
        ));
    }
    if let Some(err) = failed {
        shared
            .log
            .warn(format_args!("cannot start a connection thread: {err}"));
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected socket (the other end is dropped; only the handle matters here).
    fn socket(listener: &TcpListener) -> TcpStream {
        TcpStream::connect(listener.local_addr().expect("addr")).expect("connect")
    }

    #[test]
    fn clients_are_refused_over_their_limit_and_peers_are_not() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut conns = Connections::default();
        let ids: Vec<u64> = (0..4).map(|_| conns.register(socket(&listener))).collect();
        assert_eq!(conns.classify(ids[0], None, 2), Ok(()));
        assert_eq!(conns.classify(ids[1], None, 2), Ok(()));
        let refused = conns.classify(ids[2], None, 2).expect_err("over the limit");
        assert!(refused.contains("--max-clients"), "{refused}");
        assert_eq!(conns.classify(ids[3], Some(2), 2), Ok(()));
        assert_eq!(conns.counts(), (1, 2));
        conns.end(ids[0]);
        conns.end(ids[2]);
        assert_eq!(conns.counts(), (0, 1));
    }

    #[test]
    fn a_new_connection_from_a_peer_closes_its_old_one() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut conns = Connections::default();
        let old = conns.register(socket(&listener));
        let new = conns.register(socket(&listener));
        assert_eq!(conns.classify(old, Some(3), 0), Ok(()));
        assert_eq!(conns.classify(new, Some(3), 0), Ok(()));
        assert_eq!(conns.open[&old].kind, Kind::Closed);
        assert_eq!(conns.open[&new].kind, Kind::Peer(3));
    }

    #[test]
    fn a_full_pending_budget_evicts_the_oldest() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut conns = Connections::default();
        let first = conns.register(socket(&listener));
        for _ in 1..MAX_PENDING_HELLOS {
            assert_eq!(conns.evict_pending(), None);
            conns.register(socket(&listener));
        }
        assert_eq!(conns.evict_pending(), Some(first));
        conns.register(socket(&listener));
        assert_eq!(conns.counts(), (MAX_PENDING_HELLOS, 0));
        // The evicted connection's late hello is refused.
        assert!(conns.classify(first, None, 10).is_err());
    }
}
