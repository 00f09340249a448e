//! raftkv: a replicated key-value store on a from-scratch Raft.
//!
//! See `README.md` for how to run it and `docs/CONCURRENCY.md` for every thread, lock
//! and wait of the runtime.
//!
//! # Architecture
//!
//! - [`raft`] — the consensus core, a pure state machine with no I/O, clocks or
//!   threads. Tested by the deterministic simulator in `tests/sim`.
//! - [`storage`] — the data directory: hard state and snapshot as atomic files, log
//!   entries in a write-ahead log with one fdatasync per batch.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod raft;
pub mod storage;
pub mod sync;
