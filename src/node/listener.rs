//! The listener thread and the registry of connection threads.
//!
//! The listener waits in `accept()`; it is woken by a new connection, or at shutdown by
//! a connection the node opens to itself. Each accepted connection gets its own thread
//! (`connection::serve`), registered in [`Connections`] so that shutdown can close its
//! socket (which wakes its blocking read) and join it.

use std::collections::HashMap;
use std::net::{TcpListener, TcpStream};

use super::connection;
use super::shared::Shared;
use crate::sync::thread::{self, JoinHandle};
use crate::sync::Arc;

/// The open connections of a node and their threads. Guarded by
/// `Shared::connections`, a leaf lock.
#[derive(Default)]
pub struct Connections {
    next_id: u64,
    /// A handle on each open connection's socket, to close it at shutdown.
    open: HashMap<u64, TcpStream>,
    /// Threads of connections, by id; those whose connection ended are joined and
    /// dropped as new connections are admitted.
    threads: HashMap<u64, JoinHandle<()>>,
    /// Ids of connections whose thread is exiting (it removed itself from `open`).
    ended: Vec<u64>,
}

impl Connections {
    /// Closes every open socket and hands back every connection thread to join.
    pub fn close_all(&mut self) -> Vec<JoinHandle<()>> {
        for stream in self.open.values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        self.open.clear();
        self.ended.clear();
        std::mem::take(&mut self.threads).into_values().collect()
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
        self.open.remove(&id);
        self.ended.push(id);
    }
}

/// Runs until shutdown.
pub fn run(shared: &Arc<Shared>, listener: TcpListener) {
    for incoming in listener.incoming() {
        if shared.is_stopping() {
            return;
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
}

/// Starts a thread for a new connection, unless too many are open.
fn admit(shared: &Arc<Shared>, stream: TcpStream) {
    let peer_addr = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    let mut conns = shared.lock_connections();
    conns.reap();
    if conns.open.len() >= shared.config.max_connections {
        shared.log.warn(format_args!(
            "refusing connection from {peer_addr}: {} connections open",
            conns.open.len()
        ));
        return;
    }
    let Ok(handle) = stream.try_clone() else {
        return;
    };
    let id = conns.next_id;
    conns.next_id += 1;
    conns.open.insert(id, handle);
    let shared2 = Arc::clone(shared);
    let spawned = thread::Builder::new()
        .name(format!("n{}-conn-{id}", shared.config.id))
        .spawn(move || {
            connection::serve(&shared2, stream, &peer_addr);
            shared2.lock_connections().end(id);
        });
    match spawned {
        Ok(handle) => {
            conns.threads.insert(id, handle);
        }
        Err(err) => {
            conns.open.remove(&id);
            shared
                .log
                .warn(format_args!("cannot start a connection thread: {err}"));
        }
    }
}
