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
    /// Threads of connections, finished or not; pruned as new ones are admitted.
    threads: Vec<JoinHandle<()>>,
}

impl Connections {
    /// Closes every open socket and hands back every connection thread to join.
    pub fn close_all(&mut self) -> Vec<JoinHandle<()>> {
        for stream in self.open.values() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        self.open.clear();
        std::mem::take(&mut self.threads)
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
    conns.threads.retain(|t| !t.is_finished());
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
            shared2.lock_connections().open.remove(&id);
        });
    match spawned {
        Ok(handle) => conns.threads.push(handle),
        Err(err) => {
            conns.open.remove(&id);
            shared
                .log
                .warn(format_args!("cannot start a connection thread: {err}"));
        }
    }
}
