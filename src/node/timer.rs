//! The election timer thread: the only thread that advances Raft's clock.
//!
//! Waits on: `Shared::tick_wanted` (paired with the core lock) with `wait_timeout` until
//! Raft's next tick is due — the election deadline on a follower or candidate, the next
//! heartbeat on a leader. Woken by: the timeout; `dispatch` when the next tick moved
//! earlier (e.g. on becoming leader); shutdown. A valid heartbeat moves the election
//! deadline later: the timer then wakes at the old deadline, finds nothing due and
//! sleeps again.
//!
//! It also writes the integrity alarms `dispatch` queued under the core lock
//! (`Integrity::unlogged`), after releasing it; they wait at most until its next wake.

use super::shared::Shared;
use crate::raft::Role;

/// Runs until shutdown.
pub fn run(shared: &Shared) {
    let mut core = shared.lock_core();
    let mut last_role = core.raft.role();
    while !core.shutdown {
        let now = shared.now_ms();
        let due = core.raft.next_tick_ms();
        if !core.integrity.unlogged.is_empty() {
            // Integrity alarms are decided under the core lock; log them without it.
            let lines = std::mem::take(&mut core.integrity.unlogged);
            drop(core);
            for line in lines {
                shared.log.error(format_args!("{line}"));
            }
            core = shared.lock_core();
            continue;
        }
        if now >= due {
            core.raft.tick(now);
            shared.dispatch(&mut core);
            let role = core.raft.role();
            if role == Role::Candidate && last_role != Role::Leader {
                shared.log.debug(format_args!(
                    "election timeout: campaigning in term {}",
                    core.raft.term()
                ));
            }
            last_role = role;
            continue;
        }
        core.timer_sleep_until_ms = due;
        core = shared
            .tick_wanted
            .wait_timeout(core, shared.until_ms(due))
            .0;
    }
}
