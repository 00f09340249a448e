//! `Completion<T>`: a one-shot hand-off from the thread that learns an outcome (the
//! applier, a thread that steps Raft, shutdown) to the one connection thread waiting for
//! it.
//!
//! Waits on: its own Condvar, paired with its own Mutex. Notified by: `complete`, once,
//! after it released that Mutex.
//! A completion made `with_hook` (a pipelined client request's) has no waiter: instead
//! of notifying, `complete` calls the hook after releasing the Mutex, which queues the
//! request for its connection's writer, and the writer takes the value (`try_take`).
//! The inner lock is a leaf: nothing else is taken while it is held, so it may be taken
//! while holding the core lock.

use std::time::Instant;

use crate::sync::{Arc, Condvar, Mutex};

/// A value that one thread fills in exactly once and another waits for.
pub struct Completion<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    /// The outcome, once known. Guarded by this mutex; paired with `filled`.
    value: Mutex<Option<T>>,
    /// Notified (all) when `value` becomes `Some`, unless there is a `hook`.
    filled: Condvar,
    /// Called once, after `value` was filled and its lock released. It must not block
    /// and takes only leaf locks (the caller may hold `core`).
    hook: Option<Hook>,
}

/// What a hooked completion does once filled.
type Hook = Box<dyn Fn() + Send + Sync>;

impl<T> Clone for Completion<T> {
    fn clone(&self) -> Self {
        Completion {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> Default for Completion<T> {
    fn default() -> Self {
        Completion::new()
    }
}

impl<T> Completion<T> {
    /// An empty completion.
    pub fn new() -> Completion<T> {
        Completion::build(None)
    }

    /// An empty completion that calls `hook` once filled instead of waking a waiter.
    pub fn with_hook(hook: impl Fn() + Send + Sync + 'static) -> Completion<T> {
        Completion::build(Some(Box::new(hook)))
    }

    fn build(hook: Option<Hook>) -> Completion<T> {
        Completion {
            inner: Arc::new(Inner {
                value: Mutex::new(None),
                filled: Condvar::new(),
                hook,
            }),
        }
    }

    /// Takes the outcome if it is known, without waiting.
    pub fn try_take(&self) -> Option<T> {
        lock(&self.inner.value).take()
    }

    /// Fills in the outcome and wakes the waiter. A second call is ignored: the first
    /// outcome is the one reported.
    pub fn complete(&self, value: T) {
        let mut slot = lock(&self.inner.value);
        if slot.is_some() {
            return;
        }
        *slot = Some(value);
        // Wake after unlocking: a waiter woken while the lock is still held would
        // find it taken and go back to sleep on the mutex.
        drop(slot);
        match &self.inner.hook {
            Some(hook) => hook(),
            None => self.inner.filled.notify_all(),
        }
    }

    /// Waits until the outcome is known or `deadline` passes (then `None`).
    pub fn wait_until(&self, deadline: Instant) -> Option<T> {
        let mut slot = lock(&self.inner.value);
        loop {
            if let Some(value) = slot.take() {
                return Some(value);
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            // Spurious wake-ups and timeouts both loop back to re-check the slot
            // and recompute the remaining time.
            slot = match self.inner.filled.wait_timeout(slot, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

/// Takes a lock, recovering from poisoning: the data under these leaf locks stays
/// consistent even if a holder panicked (every update is a single assignment).
fn lock<T>(m: &Mutex<T>) -> crate::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn waiter_sees_value_completed_from_another_thread() {
        let c = Completion::new();
        let c2 = c.clone();
        let t = crate::sync::thread::spawn(move || c2.complete(7u32));
        let got = c.wait_until(Instant::now() + Duration::from_secs(10));
        t.join().expect("completer thread");
        assert_eq!(got, Some(7));
    }

    #[test]
    fn first_outcome_wins() {
        let c = Completion::new();
        c.complete(1u32);
        c.complete(2u32);
        assert_eq!(c.wait_until(Instant::now()), Some(1));
    }

    #[test]
    fn a_hook_runs_once_after_the_first_outcome_and_the_value_can_be_taken() {
        let calls = Arc::new(crate::sync::atomic::AtomicU32::new(0));
        let seen = Arc::clone(&calls);
        let c = Completion::with_hook(move || {
            seen.fetch_add(1, crate::sync::atomic::Ordering::SeqCst);
        });
        assert_eq!(c.try_take(), None);
        c.complete(1u32);
        c.complete(2u32);
        assert_eq!(calls.load(crate::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(c.try_take(), Some(1));
        assert_eq!(c.try_take(), None);
    }

    #[test]
    fn deadline_passes_without_value() {
        let c: Completion<u32> = Completion::new();
        assert_eq!(
            c.wait_until(Instant::now() + Duration::from_millis(5)),
            None
        );
    }
}
