//! A member's stable storage and its single writer.
//!
//! The writer takes persist batches in order and makes each durable after a random
//! latency; batches finish in the order they were taken (one writer, like the log
//! writer thread). With group commit, batches that queue up while a write is in
//! progress share the next write (one fsync), as a runtime's log writer does; a batch
//! with nothing to write (only messages waiting for earlier batches) costs no time of
//! its own. A crash loses every batch not yet finished; with torn writes on,
//! the batch being written may leave its hard state and a prefix of its entries
//! behind, as a write-ahead log cut mid-batch does (hard state first, then entries;
//! an entry record at index i supersedes every stored entry at or after i).

use std::collections::VecDeque;

use raftkv::raft::{Entry, HardState, Index, InitialState, LogPosition, Payload, PersistBatch};

/// What survives a crash.
#[derive(Clone, Debug, Default)]
pub struct DurableStore {
    /// Term and vote.
    pub hard_state: HardState,
    /// The log. Invariant: `entries[i].index == i + 1`. Entries up to `base` stand
    /// for the snapshot's contents (the snapshot of a member is the committed log up
    /// to its base); Raft gets only those after it.
    pub entries: Vec<Entry>,
    /// The snapshot's last position ((0, 0) without one).
    pub base: LogPosition,
}

impl DurableStore {
    /// Makes `hard_state` and `entries` durable: stored entries at or after
    /// `entries[0].index` are replaced.
    pub fn write(&mut self, hard_state: Option<HardState>, entries: &[Entry]) {
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
        let Some(first) = entries.first() else {
            return;
        };
        assert!(
            first.index >= 1 && first.index <= self.entries.len() as Index + 1,
            "batch starts at index {} but the store ends at {}: a gap",
            first.index,
            self.entries.len()
        );
        self.entries.truncate(first.index as usize - 1);
        for entry in entries {
            assert_eq!(
                entry.index,
                self.entries.len() as Index + 1,
                "batch entries are not consecutive"
            );
            self.entries.push(entry.clone());
        }
    }

    /// The state a restarted member recovers.
    pub fn initial_state(&self) -> InitialState {
        InitialState {
            hard_state: self.hard_state,
            log_base: self.base,
            entries: self.entries[self.base.index as usize..].to_vec(),
            membership: self.entries[..self.base.index as usize]
                .iter()
                .rev()
                .find_map(|e| match &e.payload {
                    Payload::Membership(m) => Some(m.clone()),
                    _ => None,
                }),
        }
    }

    /// A snapshot at `through` (stored) becomes the base.
    pub fn compact(&mut self, through: LogPosition) {
        assert_eq!(
            self.entry(through.index).map(|e| e.term),
            Some(through.term),
            "compaction through {through:?}, which the store does not hold"
        );
        self.base = self.base.max(through);
    }

    /// Installs a received snapshot whose contents are `entries` (1..=last): the
    /// stored entries after it stay only if the store holds `last` itself (§7).
    pub fn install(&mut self, last: LogPosition, entries: Vec<Entry>) {
        let holds = self.entry(last.index).map(|e| e.term) == Some(last.term);
        let suffix = if holds {
            self.entries.split_off(last.index as usize)
        } else {
            Vec::new()
        };
        self.entries = entries;
        self.entries.extend(suffix);
        self.base = last;
    }

    /// The stored entry at `index`, if any.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let i = usize::try_from(index).ok()?.checked_sub(1)?;
        self.entries.get(i)
    }
}

struct PendingWrite {
    done_at_ms: u64,
    batch: PersistBatch,
}

/// The single writer of one member.
#[derive(Default)]
pub struct Writer {
    queue: VecDeque<PendingWrite>,
    /// Whether batches queued behind a write share the next one.
    group_commit: bool,
    /// When the last write starts; a write not yet started can take more batches.
    last_start_ms: u64,
    /// When the last queued batch finishes; a later batch never finishes earlier.
    last_done_ms: u64,
}

impl Writer {
    /// An idle writer.
    pub fn new(group_commit: bool) -> Writer {
        Writer {
            group_commit,
            ..Writer::default()
        }
    }

    /// Queues a batch; a write takes `latency_ms` once the writer is free.
    pub fn submit(&mut self, batch: PersistBatch, now_ms: u64, latency_ms: u64) {
        let nothing_to_write = batch.hard_state.is_none() && batch.entries.is_empty();
        let joins_waiting_write = self.group_commit && self.last_start_ms > now_ms;
        let done_at_ms = if nothing_to_write || joins_waiting_write {
            self.last_done_ms.max(now_ms)
        } else {
            self.last_start_ms = self.last_done_ms.max(now_ms);
            self.last_start_ms + latency_ms
        };
        self.last_done_ms = done_at_ms;
        self.queue.push_back(PendingWrite { done_at_ms, batch });
    }

    /// When the batch being written finishes.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.queue.front().map(|w| w.done_at_ms)
    }

    /// The batch that finished at or before `now_ms`, if any.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<PersistBatch> {
        if self.next_due_ms()? <= now_ms {
            self.queue.pop_front().map(|w| w.batch)
        } else {
            None
        }
    }

    /// Batches not yet durable.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Forgets every unfinished batch; returns the one being written, which a torn
    /// write may leave partly on disk.
    pub fn crash(&mut self) -> Option<PersistBatch> {
        let current = self.queue.pop_front().map(|w| w.batch);
        self.queue.clear();
        current
    }
}
