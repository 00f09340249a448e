//! Durable state of one node: the data directory.
//!
//! ```text
//! DATA/
//!   LOCK         flock'ed for the lifetime of the Storage (a second process gets Locked)
//!   meta         node id, cluster, peers; a restart with others is refused (MetaMismatch)
//!   hard_state   term and vote                       (replaced atomically)
//!   snapshot     last included position + opaque data (replaced atomically)
//!   wal/         append-only segments of log entries  (one fdatasync per batch)
//! ```
//!
//! Every file carries a magic, a format version and CRC-32s; a damaged file is refused
//! with the file and offset, never misread. Recovery reads the hard state, then the
//! snapshot, then the WAL; it cuts a torn tail of the last segment (a crash during an
//! unacknowledged write) with a warning, and refuses corruption anywhere else.
//!
//! Errors: every failure is a [`StorageError`] naming the file and the operation. A
//! failed fsync ([`StorageErrorKind::SyncFailed`]) is fatal: the node must stop and
//! recover from disk, because after a failed fsync the kernel may already have
//! dropped the unwritten pages. After any failed write, fsync, rename or delete this
//! `Storage` refuses further writes ([`StorageErrorKind::Poisoned`]): what reached the
//! disk is unknown, and only recovery can tell. (An entry refused as
//! [`StorageErrorKind::TooLarge`] touches no file and does not poison.)
//!
//! Ordering for the runtime: within one persist batch, call
//! [`Storage::save_hard_state`] before [`Storage::append`], so a crash between them
//! never leaves entries of a term newer than the stored `current_term`.

mod codec;
mod crc32;
mod error;
mod files;
mod lock;
mod meta;
mod peer_book;
mod snapshot_transfer;
mod state_files;
mod wal;

use std::fs;
use std::path::{Path, PathBuf};

use crate::raft::{Entry, HardState, Index, LogPosition, Term};
use lock::DirLock;
use wal::Wal;

pub use crc32::{crc32, Crc32};
pub use error::{StorageError, StorageErrorKind};
pub use files::write_atomic;
pub use meta::Meta;
pub use peer_book::{
    check_not_removed, mark_removed, save as save_peer_book, PeerBook, PeerRecord, PEER_BOOK_FILE,
    REMOVED_FILE,
};
pub use snapshot_transfer::SnapshotReader;
pub use state_files::SnapshotFile;
pub use wal::MAX_RECORD_BYTES;

/// Tuning of the storage. [`StorageOptions::default`] is what the node uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageOptions {
    /// Roll to a new WAL segment before a batch once the active one holds this many
    /// bytes. Default 64 MiB; tests use tiny values to get many segments.
    pub segment_max_bytes: u64,
}

impl Default for StorageOptions {
    fn default() -> StorageOptions {
        StorageOptions {
            segment_max_bytes: 64 << 20,
        }
    }
}

/// What [`Storage::open`] found on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The last saved term and vote; the default if none was saved yet.
    pub hard_state: HardState,
    /// The last saved snapshot, if any.
    pub snapshot: Option<SnapshotFile>,
    /// The snapshot's last position, or (0, 0) without one.
    pub log_base: LogPosition,
    /// The log after the base, consecutive from `log_base.index + 1`.
    pub entries: Vec<Entry>,
    /// Repairs made while opening (a torn tail cut, a stale `.tmp` removed); the node
    /// logs them.
    pub warnings: Vec<String>,
    /// The identity as stored (its incarnation and `join` are the directory's own).
    pub meta: Meta,
    /// The incarnations of the members this node has heard from.
    pub peer_book: PeerBook,
}

/// The durable state of one node. Owned by one thread (the runtime's log writer): it
/// takes no locks, and every method blocks on disk I/O.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    /// Held until drop; keeps other processes out of `dir`.
    _lock: DirLock,
    wal: Wal,
    /// The snapshot's last position. Invariant: `base.index < wal.next_index()`, and
    /// the WAL holds every entry from `base.index + 1`.
    base: LogPosition,
    /// The last hard state saved or recovered. Invariant: its term never decreases.
    hard_state: HardState,
    /// Size of the snapshot file (0 without one).
    snapshot_bytes: u64,
    /// Set by a failed write; then every write is refused.
    poisoned: bool,
}

impl Storage {
    /// [`Storage::open_with`] with the default options.
    pub fn open(dir: &Path, meta: &Meta) -> Result<(Storage, Recovered), StorageError> {
        Storage::open_with(dir, meta, &StorageOptions::default())
    }

    /// Creates `dir` if needed, takes `dir/LOCK` (held for the Storage's lifetime),
    /// writes `dir/meta` on the first start or refuses a different node id, cluster
    /// or peer list, then recovers the hard state, the snapshot and the WAL.
    pub fn open_with(
        dir: &Path,
        meta: &Meta,
        options: &StorageOptions,
    ) -> Result<(Storage, Recovered), StorageError> {
        assert!(
            options.segment_max_bytes > 0,
            "segment_max_bytes must be positive"
        );
        create_data_dir(dir)?;
        let lock = DirLock::acquire(dir)?;
        peer_book::check_not_removed(dir)?;
        let meta = meta::check_or_create(dir, meta)?;
        let peer_book = peer_book::load(dir)?;
        let mut warnings = Vec::new();
        if snapshot_transfer::remove_stale_recv(dir)? {
            warnings.push("removed snapshot.recv left by an interrupted snapshot transfer".into());
        }
        let hard_state = state_files::load_hard_state(dir, &mut warnings)?;
        let loaded = state_files::load_snapshot(dir, &mut warnings)?;
        let base = loaded
            .as_ref()
            .map_or(LogPosition::default(), |(s, _)| s.last);
        let snapshot_bytes = loaded.as_ref().map_or(0, |(_, bytes)| *bytes);
        let (wal, entries) = Wal::recover(dir, base, options.segment_max_bytes, &mut warnings)?;
        let storage = Storage {
            dir: dir.to_path_buf(),
            _lock: lock,
            wal,
            base,
            hard_state,
            snapshot_bytes,
            poisoned: false,
        };
        storage.check_invariants();
        let snapshot = loaded.map(|(s, _)| s);
        let recovered = Recovered {
            hard_state,
            snapshot,
            log_base: base,
            entries,
            warnings,
            meta,
            peer_book,
        };
        Ok((storage, recovered))
    }

    /// Appends a batch and makes it durable with one fdatasync. If `entries[0].index`
    /// is at or below the last stored index, first durably removes the stored suffix
    /// from that index (a leader overwrote a conflicting tail). Entries must be
    /// consecutive, start after the snapshot and no later than `last_index() + 1`,
    /// and their terms must not decrease.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        crate::sync::assert_no_io_free_lock("appending to the WAL");
        let Some(first) = entries.first() else {
            return Ok(());
        };
        self.check_writable("append to")?;
        check_batch(entries);
        assert!(
            first.index > self.base.index,
            "append at {} inside the snapshot ending at {}",
            first.index,
            self.base.index
        );
        assert!(
            first.index <= self.last_index() + 1,
            "append at {} leaves a gap after {}",
            first.index,
            self.last_index()
        );
        let prev_term = self.term_at(first.index - 1);
        assert!(
            first.term >= prev_term,
            "entry {} has term {} after term {prev_term}",
            first.index,
            first.term
        );
        // Encoding touches no file: an oversized entry is refused without poisoning.
        let batch = self.wal.encode(entries)?;
        let result = self.append_unchecked(&batch, first.index);
        self.note_result(&result);
        self.check_invariants();
        result
    }

    /// Replaces the hard state file (atomically). Terms never decrease.
    pub fn save_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        crate::sync::assert_no_io_free_lock("saving the hard state");
        self.check_writable("save")?;
        assert!(
            hs.current_term >= self.hard_state.current_term,
            "hard state term going back from {} to {}",
            self.hard_state.current_term,
            hs.current_term
        );
        let result = state_files::save_hard_state(&self.dir, hs);
        self.note_result(&result);
        result?;
        self.hard_state = *hs;
        Ok(())
    }

    /// Replaces the snapshot file (atomically) and makes `snap.last` the log base.
    /// Stored entries after it are kept if the log holds `snap.last` itself (same
    /// index and term); otherwise the snapshot supersedes the whole log (§7), which is
    /// emptied, and the next append must be at `snap.last.index + 1`.
    pub fn save_snapshot(&mut self, snap: &SnapshotFile) -> Result<(), StorageError> {
        crate::sync::assert_no_io_free_lock("saving a snapshot");
        self.check_writable("save")?;
        let last = snap.last;
        assert!(
            last.index >= self.base.index,
            "snapshot at {} behind the base {}",
            last.index,
            self.base.index
        );
        if last.index == self.base.index {
            assert_eq!(
                last.term, self.base.term,
                "snapshot at index {} with another term",
                last.index
            );
        }
        let result = self.save_snapshot_unchecked(snap);
        self.note_result(&result);
        self.check_invariants();
        result
    }

    /// Writes a chunk of a snapshot being received to `snapshot.recv` at `offset`
    /// (offset 0 starts the file over). Not synced until [`Storage::install_received`].
    pub fn write_snapshot_chunk(&mut self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.check_writable("write")?;
        let result = snapshot_transfer::write_chunk(&self.dir, offset, data);
        self.note_result(&result);
        result
    }

    /// Checks the fully received `snapshot.recv` (CRC, decoding, that it is at `last`),
    /// then lets `accept` check its data (the caller decodes the state machine, whose
    /// digest a CRC recomputed over altered data cannot fool), and only then installs
    /// it atomically as the snapshot (rename, directory fsync), with the same log rule
    /// as [`Storage::save_snapshot`]; if the log after it is kept, the WAL segments
    /// wholly at or before it are deleted, as by [`Storage::compact`].
    /// `Ok(Err(why))`: the file was bad or `accept` refused it; it is discarded and
    /// nothing else changed. `Ok(Ok(t))`: installed, `t` from `accept`. The caller must
    /// not install a snapshot at or behind the current base.
    pub fn install_received<T>(
        &mut self,
        last: LogPosition,
        accept: impl FnOnce(&SnapshotFile) -> Result<T, String>,
    ) -> Result<Result<T, String>, StorageError> {
        self.check_writable("install")?;
        assert!(
            last.index > self.base.index,
            "installing snapshot {last:?} at or behind the base {:?}",
            self.base
        );
        let result = self.install_received_unchecked(last, accept);
        self.note_result(&result);
        self.check_invariants();
        result
    }

    fn install_received_unchecked<T>(
        &mut self,
        last: LogPosition,
        accept: impl FnOnce(&SnapshotFile) -> Result<T, String>,
    ) -> Result<Result<T, String>, StorageError> {
        let (snap, bytes, path) = match snapshot_transfer::check_received(&self.dir, last)? {
            Ok(ok) => ok,
            Err(why) => return Ok(Err(why)),
        };
        let accepted = match accept(&snap) {
            Ok(accepted) => accepted,
            Err(why) => {
                let _ = fs::remove_file(&path);
                return Ok(Err(why));
            }
        };
        drop(snap);
        let keeps_log = self.term_of(last.index) == Some(last.term);
        let target = self.dir.join(state_files::SNAPSHOT_FILE);
        fs::rename(&path, &target).map_err(|e| StorageError::io("rename", &path, e))?;
        files::sync_dir(&self.dir)?;
        self.snapshot_bytes = bytes;
        self.base = last;
        if keeps_log {
            // The log after `last` stays; the segments wholly covered by the snapshot
            // go, as after a snapshot of our own (else they would stay on disk until
            // our next one, and received snapshots can come one after another).
            self.wal.compact(last.index)?;
        } else {
            self.wal.reset(last.index + 1)?;
        }
        Ok(Ok(accepted))
    }

    /// Deletes WAL segments whose entries are all at or before `through`, which the
    /// snapshot must cover. The active segment is never deleted.
    pub fn compact(&mut self, through: Index) -> Result<(), StorageError> {
        crate::sync::assert_no_io_free_lock("compacting the WAL");
        self.check_writable("compact")?;
        assert!(
            through <= self.base.index,
            "compact through {through} beyond the snapshot {}",
            self.base.index
        );
        let result = self.wal.compact(through);
        self.note_result(&result);
        self.check_invariants();
        result
    }

    /// The last index of the log (the snapshot's if the log after it is empty).
    pub fn last_index(&self) -> Index {
        self.wal.next_index() - 1
    }

    /// The snapshot's last position ((0, 0) without one).
    pub fn log_base(&self) -> LogPosition {
        self.base
    }

    /// Size of the snapshot file in bytes (0 without one).
    pub fn snapshot_bytes(&self) -> u64 {
        self.snapshot_bytes
    }

    /// Number of WAL segment files (for status and tests).
    pub fn wal_segment_count(&self) -> usize {
        self.wal.segment_count()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn append_unchecked(&mut self, batch: &wal::Batch, first: Index) -> Result<(), StorageError> {
        if first <= self.last_index() {
            self.wal.truncate_from(first)?;
        }
        self.wal.append(batch)
    }

    fn save_snapshot_unchecked(&mut self, snap: &SnapshotFile) -> Result<(), StorageError> {
        // §7: keep the entries after the snapshot only if the log holds its last entry.
        let keeps_log = self.term_of(snap.last.index) == Some(snap.last.term);
        self.snapshot_bytes = state_files::save_snapshot(&self.dir, snap)?;
        self.base = snap.last;
        if !keeps_log {
            self.wal.reset(snap.last.index + 1)?;
        }
        Ok(())
    }

    /// The term of entry `index`, which is the base or stored.
    fn term_at(&self, index: Index) -> Term {
        let term = self.term_of(index);
        term.unwrap_or_else(|| {
            panic!(
                "entry {index} is neither the base {} nor stored",
                self.base.index
            )
        })
    }

    /// The term of entry `index` if it is the base or stored.
    fn term_of(&self, index: Index) -> Option<Term> {
        if index == self.base.index {
            Some(self.base.term)
        } else {
            self.wal.term_at(index)
        }
    }

    fn check_writable(&self, op: &'static str) -> Result<(), StorageError> {
        if self.poisoned {
            let detail = "the node must restart and recover".to_string();
            return Err(StorageError::other(
                StorageErrorKind::Poisoned,
                op,
                &self.dir,
                detail,
            ));
        }
        Ok(())
    }

    fn note_result<T>(&mut self, result: &Result<T, StorageError>) {
        if result.is_err() {
            self.poisoned = true;
        }
    }

    fn check_invariants(&self) {
        let next = self.wal.next_index();
        assert!(
            self.base.index < next,
            "log base {} not below the wal's next index {next}",
            self.base.index
        );
        assert!(
            self.wal.first_index() <= self.base.index + 1,
            "wal starts at {} after base {}",
            self.wal.first_index(),
            self.base.index
        );
    }
}

/// Creates the data directory if it does not exist, durably (its parent is fsynced).
fn create_data_dir(dir: &Path) -> Result<(), StorageError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(|e| StorageError::io("create", dir, e))?;
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => files::sync_dir(parent),
        None => Ok(()),
    }
}

/// Asserts a batch is consecutive with terms not decreasing.
fn check_batch(entries: &[Entry]) {
    for pair in entries.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(
            b.index,
            a.index + 1,
            "batch not consecutive: {} after {}",
            b.index,
            a.index
        );
        assert!(
            b.term >= a.term,
            "batch term decreasing: entry {} term {} after term {}",
            b.index,
            b.term,
            a.term
        );
    }
}
