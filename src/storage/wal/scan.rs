//! Reading one segment back at recovery, and telling a torn tail (a crash during an
//! unacknowledged write) from corruption (data that was acknowledged and is damaged).
//!
//! Only the last segment can have a torn tail: a segment is synced before the next
//! one is created. In it, the first bad record is torn, and cut off, if
//! - its header is incomplete at the end of the file, or only zero bytes follow its
//!   header (a header cut short, the rest of the write never reached the disk), or
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
        // A header cut short by a crash reads as its first bytes followed by zeros;
        // nothing acknowledged can follow it (a zero body is no valid entry).
        let reason = "record length fails its crc".to_string();
        return Err(Bad {
            torn_if_last: all_zero(&rest[RECORD_HEADER_BYTES as usize..]),
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

#[cfg(test)]
mod tests {
    use super::super::record::{encode_record, encode_segment_header};
    use super::*;
    use crate::raft::Payload;
    use crate::storage::StorageErrorKind;

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            payload: Payload::Command(vec![index as u8; 10]),
        }
    }

    /// A segment named for `first` holding `entries`, and each record's offset.
    fn segment(first: Index, entries: &[Entry]) -> (Vec<u8>, Vec<u64>) {
        let mut bytes = encode_segment_header(first);
        let mut offsets = Vec::new();
        for e in entries {
            offsets.push(bytes.len() as u64);
            encode_record(e, &mut bytes).expect("small entry");
        }
        (bytes, offsets)
    }

    fn scan(bytes: &[u8], first: Index, is_last: bool) -> Result<Scanned, StorageError> {
        scan_segment(Path::new("wal/x.wal"), bytes, first, 0, is_last)
    }

    fn corrupt_offset(result: Result<Scanned, StorageError>) -> u64 {
        match result.map(|s| s.entries.len()) {
            Err(e) => match e.kind() {
                StorageErrorKind::Corrupt { offset } => *offset,
                other => panic!("expected corruption, got {other:?}: {e}"),
            },
            Ok(n) => panic!("expected corruption, scanned {n} entries"),
        }
    }

    #[test]
    fn a_well_formed_segment_scans_whole() {
        let (bytes, offsets) = segment(5, &[entry(5, 1), entry(6, 1), entry(7, 2)]);
        let scanned = scan(&bytes, 5, true).expect("scan");
        assert_eq!(scanned.entries, vec![entry(5, 1), entry(6, 1), entry(7, 2)]);
        let scanned_offsets: Vec<u64> = scanned.locs.iter().map(|l| l.offset).collect();
        assert_eq!(scanned_offsets, offsets);
        assert_eq!(scanned.valid_len, bytes.len() as u64);
        assert_eq!(scanned.torn, None);
    }

    #[test]
    fn records_out_of_sequence_are_corrupt_even_at_the_tail() {
        let (bytes, offsets) = segment(1, &[entry(1, 1), entry(3, 1)]);
        assert_eq!(corrupt_offset(scan(&bytes, 1, true)), offsets[1]);
        let (bytes, offsets) = segment(1, &[entry(1, 2), entry(2, 1)]);
        assert_eq!(corrupt_offset(scan(&bytes, 1, true)), offsets[1]);
    }

    #[test]
    fn a_header_that_disagrees_with_the_name_is_corrupt() {
        let (bytes, _) = segment(1, &[entry(1, 1)]);
        assert_eq!(corrupt_offset(scan(&bytes, 2, true)), 8);
        let mut bad = bytes.clone();
        bad[10] ^= 1;
        assert_eq!(corrupt_offset(scan(&bad, 1, true)), 0);
    }

    #[test]
    fn a_damaged_length_is_torn_only_when_zeros_follow() {
        let (mut bytes, offsets) = segment(1, &[entry(1, 1), entry(2, 1)]);
        let at = offsets[1] as usize;
        bytes[at] ^= 0x20;
        assert_eq!(corrupt_offset(scan(&bytes, 1, true)), offsets[1]);
        // A header of zeros and nothing but zeros after it: never written.
        bytes.truncate(at);
        bytes.resize(at + 64, 0);
        let scanned = scan(&bytes, 1, true).expect("zero tail is torn");
        assert_eq!(scanned.entries.len(), 1);
        assert_eq!(scanned.valid_len, offsets[1]);
        assert!(scanned.torn.is_some());
        // In a segment that is not the last, the same is corruption.
        assert_eq!(corrupt_offset(scan(&bytes, 1, false)), offsets[1]);
        // A header whose second half never reached the disk.
        let (full, _) = segment(1, &[entry(1, 1), entry(2, 1)]);
        let mut cut = full[..at + 6].to_vec();
        cut.resize(full.len(), 0);
        let scanned = scan(&cut, 1, true).expect("a header cut by zeros is torn");
        assert_eq!(scanned.valid_len, offsets[1]);
    }

    #[test]
    fn an_impossible_length_with_a_valid_crc_is_corrupt() {
        let (mut bytes, offsets) = segment(1, &[entry(1, 1)]);
        let at = offsets[0] as usize;
        let len = (MAX_RECORD_BYTES + 1).to_le_bytes();
        bytes[at..at + 4].copy_from_slice(&len);
        let len_crc = crate::storage::crc32(&len).to_le_bytes();
        bytes[at + 4..at + 8].copy_from_slice(&len_crc);
        assert_eq!(corrupt_offset(scan(&bytes, 1, true)), offsets[0]);
    }
}
