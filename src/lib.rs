//! raftkv: a replicated key-value store on a from-scratch Raft.
//!
//! See `README.md` for how to run it and `docs/CONCURRENCY.md` for every thread, lock
//! and wait of the runtime.
//!
//! # Architecture
//!
//! Dependencies point one way (docs/ARCHITECTURE.md explains the rule):
//!
//! - [`raft`] — the consensus core, a pure state machine with no I/O, clocks or
//!   threads. Tested by the deterministic simulator in `tests/sim`. Uses nothing of ours.
//! - [`storage`] — the data directory: lock, meta, hard state, snapshot (atomic files)
//!   and the write-ahead log. Uses `raft`'s types and `limits`.
//! - [`kv`] — the replicated state machine: the map and the client session table that
//!   makes retried writes exactly-once. Uses only `limits`.
//! - [`net`] — length-prefixed bincode frames, the hello handshake, and the peer and
//!   client protocol messages. Uses `raft`'s and `kv`'s types and `limits`.
//! - [`client`] — the client library: finds the leader, follows redirects, retries
//!   writes safely and reports an unknown outcome honestly. Uses `net` and `kv`.
//! - [`node`] — the threaded runtime: the only module that spawns threads or takes
//!   locks (through [`sync`]). Ties the others together.
//! - [`resp`] — the Redis protocol (RESP2) codec: commands in, replies out, no I/O.
//!   Uses only `limits`.
//! - [`crypto`] — SHA-256 and HMAC-SHA256 for the handshake's authentication. Uses
//!   nothing of ours.
//! - [`metrics`] — counters and histograms on atomics, their Prometheus text format,
//!   and a minimal HTTP responder for `/metrics` and `/health`. Uses nothing of ours.
//! - [`logging`] — one line per event on stderr.
//! - [`limits`] — the size limits (request, entry, frames, WAL record) and how they
//!   relate; constants only, usable by every module above.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod crypto;
pub mod fuzzing;
pub mod kv;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod node;
pub mod raft;
pub mod resp;
pub mod storage;
pub mod sync;
