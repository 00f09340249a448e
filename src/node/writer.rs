//! The log writer thread: the only thread that writes to the data directory, so Raft's
//! persist batches, snapshots and compactions reach the disk strictly in order.
//!
//! Waits on: `Shared::persist_wanted` (paired with the core lock) while Raft has nothing
//! to persist and no snapshot job is ready. Woken by: `dispatch` after anything that
//! appended entries, changed the term or vote, queued a message that must wait for the
//! disk, or accepted a snapshot chunk; the applier when it hands over a snapshot job;
//! shutdown.
//! Takes the core lock to take work and again to report it done; never while
//! writing. A failed write or fsync is fatal: after a failed fsync the page cache's
//! state is unknown, so the node must not go on as if the data were safe.
//!
//! Snapshots (§7):
//! - Its own: the applier serializes the KV store and leaves a [`SnapshotJob`]; once
//!   every entry it covers is durable in the WAL, the writer saves it (atomic file),
//!   then tells Raft to compact its log, then deletes the WAL segments before it. Both
//!   keep `--snapshot-catchup-entries` entries before the snapshot, for followers
//!   that fell a little behind.
//! - Received: chunks arrive in persist batches and go to `snapshot.recv`; after the
//!   final one the writer checks the file, installs it, decodes the KV store and
//!   hands it to the applier (`CoreState::kv_restore`).

use super::core_state::SnapshotJob;
use super::shared::Shared;
use crate::kv::KvStore;
use crate::raft::{LogPosition, PersistBatch, SnapshotChunk};
use crate::storage::{SnapshotFile, Storage, StorageError};
use crate::sync::atomic::Ordering;

/// What the writer does next.
enum Work {
    Batch(PersistBatch),
    Snapshot(SnapshotJob),
}

/// Runs until shutdown or a disk failure.
pub fn run(shared: &Shared, mut storage: Storage) {
    while let Some(work) = next_work(shared) {
        let result = match work {
            Work::Batch(batch) => persist_batch(shared, &mut storage, batch),
            Work::Snapshot(job) => save_snapshot(shared, &mut storage, job),
        };
        if let Err(err) = result {
            shared.fail(format!("persisting the raft log failed: {err}"));
            return;
        }
    }
}

/// Waits for the next work; `None` on shutdown. A snapshot job goes first once
/// everything it covers is durable (so storage keeps the log after it).
fn next_work(shared: &Shared) -> Option<Work> {
    let mut core = shared.lock_core();
    loop {
        if core.shutdown {
            return None;
        }
        let durable = core.raft.durable_index();
        if core
            .snapshot_job
            .as_ref()
            .is_some_and(|job| job.last.index <= durable)
        {
            return core.snapshot_job.take().map(Work::Snapshot);
        }
        if let Some(batch) = core.raft.take_persist_batch() {
            return Some(Work::Batch(batch));
        }
        core = shared.persist_wanted.wait(core);
    }
}

/// Makes one batch durable, reports it, sends its messages, and installs a snapshot
/// whose final chunk it carried.
fn persist_batch(
    shared: &Shared,
    storage: &mut Storage,
    batch: PersistBatch,
) -> Result<(), StorageError> {
    persist(storage, &batch, &shared.metrics)?;
    let install = batch.snapshot_to_install();
    let wakeups = {
        let mut core = shared.lock_core();
        core.raft.on_persisted(batch.token, shared.now_ms());
        shared.route(&mut core, batch.messages);
        shared.dispatch_deferred(&mut core)
    };
    wakeups.deliver(shared);
    match install {
        Some(last) => install_received(shared, storage, last),
        None => Ok(()),
    }
}

/// Makes one batch durable: snapshot chunks (to `snapshot.recv`), the hard state (so
/// the disk never holds entries of a term newer than its stored term), then the
/// entries with one fdatasync (timed, write and fdatasync together, as
/// `raftkv_disk_wal_fsync_duration_seconds`).
fn persist(
    storage: &mut Storage,
    batch: &PersistBatch,
    metrics: &crate::metrics::Metrics,
) -> Result<(), StorageError> {
    for SnapshotChunk { offset, data, .. } in &batch.snapshot_chunks {
        storage.write_snapshot_chunk(*offset, data)?;
    }
    if let Some(hard_state) = &batch.hard_state {
        storage.save_hard_state(hard_state)?;
    }
    if !batch.entries.is_empty() {
        let started = std::time::Instant::now();
        storage.append(&batch.entries)?;
        metrics.wal_fsync.observe(started.elapsed());
    }
    Ok(())
}

/// Checks and installs the received snapshot at `last`, then resets Raft's log and
/// hands the decoded state machine to the applier.
fn install_received(
    shared: &Shared,
    storage: &mut Storage,
    last: LogPosition,
) -> Result<(), StorageError> {
    if last.index <= storage.log_base().index {
        // Our own snapshot got there first; the leader's retry will learn we have it.
        reject(shared, last, "it is not newer than ours");
        return Ok(());
    }
    // The state machine is decoded (and its digest checked) before the file replaces
    // ours: a refused snapshot leaves the data directory as it was.
    let mut refused = false;
    let installed = storage.install_received(last, |snapshot| {
        KvStore::restore_at(&snapshot.data, last.index).map_err(|err| {
            refused = true;
            err.to_string()
        })
    })?;
    let kv = match installed {
        Ok(kv) => kv,
        Err(why) if refused => {
            // The CRC matched, so the leader's own snapshot is bad: stop rather than
            // wait for the same snapshot again.
            shared.fail(format!(
                "received snapshot at {last:?} refused, not installed (this node's data \
                 directory is unchanged): {why}. The leader's snapshot is bad"
            ));
            return Ok(());
        }
        Err(why) => {
            reject(shared, last, &why);
            return Ok(());
        }
    };
    shared
        .snapshot_bytes
        .store(storage.snapshot_bytes(), Ordering::Relaxed);
    let mut core = shared.lock_core();
    if core.raft.snapshot_installed(last, shared.now_ms()) {
        core.kv_restore = Some((last.index, kv));
        shared.apply_wanted.notify_one();
    }
    shared.dispatch(&mut core);
    drop(core);
    shared.log.info(format_args!(
        "installed snapshot at index {} (term {}) from the leader, {} bytes",
        last.index,
        last.term,
        storage.snapshot_bytes()
    ));
    Ok(())
}

/// Tells Raft a received snapshot was not installed.
fn reject(shared: &Shared, last: LogPosition, why: &str) {
    shared.log.warn(format_args!(
        "received snapshot at index {} not installed: {why}",
        last.index
    ));
    let mut core = shared.lock_core();
    core.raft.snapshot_rejected(last);
    shared.dispatch(&mut core);
}

/// Saves the applier's snapshot, compacts Raft's log, then deletes WAL segments
/// wholly before it; both keep the configured trailing entries before it.
fn save_snapshot(
    shared: &Shared,
    storage: &mut Storage,
    job: SnapshotJob,
) -> Result<(), StorageError> {
    let (last, encode_ms) = (job.last, job.encode_ms);
    if last.index <= storage.log_base().index {
        shared.lock_core().snapshot_in_progress = false;
        return Ok(());
    }
    let started = std::time::Instant::now();
    let snapshot = SnapshotFile {
        last,
        membership: Some(job.membership),
        data: job.data,
    };
    storage.save_snapshot(&snapshot)?;
    shared.metrics.snapshot_save.observe(started.elapsed());
    drop(snapshot);
    shared
        .snapshot_bytes
        .store(storage.snapshot_bytes(), Ordering::Relaxed);
    let (keep, keep_bytes) = (
        shared.config.snapshot_catchup_entries,
        shared.config.snapshot_bytes,
    );
    let log_base = {
        let mut core = shared.lock_core();
        core.raft.compact_keeping(last, keep, keep_bytes);
        core.snapshot_in_progress = false;
        shared.dispatch(&mut core);
        core.raft.log_base().index
    };
    // The WAL keeps what the log keeps (and at most up to the segment holding it).
    storage.compact(log_base.min(last.index))?;
    shared.log.info(format_args!(
        "snapshot at index {} saved ({} bytes, encoded in {} ms, written in {} ms); log compacted, {} wal segments left",
        last.index,
        storage.snapshot_bytes(),
        encode_ms,
        started.elapsed().as_millis(),
        storage.wal_segment_count()
    ));
    Ok(())
}
