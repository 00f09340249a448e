//! The check that the Raft mutex is never held across disk or network I/O.
//!
//! The Raft mutex is taken through [`lock_io_free`], whose guard counts, per thread, the
//! "I/O-free" locks the thread holds. Every function that touches a socket or a file
//! calls [`assert_no_io_free_lock`] first; in debug builds and unit tests it panics if the
//! count is not zero, naming the operation. Release builds compile the check away
//! (the count is still kept: it costs one thread-local increment per lock).

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

use super::{Mutex, MutexGuard};

thread_local! {
    /// How many I/O-free guards this thread holds right now.
    static HELD: Cell<u32> = const { Cell::new(0) };
}

/// The number of I/O-free locks the current thread holds.
pub fn io_free_locks_held() -> u32 {
    HELD.with(Cell::get)
}

/// Panics (debug builds and tests) if the current thread holds an I/O-free lock, i.e.
/// is about to do the I/O named by `operation` while holding the Raft mutex.
#[track_caller]
pub fn assert_no_io_free_lock(operation: &str) {
    if cfg!(any(debug_assertions, test)) {
        let held = io_free_locks_held();
        assert!(
            held == 0,
            "{operation} while holding {held} I/O-free lock(s) (the Raft mutex): \
             release it before doing I/O"
        );
    }
}

/// The guard of a lock that must not be held across I/O. Derefs to the data.
pub struct IoFreeGuard<'a, T> {
    inner: Option<MutexGuard<'a, T>>,
}

/// Takes `mutex` as an I/O-free lock. Poisoning is passed on as a panic: a thread that
/// panicked while holding the Raft mutex left Raft in an unknown state.
pub fn lock_io_free<'a, T>(mutex: &'a Mutex<T>, name: &str) -> IoFreeGuard<'a, T> {
    let guard = match mutex.lock() {
        Ok(guard) => guard,
        Err(_) => panic!("{name} mutex poisoned: a thread panicked while holding it"),
    };
    IoFreeGuard::wrap(guard)
}

impl<'a, T> IoFreeGuard<'a, T> {
    fn wrap(guard: MutexGuard<'a, T>) -> IoFreeGuard<'a, T> {
        HELD.with(|h| h.set(h.get() + 1));
        IoFreeGuard { inner: Some(guard) }
    }

    /// Hands the raw guard to a Condvar wait (the lock is released while waiting, so
    /// the count drops), and takes it back afterwards.
    pub(super) fn with_released<R>(
        mut self,
        wait: impl FnOnce(MutexGuard<'a, T>) -> (MutexGuard<'a, T>, R),
    ) -> (IoFreeGuard<'a, T>, R) {
        let raw = match self.inner.take() {
            Some(raw) => raw,
            None => unreachable!("an IoFreeGuard always holds its guard outside a wait"),
        };
        HELD.with(|h| h.set(h.get() - 1));
        drop(self);
        let (raw, result) = wait(raw);
        (IoFreeGuard::wrap(raw), result)
    }
}

impl<T> Drop for IoFreeGuard<'_, T> {
    fn drop(&mut self) {
        if self.inner.take().is_some() {
            HELD.with(|h| h.set(h.get() - 1));
        }
    }
}

impl<T> Deref for IoFreeGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        match &self.inner {
            Some(guard) => guard,
            None => unreachable!("an IoFreeGuard always holds its guard outside a wait"),
        }
    }
}

impl<T> DerefMut for IoFreeGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        match &mut self.inner {
            Some(guard) => guard,
            None => unreachable!("an IoFreeGuard always holds its guard outside a wait"),
        }
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;

    #[test]
    fn the_count_follows_the_guard() {
        let m = Mutex::new(5);
        assert_eq!(io_free_locks_held(), 0);
        {
            let g = lock_io_free(&m, "test");
            assert_eq!(*g, 5);
            assert_eq!(io_free_locks_held(), 1);
        }
        assert_eq!(io_free_locks_held(), 0);
        assert_no_io_free_lock("nothing held");
    }

    #[test]
    fn io_under_the_lock_is_caught() {
        let m = Mutex::new(());
        let result = std::panic::catch_unwind(|| {
            let _g = lock_io_free(&m, "test");
            assert_no_io_free_lock("writing a frame");
        });
        let err = result.expect_err("I/O under an I/O-free lock must panic");
        let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("writing a frame"), "{message}");
        assert_eq!(io_free_locks_held(), 0, "unwinding released the count");
    }
}
