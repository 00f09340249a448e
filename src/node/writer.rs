//! The log writer thread: the only thread that writes to the data directory, so Raft's
//! persist batches reach the disk strictly in the order they were taken.
//!
//! Waits on: `Shared::persist_wanted` (paired with the core lock) while Raft has nothing
//! to persist. Woken by: `dispatch` after anything that appended entries, changed the
//! term or vote, or queued a message that must wait for the disk; shutdown.
//! Takes the core lock to take a batch and again to report it durable; never while
//! writing. A failed write or fsync is fatal: after a failed fsync the page cache's
//! state is unknown, so the node must not go on as if the data were safe.

use super::shared::Shared;
use crate::raft::PersistBatch;
use crate::storage::Storage;

/// Runs until shutdown or a disk failure.
pub fn run(shared: &Shared, mut storage: Storage) {
    loop {
        let Some(batch) = next_batch(shared) else {
            return;
        };
        if let Err(err) = persist(&mut storage, &batch) {
            shared.fail(format!("persisting the raft log failed: {err}"));
            return;
        }
        let mut core = shared.lock_core();
        core.raft.on_persisted(batch.token, shared.now_ms());
        shared.route(batch.messages);
        shared.dispatch(&mut core);
    }
}

/// Waits for the next batch; `None` on shutdown.
fn next_batch(shared: &Shared) -> Option<PersistBatch> {
    let mut core = shared.lock_core();
    loop {
        if core.shutdown {
            return None;
        }
        if let Some(batch) = core.raft.take_persist_batch() {
            return Some(batch);
        }
        core = shared.persist_wanted.wait(core);
    }
}

/// Makes one batch durable: the hard state first (so the disk never holds entries of a
/// term newer than its stored term), then the entries with one fdatasync.
fn persist(
    storage: &mut Storage,
    batch: &PersistBatch,
) -> Result<(), crate::storage::StorageError> {
    if let Some(hard_state) = &batch.hard_state {
        storage.save_hard_state(hard_state)?;
    }
    if !batch.entries.is_empty() {
        storage.append(&batch.entries)?;
    }
    Ok(())
}
