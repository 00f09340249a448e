//! `Signal`: a Condvar with a name, used for one wake-up reason with one predicate.
//!
//! Each `Signal` is paired with exactly one mutex (documented where it is declared)
//! and one predicate. Waiters loop on the predicate (std's Condvar may wake spuriously);
//! the thread that makes the predicate true notifies while holding that mutex, so a
//! wake-up cannot fall between a waiter's check and its wait.

use std::time::Duration;

use super::io_check::IoFreeGuard;
use super::Condvar;

/// A named Condvar. See the module docs for the protocol.
pub struct Signal {
    name: &'static str,
    cv: Condvar,
}

impl Signal {
    /// A signal named for its wake-up reason (shown in panics and docs).
    pub fn new(name: &'static str) -> Signal {
        Signal {
            name,
            cv: Condvar::new(),
        }
    }

    /// The signal's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Releases the lock, waits for a notification (or a spurious wake-up), re-takes it.
    pub fn wait<'a, T>(&self, guard: IoFreeGuard<'a, T>) -> IoFreeGuard<'a, T> {
        let name = self.name;
        let (guard, ()) = guard.with_released(|raw| match self.cv.wait(raw) {
            Ok(raw) => (raw, ()),
            Err(_) => panic!("mutex of signal {name} poisoned"),
        });
        guard
    }

    /// Like [`Signal::wait`], but returns after `timeout` at the latest; the flag says
    /// whether it timed out. Callers loop and recompute the remaining time.
    pub fn wait_timeout<'a, T>(
        &self,
        guard: IoFreeGuard<'a, T>,
        timeout: Duration,
    ) -> (IoFreeGuard<'a, T>, bool) {
        let name = self.name;
        guard.with_released(|raw| match self.cv.wait_timeout(raw, timeout) {
            Ok((raw, result)) => (raw, result.timed_out()),
            Err(_) => panic!("mutex of signal {name} poisoned"),
        })
    }

    /// Wakes one waiter.
    pub fn notify_one(&self) {
        self.cv.notify_one();
    }

    /// Wakes every waiter (shutdown).
    pub fn notify_all(&self) {
        self.cv.notify_all();
    }
}
