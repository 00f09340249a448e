//! The write-ahead log: log entries in append-only segment files under `wal/`.
//!
//! Appending a batch costs one `write` and one `fdatasync`, whatever the log's size.
//! A leader overwriting a conflicting tail first truncates (durably), then appends.
//! Segments roll over at a size threshold so that compaction can delete whole files.
//! See [`record`] for the byte layout and [`scan`] for what recovery accepts.

mod record;
mod recover;
mod scan;
mod segment;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::raft::{Entry, Index, Term};
use crate::storage::error::{StorageError, StorageErrorKind};
use scan::Loc;
use segment::{create_segment, open_for_append, remove_segments};

pub use record::MAX_RECORD_BYTES;

/// Name of the WAL directory inside the data directory.
pub const WAL_DIR: &str = "wal";

/// One segment file as the writer knows it.
#[derive(Debug)]
struct Segment {
    /// Index of its first record (also in its header and its name).
    first_index: Index,
    path: PathBuf,
    /// Location of each record; entry `first_index + i` is at `locs[i]`.
    locs: Vec<Loc>,
    /// File length in bytes (header included).
    len: u64,
}

impl Segment {
    fn next_index(&self) -> Index {
        self.first_index + self.locs.len() as u64
    }
}

/// Records encoded and ready to write, from [`Wal::encode`].
#[derive(Debug)]
pub struct Batch {
    /// Index of the first entry.
    first_index: Index,
    /// The records, back to back.
    bytes: Vec<u8>,
    /// Each record's offset within `bytes`, and its term.
    locs: Vec<Loc>,
}

/// The open WAL. Owned by one thread; no locks.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    /// Roll to a new segment before a batch once the active one has this many bytes.
    segment_max_bytes: u64,
    /// Sorted, contiguous: `segments[i + 1].first_index == segments[i].next_index()`.
    /// Invariant: never empty; the last one is the active segment.
    segments: Vec<Segment>,
    /// The active segment, opened for appending.
    active: File,
}

impl Wal {
    /// Index the next appended entry must have.
    pub fn next_index(&self) -> Index {
        self.active_segment().next_index()
    }

    /// Index of the first entry still stored (entries before it were compacted away).
    pub fn first_index(&self) -> Index {
        self.segments[0].first_index
    }

    /// The term of stored entry `index`, if stored.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        let seg = self
            .segments
            .iter()
            .rev()
            .find(|s| s.first_index <= index)?;
        seg.locs
            .get((index - seg.first_index) as usize)
            .map(|loc| loc.term)
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Encodes a batch for [`Wal::append`], refusing an oversized entry before
    /// anything touches the disk.
    pub fn encode(&self, entries: &[Entry]) -> Result<Batch, StorageError> {
        let capacity = entries.iter().map(|e| e.size_bytes() + 16).sum();
        let mut batch = Batch {
            first_index: entries[0].index,
            bytes: Vec::with_capacity(capacity),
            locs: Vec::with_capacity(entries.len()),
        };
        for entry in entries {
            let offset = batch.bytes.len() as u64;
            batch.locs.push(Loc {
                offset,
                term: entry.term,
            });
            encode_record(entry, &mut batch.bytes, &self.dir)?;
        }
        Ok(batch)
    }

    /// Writes a batch that starts at [`Wal::next_index`] and fdatasyncs once.
    pub fn append(&mut self, batch: &Batch) -> Result<(), StorageError> {
        let next = self.next_index();
        assert_eq!(batch.first_index, next, "wal append must continue the log");
        let seg = self.active_segment();
        if seg.len >= self.segment_max_bytes && !seg.locs.is_empty() {
            self.roll()?;
        }
        let seg = self.segments.last_mut().expect("wal has an active segment");
        let path = &seg.path;
        let write = self.active.write_all(&batch.bytes);
        write.map_err(|e| StorageError::io("write", path, e))?;
        let sync = self.active.sync_data();
        sync.map_err(|e| StorageError::sync(path, e))?;
        let start = seg.len;
        let placed = batch.locs.iter().map(|loc| Loc {
            offset: start + loc.offset,
            ..*loc
        });
        seg.locs.extend(placed);
        seg.len += batch.bytes.len() as u64;
        Ok(())
    }

    /// Durably removes every entry from `index` on; afterwards `next_index() == index`.
    pub fn truncate_from(&mut self, index: Index) -> Result<(), StorageError> {
        assert!(
            index >= self.first_index(),
            "truncate at {index} below wal start {}",
            self.first_index()
        );
        assert!(
            index < self.next_index(),
            "truncate at {index} past wal end {}",
            self.next_index()
        );
        let keep = self
            .segments
            .iter()
            .rposition(|s| s.first_index <= index)
            .expect("index >= first_index");
        let dropped = self.segments.split_off(keep + 1);
        remove_segments(&self.dir, dropped.iter().map(|s| &s.path))?;
        let seg = self.segments.last_mut().expect("kept one segment");
        let cut = (index - seg.first_index) as usize;
        let offset = seg.locs[cut].offset;
        let file = open_for_append(&seg.path)?;
        file.set_len(offset)
            .map_err(|e| StorageError::io("truncate", &seg.path, e))?;
        file.sync_all()
            .map_err(|e| StorageError::sync(&seg.path, e))?;
        seg.locs.truncate(cut);
        seg.len = offset;
        self.active = file;
        assert_eq!(self.next_index(), index);
        Ok(())
    }

    /// Deletes every segment and starts an empty one at `next_index` (a snapshot
    /// replaced the whole log).
    pub fn reset(&mut self, next_index: Index) -> Result<(), StorageError> {
        remove_segments(&self.dir, self.segments.iter().map(|s| &s.path))?;
        self.segments.clear();
        let path = create_segment(&self.dir, next_index)?;
        self.active = open_for_append(&path)?;
        self.segments.push(Segment {
            first_index: next_index,
            path,
            locs: Vec::new(),
            len: record::SEGMENT_HEADER_BYTES,
        });
        Ok(())
    }

    /// Deletes the segments all of whose entries are at or below `through`; never the
    /// active one.
    pub fn compact(&mut self, through: Index) -> Result<(), StorageError> {
        let n = self
            .segments
            .windows(2)
            .take_while(|w| w[1].first_index <= through + 1)
            .count();
        let removed: Vec<Segment> = self.segments.drain(..n).collect();
        remove_segments(&self.dir, removed.iter().map(|s| &s.path))?;
        // The snapshot reaches into the active segment: start a fresh one, so the next
        // compaction can delete everything written so far (the WAL then stays within
        // about two snapshot intervals however large a segment may grow).
        let active = self.active_segment();
        if active.first_index <= through && !active.locs.is_empty() {
            self.roll()?;
        }
        Ok(())
    }

    fn active_segment(&self) -> &Segment {
        self.segments.last().expect("wal has an active segment")
    }

    /// Starts a new segment at the next index; the old one is already synced.
    fn roll(&mut self) -> Result<(), StorageError> {
        let first_index = self.next_index();
        let path = create_segment(&self.dir, first_index)?;
        self.active = open_for_append(&path)?;
        self.segments.push(Segment {
            first_index,
            path,
            locs: Vec::new(),
            len: record::SEGMENT_HEADER_BYTES,
        });
        Ok(())
    }
}

/// Encodes one record, mapping an oversized entry to `TooLarge`.
fn encode_record(entry: &Entry, buf: &mut Vec<u8>, path: &Path) -> Result<(), StorageError> {
    record::encode_record(entry, buf).map_err(|size| {
        let detail = format!(
            "entry {} encodes to {size} bytes, over the {MAX_RECORD_BYTES} byte limit",
            entry.index
        );
        StorageError::other(StorageErrorKind::TooLarge, "append", path, detail)
    })
}
