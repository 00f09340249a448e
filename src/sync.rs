//! The one place that names the synchronization primitives the runtime uses.
//!
//! Everything takes `Mutex`, `Condvar`, `Arc` and `thread` from here, so that a test
//! build can swap in checked versions (a lock-order checker, a model checker) without
//! touching the code that uses them. Today it re-exports std's.

pub use std::sync::atomic;
pub use std::sync::{Arc, Barrier, Condvar, Mutex, MutexGuard};
pub use std::thread;
