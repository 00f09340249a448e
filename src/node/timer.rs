//! The election timer thread: the only thread that advances Raft's clock.
//!
//! Waits on: `Shared::tick_wanted` (paired with the core lock) with `wait_timeout` until
//! Raft's next tick is due — the election deadline on a follower or candidate, the next
//! heartbeat on a leader. Woken by: the timeout; `dispatch` when the next tick moved
//! earlier (e.g. on becoming leader); shutdown. A valid heartbeat moves the election
//! deadline later: the timer then wakes at the old deadline, finds nothing due and
//! sleeps again. After a tick it releases the lock before it wakes other threads
//! and writes log lines (`Shared::dispatch_deferred`).

use super::shared::Shared;
use crate::logging::Level;
use crate::raft::Role;

/// Runs until shutdown.
pub fn run(shared: &Shared) {
    let mut last_role = shared.lock_core().raft.role();
    loop {
        let mut core = shared.lock_core();
        if core.shutdown {
            return;
        }
        let now = shared.now_ms();
        let due = core.raft.next_tick_ms();
        if now >= due {
            core.raft.tick(now);
            let role = core.raft.role();
            if role == Role::Candidate && last_role != Role::Leader {
                let line = format!("election timeout: campaigning in term {}", core.raft.term());
                core.deferred_log.push(&shared.log, Level::Debug, line);
            }
            last_role = role;
            let wakeups = shared.dispatch_deferred(&mut core);
            drop(core);
            // Wakes and logs without the lock.
            wakeups.deliver(shared);
            continue;
        }
        core.timer_sleep_until_ms = due;
        // The wait releases the lock; the guard it returns is dropped at once.
        drop(shared.tick_wanted.wait_timeout(core, shared.until_ms(due)));
    }
}
