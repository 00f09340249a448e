//! The election timer thread: the only thread that advances Raft's clock.
//!
//! Waits on: `Shared::tick_wanted` (paired with the core lock) with `wait_timeout` until
//! Raft's next tick is due — the election deadline on a follower or candidate, the next
//! heartbeat on a leader. Woken by: the timeout; `dispatch` when the next tick moved
//! earlier (e.g. on becoming leader); shutdown. A valid heartbeat moves the election
//! deadline later: the timer then wakes at the old deadline, finds nothing due and
//! sleeps again. After a tick it releases the lock before it wakes other threads
//! and writes log lines (`Shared::dispatch_deferred`).
//!
//! It also starts the replicator threads: `dispatch` creates the link (the outbox) of
//! a member Raft addresses for the first time and wakes the timer, which takes the
//! links to start under the lock and spawns their threads after releasing it.

use super::members::ToStart;
use super::replicator;
use super::shared::Shared;
use crate::logging::Level;
use crate::raft::Role;
use crate::sync::{thread, Arc};

/// Runs until shutdown.
pub fn run(shared: &Arc<Shared>) {
    let mut last_role = shared.lock_core().raft.role();
    loop {
        let mut core = shared.lock_core();
        if core.shutdown {
            return;
        }
        if core.members.has_to_start() {
            let starts = core.members.take_to_start();
            drop(core);
            start_replicators(shared, starts);
            continue;
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

/// Spawns one replicator thread per new link; shutdown joins them.
fn start_replicators(shared: &Arc<Shared>, starts: Vec<ToStart>) {
    for ToStart { peer, addr, outbox } in starts {
        let for_thread = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("n{}-replicator-n{peer}", shared.config.id))
            .spawn(move || replicator::run(&for_thread, peer, addr, &outbox));
        match spawned {
            Ok(handle) => shared
                .replicators
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(handle),
            Err(err) => shared.log.error(format_args!(
                "cannot start the replicator of n{peer}: {err}; messages to it are dropped"
            )),
        }
    }
}
