//! The metrics listener thread (`nI-metrics`, started only with `--metrics-addr`):
//! accepts one HTTP connection at a time and answers `GET /metrics` (the Prometheus
//! text format) and `GET /health` with [`crate::metrics::http::answer`].
//!
//! It blocks in `accept()`; shutdown wakes it like the main listener, with a
//! connection to itself after setting `Shared::stopping`, and waits for
//! `Shared::metrics_exited`. Each connection has read and write timeouts, so a slow
//! or silent scraper holds the thread at most a few seconds. The gauges are copied
//! under `core` (then `kv`, never both at once) and the locks released before any byte
//! is written to the socket.

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use super::shared::Shared;
use crate::metrics::http::{self, Response, PROMETHEUS_TEXT};
use crate::metrics::{render, Gauges};
use crate::raft::Role;
use crate::sync::atomic::Ordering;

/// How long a scraper may take to send its request, or to read the answer.
pub const SCRAPE_IO_TIMEOUT: Duration = Duration::from_secs(2);

/// The thread's body: serves connections until shutdown.
pub fn run(shared: &Shared, listener: TcpListener) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => serve(shared, stream),
            Err(e) => {
                shared.log.warn(format_args!("metrics accept: {e}"));
                // A persistent accept error (EMFILE) must not spin the CPU.
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    shared.metrics_exited.complete(());
}

fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(SCRAPE_IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(SCRAPE_IO_TIMEOUT));
    let result = http::answer(&mut stream, |path| match path {
        "/metrics" => Some(Response {
            status: 200,
            content_type: PROMETHEUS_TEXT,
            body: render(&shared.metrics, &gauges(shared)),
        }),
        "/health" => Some(health(shared)),
        _ => None,
    });
    if let Err(e) = result {
        shared.log.debug(format_args!("metrics connection: {e}"));
    }
}

/// The gauges, read under `core` and then under `kv` (one lock at a time).
fn gauges(shared: &Shared) -> Gauges {
    let mut gauges = {
        let core = shared.lock_core();
        let status = core.raft.status();
        Gauges {
            has_leader: status.leader.is_some(),
            is_leader: status.role == Role::Leader,
            proposals_pending: core.pending.waiting_writes() as u64,
            snapshot_index: status.snapshot_index,
            kv_keys: 0,
            term: status.term,
            commit_index: status.commit_index,
            applied_index: core.applied_index,
        }
    };
    gauges.kv_keys = shared.lock_kv().len() as u64;
    gauges
}

/// 200 `ok` when this node knows a leader and has no alarm; 503 with the reason
/// otherwise.
fn health(shared: &Shared) -> Response {
    let status = super::client_ops::status_report(shared);
    if !status.alarm.is_empty() {
        return Response::text(503, format!("alarm: {}\n", status.alarm));
    }
    if status.leader.is_none() {
        return Response::text(503, "no leader known\n");
    }
    Response::text(200, "ok\n")
}
