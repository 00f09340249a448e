//! Reading one segment back at recovery, and telling a torn tail (a crash during an
//! unacknowledged write) from corruption (data that was acknowledged and is damaged).
//!
//! Only the last segment can have a torn tail: a segment is synced before the next
//! one is created. In it, the first bad record is torn, and cut off, if
//! - its header is incomplete at the end of the file, or
//! - its length checks out (`len_crc`) but the body runs past the end of the file, or
//! - its body CRC fails and only zero bytes, or nothing, follow it, or
//! - everything from it to the end of the file is zero bytes (space the file system
//!   had extended but whose data never reached the disk).
//!
//! Any other bad record — a damaged length, a body CRC mismatch followed by more
//! data, an impossible length, a body that does not decode, an index out of sequence,
//! a term going backwards — is corruption and refused with the file and offset. Known limit: if the disk
//! persisted the pages of an interrupted multi-record write out of order, the hole is
//! not at the tail and recovery refuses it rather than guess.

use std::path::Path;

use super::record::{
    decode_entry, decode_segment_header, RecordHeader, MAX_RECORD_BYTES, RECORD_HEADER_BYTES,
    SEGMENT_HEADER_BYTES,
};
use crate::raft::{Entry, Index, Term};
use crate::storage::error::StorageError;

/// Where an entry lives in its segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Byte offset of the record's header.
    pub offset: u64,
    /// The entry's term.
    pub term: Term,
}

/// What a segment held.
#[derive(Debug)]
pub struct Scanned {
    /// Its entries, consecutive from the header's first index.
    pub entries: Vec<Entry>,
    /// Their locations, parallel to `entries`.
    pub locs: Vec<Loc>,
    /// Bytes up to the end of the last good record.
    pub valid_len: u64,
    /// If the tail was torn: why (the caller truncates to `valid_len` and warns).
    pub torn: Option<String>,
}

/// Scans `bytes`, the whole content of segment `path` named for `first_index`.
/// `prev_term` is the term of the entry before it (0 if none); `is_last` allows a torn
/// tail.
pub fn scan_segment(
    path: &Path,
    bytes: &[u8],
    first_index: Index,
    prev_term: Term,
    is_last: bool,
) -> Result<Scanned, StorageError> {
    let header_index =
        decode_segment_header(bytes).map_err(|detail| StorageError::corrupt(path, 0, detail))?;
    if header_index != first_index {
        let detail = format!("header says first index {header_index}, file name {first_index}");
        return Err(StorageError::corrupt(path, 8, detail));
    }
    let mut out = Scanned {
        entries: Vec::new(),
        locs: Vec::new(),
        valid_len: SEGMENT_HEADER_BYTES,
        torn: None,
    };
    let mut last_term = prev_term;
    while out.valid_len < bytes.len() as u64 {
        let offset = out.valid_len;
        let expected_index = first_index + out.entries.len() as u64;
        let entry = match next_record(bytes, offset) {
            Ok((entry, end)) => {
                out.valid_len = end;
                entry
            }
            Err(Bad {
                torn_if_last: true,
                reason,
            }) if is_last => {
                out.torn = Some(reason);
                break;
            }
            Err(Bad { reason, .. }) => return Err(StorageError::corrupt(path, offset, reason)),
        };
        check_sequence(&entry, expected_index, last_term)
            .map_err(|d| StorageError::corrupt(path, offset, d))?;
        last_term = entry.term;
        out.locs.push(Loc {
            offset,
            term: entry.term,
        });
        out.entries.push(entry);
    }
    Ok(out)
}

/// A record that could not be read, and whether it looks like a torn write.
struct Bad {
    torn_if_last: bool,
    reason: String,
}

/// Reads the record at `offset`: the entry and the offset just past it.
fn next_record(bytes: &[u8], offset: u64) -> Result<(Entry, u64), Bad> {
    let rest = &bytes[offset as usize..];
    if (rest.len() as u64) < RECORD_HEADER_BYTES {
        let reason = format!("partial record header ({} bytes)", rest.len());
        return Err(Bad {
            torn_if_last: true,
            reason,
        });
    }
    let header = RecordHeader::decode(rest);
    if !header.len_ok() {
        let reason = "record length fails its crc".to_string();
        return Err(Bad {
            torn_if_last: all_zero(rest),
            reason,
        });
    }
    if header.body_len == 0 || header.body_len > MAX_RECORD_BYTES {
        let reason = format!("impossible record length {}", header.body_len);
        return Err(Bad {
            torn_if_last: false,
            reason,
        });
    }
    let body_start = RECORD_HEADER_BYTES as usize;
    let body_end = body_start + header.body_len as usize;
    if body_end > rest.len() {
        let reason = format!(
            "record of {} bytes runs past the end of the file",
            header.body_len
        );
        return Err(Bad {
            torn_if_last: true,
            reason,
        });
    }
    if !header.body_ok(&rest[body_start..body_end]) {
        let reason = format!("crc mismatch in a record of {} bytes", header.body_len);
        return Err(Bad {
            torn_if_last: all_zero(&rest[body_end..]),
            reason,
        });
    }
    let entry = decode_entry(&rest[body_start..body_end]).map_err(|reason| Bad {
        torn_if_last: false,
        reason,
    })?;
    Ok((entry, offset + body_end as u64))
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Checks that `entry` is the next one of the log.
fn check_sequence(entry: &Entry, expected_index: Index, last_term: Term) -> Result<(), String> {
    if entry.index != expected_index {
        return Err(format!(
            "entry index {} where {} was expected",
            entry.index, expected_index
        ));
    }
    if entry.term < last_term {
        return Err(format!(
            "entry {} has term {} after term {}",
            entry.index, entry.term, last_term
        ));
    }
    Ok(())
}
