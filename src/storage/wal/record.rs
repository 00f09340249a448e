//! Byte layout of WAL segments.
//!
//! ```text
//! segment = header record*
//! header  = magic "RKVW" | version u32 LE | first_index u64 LE | crc32 of the 16 bytes before, u32 LE
//! record  = body_len u32 LE | len_crc u32 LE | body_crc u32 LE | body [body_len]
//! body    = one `Entry` in bincode (varint)
//! ```
//!
//! `len_crc` is the CRC-32 of the four `body_len` bytes. It lets recovery trust a
//! length before trusting the record: a length that checks out but runs past the end
//! of the file is a write cut short by a crash (a torn tail), while a damaged length is
//! corruption. Without it a flipped bit in the length of a middle record would look
//! like a torn tail and silently drop every acknowledged record after it.

use bincode::Options;

use super::super::codec::{bincode_options, le4, le8, version_refusal, FORMAT_VERSION};
use super::super::crc32::Crc32;
use crate::raft::{Entry, Index};

/// Bytes of a segment header.
pub const SEGMENT_HEADER_BYTES: u64 = 20;
/// Bytes of a record header.
pub const RECORD_HEADER_BYTES: u64 = 12;
/// Largest encoded entry the WAL accepts (and believes on recovery). Bigger lengths on
/// disk are impossible records. Derived with the request and frame limits in
/// [`crate::limits`], so the largest legal entry always fits.
pub const MAX_RECORD_BYTES: u32 = crate::limits::MAX_RECORD_BYTES;
const SEGMENT_MAGIC: &[u8; 4] = b"RKVW";

/// The header of a new segment whose first record will hold `first_index`.
pub fn encode_segment_header(first_index: Index) -> Vec<u8> {
    let mut out = Vec::with_capacity(SEGMENT_HEADER_BYTES as usize);
    out.extend_from_slice(SEGMENT_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&first_index.to_le_bytes());
    let crc = Crc32::new().update(&out).finish();
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a segment header: its first index, or why it is not one.
pub fn decode_segment_header(bytes: &[u8]) -> Result<Index, String> {
    if (bytes.len() as u64) < SEGMENT_HEADER_BYTES {
        return Err(format!(
            "segment is {} bytes, shorter than its header",
            bytes.len()
        ));
    }
    if &bytes[0..4] != SEGMENT_MAGIC {
        return Err(format!(
            "bad magic {:?}, expected {:?}",
            &bytes[0..4],
            SEGMENT_MAGIC
        ));
    }
    let stored_crc = u32::from_le_bytes(le4(&bytes[16..20]));
    if Crc32::new().update(&bytes[0..16]).finish() != stored_crc {
        return Err("segment header crc mismatch".to_string());
    }
    let version = u32::from_le_bytes(le4(&bytes[4..8]));
    if version != FORMAT_VERSION {
        return Err(format!("wal segment {}", version_refusal(version)));
    }
    Ok(u64::from_le_bytes(le8(&bytes[8..16])))
}

/// Appends the record of `entry` to `out`; `Err(size)` if its body would exceed
/// [`MAX_RECORD_BYTES`] (nothing is appended then).
pub fn encode_record(entry: &Entry, out: &mut Vec<u8>) -> Result<(), u64> {
    let start = out.len();
    let header_end = start + RECORD_HEADER_BYTES as usize;
    out.resize(header_end, 0);
    // Encoding an `Entry` fails only on the size limit (it has no maps or unsized
    // data). Encoding in place saves an allocation and a copy per entry.
    let options = bincode_options(u64::from(MAX_RECORD_BYTES));
    if options.serialize_into(&mut *out, entry).is_err() {
        out.truncate(start);
        let size = bincode_options(u64::MAX).serialized_size(entry);
        return Err(size.unwrap_or(u64::MAX));
    }
    let body_len = out.len() - header_end;
    let len = u32::try_from(body_len).map_err(|_| body_len as u64)?;
    let len_bytes = len.to_le_bytes();
    let len_crc = Crc32::new().update(&len_bytes).finish();
    let body_crc = Crc32::new().update(&out[header_end..]).finish();
    out[start..start + 4].copy_from_slice(&len_bytes);
    out[start + 4..start + 8].copy_from_slice(&len_crc.to_le_bytes());
    out[start + 8..header_end].copy_from_slice(&body_crc.to_le_bytes());
    Ok(())
}

/// One record header as read from disk.
#[derive(Clone, Copy, Debug)]
pub struct RecordHeader {
    /// Length of the body.
    pub body_len: u32,
    /// Stored CRC of `body_len`.
    pub len_crc: u32,
    /// Stored CRC of the body.
    pub body_crc: u32,
}

impl RecordHeader {
    /// Parses the first [`RECORD_HEADER_BYTES`] of `bytes`.
    pub fn decode(bytes: &[u8]) -> RecordHeader {
        assert!(
            bytes.len() >= RECORD_HEADER_BYTES as usize,
            "record header needs {RECORD_HEADER_BYTES} bytes, got {}",
            bytes.len()
        );
        RecordHeader {
            body_len: u32::from_le_bytes(le4(&bytes[0..4])),
            len_crc: u32::from_le_bytes(le4(&bytes[4..8])),
            body_crc: u32::from_le_bytes(le4(&bytes[8..12])),
        }
    }

    /// Whether the length matches its CRC.
    pub fn len_ok(&self) -> bool {
        Crc32::new().update(&self.body_len.to_le_bytes()).finish() == self.len_crc
    }

    /// Whether `body` matches the body CRC.
    pub fn body_ok(&self, body: &[u8]) -> bool {
        Crc32::new().update(body).finish() == self.body_crc
    }
}

/// Decodes a record body whose CRC matched.
pub fn decode_entry(body: &[u8]) -> Result<Entry, String> {
    bincode_options(body.len() as u64)
        .deserialize(body)
        .map_err(|e| format!("cannot decode entry: {e}"))
}
