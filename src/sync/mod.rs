//! The one place that names the synchronization primitives the runtime uses.
//!
//! Everything takes `Mutex`, `MutexGuard`, `Condvar`, `Arc`, atomics and `thread` from
//! here, so a test build can swap in checked versions without touching the code:
//!
//! - default: std's.
//! - `--cfg lockorder`: tracing-mutex's `Mutex`/`Condvar`, which record the order in
//!   which locks are taken and panic on the first cycle in that graph (a potential
//!   deadlock), over the whole test suite. `.ci/run` runs the suite this way.
//! - `--cfg shuttle`: the shuttle model checker's primitives, for the model tests of
//!   the hand-off types (`cargo test --lib shuttle_` with that cfg; see `.ci/run`).
//!
//! It also owns the two small tools every hand-off is built from: [`Signal`], a Condvar
//! with a name and a documented predicate, and [`IoFreeGuard`], the guard of a lock that
//! must never be held across disk or network I/O (the Raft mutex), which
//! [`assert_no_io_free_lock`] checks at every I/O site in debug builds and tests.

mod io_check;
mod signal;

pub use io_check::{assert_no_io_free_lock, io_free_locks_held, lock_io_free, IoFreeGuard};
pub use signal::Signal;

#[cfg(not(any(lockorder, shuttle)))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard, WaitTimeoutResult};
#[cfg(not(shuttle))]
pub use std::{sync::atomic, thread};

#[cfg(all(lockorder, not(shuttle)))]
pub use std::sync::{Arc, WaitTimeoutResult};
#[cfg(all(lockorder, not(shuttle)))]
pub use tracing_mutex::stdsync::tracing::{Condvar, Mutex, MutexGuard};

#[cfg(shuttle)]
pub use shuttle::sync::{atomic, Arc, Condvar, Mutex, MutexGuard, WaitTimeoutResult};
#[cfg(shuttle)]
pub use shuttle::thread;
