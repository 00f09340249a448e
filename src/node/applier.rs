//! The applier thread: applies committed entries to the KV store in log order and
//! answers the client writes waiting for them.
//!
//! Waits on: `Shared::apply_wanted` (paired with the core lock) while nothing is
//! committed and unapplied. Woken by: `dispatch` when the commit index advances;
//! shutdown. Takes the core lock to take entries, then (released) the KV lock to apply
//! them, then the core lock again to record the applied index and take the decided
//! waiters — never both at once — and wakes those waiters with no lock held.

use super::shared::Shared;
use crate::kv::{CommandResult, KvError};
use crate::raft::{Entry, Index, Payload, Term};

/// Most entries applied under one hold of the KV lock.
pub const MAX_APPLY_BATCH: usize = 1024;

/// Runs until shutdown.
pub fn run(shared: &Shared) {
    while let Some(entries) = next_entries(shared) {
        let results = apply(shared, &entries);
        let decided = {
            let mut core = shared.lock_core();
            for (index, term, result) in &results {
                core.pending.write_applied(*index, *term, result.as_ref());
            }
            if let Some((last, _, _)) = results.last() {
                core.advance_applied(*last);
            }
            shared.dispatch_deferred(&mut core)
        };
        // Wake the waiting connection threads after releasing the core lock: each wake
        // is a futex syscall, and a batch of them under the lock held every other
        // thread out (the applier was the leader's busiest thread at 64 clients).
        for done in decided {
            done.complete();
        }
    }
}

type Applied = (Index, Term, Option<Result<CommandResult, KvError>>);

/// Waits for committed entries; `None` on shutdown.
fn next_entries(shared: &Shared) -> Option<Vec<Entry>> {
    let mut core = shared.lock_core();
    loop {
        if core.shutdown {
            return None;
        }
        if core.raft.has_committed() {
            let entries = core.raft.take_committed(MAX_APPLY_BATCH);
            shared.dispatch(&mut core);
            return Some(entries);
        }
        core = shared.apply_wanted.wait(core);
    }
}

/// Applies entries to the KV store (KV lock only).
fn apply(shared: &Shared, entries: &[Entry]) -> Vec<Applied> {
    let mut kv = shared.lock_kv();
    let mut results = Vec::with_capacity(entries.len());
    for entry in entries {
        let result = match &entry.payload {
            Payload::Noop => {
                kv.apply_noop(entry.index);
                None
            }
            Payload::Command(data) => {
                let result = kv.apply(entry.index, data);
                if let Err(err) = &result {
                    shared.log.warn(format_args!(
                        "entry {} could not be applied: {err}",
                        entry.index
                    ));
                }
                Some(result)
            }
        };
        results.push((entry.index, entry.term, result));
    }
    results
}
