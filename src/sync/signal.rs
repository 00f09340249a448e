//! `Signal`: a Condvar with a name, used for one wake-up reason with one predicate.
//!
//! Each `Signal` is paired with exactly one mutex (documented where it is declared)
//! and one predicate. Waiters loop on the predicate (std's Condvar may wake spuriously).
//! The thread that makes the predicate true decides while holding that mutex whether a
//! waiter needs waking, so a wake-up cannot fall between a waiter's check and its wait.
//! It may deliver the notify after releasing the mutex ([`Signal::has_waiters`], then
//! [`Signal::notify_one_unlocked`]): a waiter counted under the mutex is already inside
//! the Condvar wait, which a later notify still reaches; and a waiter woken while the
//! notifier still holds the mutex would only find it taken and sleep again on it.
//!
//! A `Signal` counts its waiters, and [`Signal::notify_one`] makes no syscall when
//! nobody waits. std's futex Condvar calls `futex_wake` on every notify, and the busy
//! paths notify on every proposal (the writer, the applier) while those threads are
//! usually awake and working: at 64 clients that was several syscalls per write. The
//! count is changed only while the paired mutex is held (a waiter adds itself before it
//! releases the mutex in `wait` and removes itself after re-taking it), and a notifier
//! reads it while holding that mutex, so it sees every waiter that could have missed the
//! new predicate.

use std::time::Duration;

use super::atomic::{AtomicUsize, Ordering};
use super::io_check::IoFreeGuard;
use super::Condvar;

/// A named Condvar. See the module docs for the protocol.
pub struct Signal {
    name: &'static str,
    cv: Condvar,
    /// Threads inside `wait`/`wait_timeout`; changed and read only under the paired
    /// mutex (an atomic so that `&self` can change it).
    waiters: AtomicUsize,
}

impl Signal {
    /// A signal named for its wake-up reason (shown in panics and docs).
    pub fn new(name: &'static str) -> Signal {
        Signal {
            name,
            cv: Condvar::new(),
            waiters: AtomicUsize::new(0),
        }
    }

    /// The signal's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Releases the lock, waits for a notification (or a spurious wake-up), re-takes it.
    pub fn wait<'a, T>(&self, guard: IoFreeGuard<'a, T>) -> IoFreeGuard<'a, T> {
        let name = self.name;
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let (guard, ()) = guard.with_released(|raw| match self.cv.wait(raw) {
            Ok(raw) => (raw, ()),
            Err(_) => panic!("mutex of signal {name} poisoned"),
        });
        self.waiters.fetch_sub(1, Ordering::SeqCst);
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
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let (guard, timed_out) =
            guard.with_released(|raw| match self.cv.wait_timeout(raw, timeout) {
                Ok((raw, result)) => (raw, result.timed_out()),
                Err(_) => panic!("mutex of signal {name} poisoned"),
            });
        self.waiters.fetch_sub(1, Ordering::SeqCst);
        (guard, timed_out)
    }

    /// Wakes one waiter, if any thread waits. Call with the paired mutex held, after
    /// making the predicate true under it.
    pub fn notify_one(&self) {
        if self.has_waiters() {
            self.cv.notify_one();
        }
    }

    /// True if a thread waits. Call with the paired mutex held, after making the
    /// predicate true under it; if true, call [`Signal::notify_one_unlocked`] once the
    /// mutex is released.
    pub fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }

    /// Wakes one waiter; the second half of [`Signal::has_waiters`], called after
    /// releasing the paired mutex.
    pub fn notify_one_unlocked(&self) {
        self.cv.notify_one();
    }

    /// Wakes every waiter (shutdown).
    pub fn notify_all(&self) {
        self.cv.notify_all();
    }
}
