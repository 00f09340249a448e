//! A TCP proxy the test owns, standing for one directed network link between two
//! nodes: node A reaches node B through it, so cutting it silences A -> B only.
//!
//! Cutting closes every connection through the proxy and refuses new ones (accepted
//! then closed at once) until healed. Threads: one acceptor, two pumps per connection;
//! all end when the proxy is dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// One directed link.
pub struct Proxy {
    /// Where the proxy listens (`127.0.0.1:PORT`).
    pub addr: String,
    inner: Arc<Inner>,
    acceptor: Option<thread::JoinHandle<()>>,
}

struct Inner {
    target: String,
    /// True while the link is cut.
    cut: AtomicBool,
    /// True once the proxy is dropped.
    stop: AtomicBool,
    /// Both ends of every live connection, to close them on a cut.
    conns: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// A proxy forwarding to `target`, listening on a fresh ephemeral port.
    pub fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = format!("127.0.0.1:{}", listener.local_addr().expect("addr").port());
        let inner = Arc::new(Inner {
            target: target.to_string(),
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
        });
        let acceptor_inner = Arc::clone(&inner);
        let acceptor = thread::Builder::new()
            .name(format!("proxy-{addr}"))
            .spawn(move || accept_loop(listener, acceptor_inner))
            .expect("spawn proxy acceptor");
        Proxy {
            addr,
            inner,
            acceptor: Some(acceptor),
        }
    }

    /// Cuts the link: closes its connections and refuses new ones until `heal`.
    pub fn cut(&self) {
        self.inner.cut.store(true, Ordering::SeqCst);
        self.inner.close_all();
    }

    /// Lets traffic through again.
    pub fn heal(&self) {
        self.inner.cut.store(false, Ordering::SeqCst);
    }

    /// True while cut.
    pub fn is_cut(&self) -> bool {
        self.inner.cut.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        self.inner.close_all();
        // Wake the blocked accept.
        let _ = TcpStream::connect(&self.addr);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

impl Inner {
    fn close_all(&self) {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for s in conns {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    for incoming in listener.incoming() {
        if inner.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = incoming else { continue };
        if inner.cut.load(Ordering::SeqCst) {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(server) = connect(&inner.target) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let pair = (client.try_clone(), server.try_clone());
        let (Ok(client2), Ok(server2)) = pair else {
            continue;
        };
        {
            let mut conns = inner.conns.lock().unwrap_or_else(|p| p.into_inner());
            conns.retain(|s| s.peer_addr().is_ok());
            if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
                conns.push(a);
                conns.push(b);
            }
        }
        // A cut that raced with this accept must still close it.
        if inner.cut.load(Ordering::SeqCst) {
            inner.close_all();
        }
        let (i1, i2) = (Arc::clone(&inner), Arc::clone(&inner));
        let _ = thread::Builder::new()
            .name("proxy-pump".into())
            .spawn(move || pump(client, server2, &i1));
        let _ = thread::Builder::new()
            .name("proxy-pump".into())
            .spawn(move || pump(server, client2, &i2));
    }
}

fn connect(target: &str) -> std::io::Result<TcpStream> {
    let addr = target
        .parse()
        .map_err(|_| std::io::Error::other(format!("bad address {target}")))?;
    TcpStream::connect_timeout(&addr, Duration::from_millis(500))
}

/// Copies `from` into `to` until either side closes or the link is cut.
fn pump(mut from: TcpStream, mut to: TcpStream, inner: &Inner) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Bytes read just as the link was cut are dropped, like packets in flight.
        if inner.cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
