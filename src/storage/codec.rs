//! The envelope of every small file (meta, hard_state, snapshot): a magic naming the
//! file's kind, a format version, the body's length and CRC-32, then the body encoded
//! with bincode under a size limit.
//!
//! ```text
//! magic [4] | version u32 LE | body_len u64 LE | body_crc u32 LE | body [body_len]
//! ```
//!
//! A file that is short, foreign, from another version, or damaged is refused with
//! `Corrupt { offset }`, never misread.

use std::path::Path;

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::crc32::crc32;
use super::error::StorageError;

/// Version of every storage format in this file; bump when an encoding changes.
/// 2: `meta` gained the incarnation and `join`, the snapshot its configuration.
pub const FORMAT_VERSION: u32 = 2;

/// Why a file of format `version` is refused: an older build's is named as such.
pub fn version_refusal(version: u32) -> String {
    if version < FORMAT_VERSION {
        format!(
            "written by an older build of raftkv (storage format {version}; this build \
             reads format {FORMAT_VERSION} only, and no release used the older one): start \
             this member with an empty data directory"
        )
    } else {
        format!("unknown format version {version} (this build reads {FORMAT_VERSION})")
    }
}
/// Bytes before the body.
pub const HEADER_BYTES: usize = 4 + 4 + 8 + 4;

/// The bincode configuration of all storage files: varint integers, trailing bytes
/// rejected, at most `limit` bytes read or written.
pub fn bincode_options(limit: u64) -> impl Options {
    bincode::DefaultOptions::new().with_limit(limit)
}

/// Encodes `value` as a whole file of kind `magic`.
pub fn encode_file<T: Serialize>(
    magic: &[u8; 4],
    value: &T,
    path: &Path,
) -> Result<Vec<u8>, StorageError> {
    let body = bincode_options(u64::MAX).serialize(value).map_err(|e| {
        let detail = format!("cannot encode: {e}");
        StorageError::other(super::StorageErrorKind::Io, "encode", path, detail)
    })?;
    let mut out = Vec::with_capacity(HEADER_BYTES + body.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32(&body).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// The envelope header of a body of `body_len` bytes with CRC `body_crc`, for a
/// caller that writes the body in parts (the snapshot, too large to copy).
pub fn encode_header(magic: &[u8; 4], body_len: u64, body_crc: u32) -> [u8; HEADER_BYTES] {
    let mut out = [0u8; HEADER_BYTES];
    out[0..4].copy_from_slice(magic);
    out[4..8].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[8..16].copy_from_slice(&body_len.to_le_bytes());
    out[16..20].copy_from_slice(&body_crc.to_le_bytes());
    out
}

/// Decodes a whole file of kind `magic` read from `path`.
pub fn decode_file<T: DeserializeOwned>(
    magic: &[u8; 4],
    bytes: &[u8],
    path: &Path,
) -> Result<T, StorageError> {
    let body = check_envelope(magic, bytes, path)?;
    bincode_options(body.len() as u64)
        .deserialize(body)
        .map_err(|e| {
            StorageError::corrupt(path, HEADER_BYTES as u64, format!("cannot decode: {e}"))
        })
}

/// Checks the envelope of a whole file of kind `magic` (magic, version, length, CRC)
/// and returns its body.
pub fn check_envelope<'a>(
    magic: &[u8; 4],
    bytes: &'a [u8],
    path: &Path,
) -> Result<&'a [u8], StorageError> {
    let corrupt = |offset: u64, detail: String| StorageError::corrupt(path, offset, detail);
    if bytes.len() < HEADER_BYTES {
        return Err(corrupt(
            0,
            format!("file is {} bytes, shorter than its header", bytes.len()),
        ));
    }
    let (header, body) = bytes.split_at(HEADER_BYTES);
    if &header[0..4] != magic {
        return Err(corrupt(
            0,
            format!("bad magic {:?}, expected {:?}", &header[0..4], magic),
        ));
    }
    let version = u32::from_le_bytes(le4(&header[4..8]));
    if version != FORMAT_VERSION {
        return Err(corrupt(4, version_refusal(version)));
    }
    let body_len = u64::from_le_bytes(le8(&header[8..16]));
    if body_len != body.len() as u64 {
        let detail = format!("header says {body_len} body bytes, file has {}", body.len());
        return Err(corrupt(8, detail));
    }
    let expected_crc = u32::from_le_bytes(le4(&header[16..20]));
    let actual_crc = crc32(body);
    if actual_crc != expected_crc {
        let detail =
            format!("crc mismatch: stored {expected_crc:#010x}, computed {actual_crc:#010x}");
        return Err(corrupt(HEADER_BYTES as u64, detail));
    }
    Ok(body)
}

/// The first four bytes of `b` as an array (`b` is at least that long).
pub fn le4(b: &[u8]) -> [u8; 4] {
    let mut out = [0u8; 4];
    out.copy_from_slice(&b[..4]);
    out
}

/// The first eight bytes of `b` as an array (`b` is at least that long).
pub fn le8(b: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&b[..8]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_of_an_older_format_is_named_as_an_older_builds() {
        let path = Path::new("meta");
        let mut bytes = encode_file(b"TEST", &7u32, path).expect("encode");
        bytes[4..8].copy_from_slice(&1u32.to_le_bytes());
        let err = decode_file::<u32>(b"TEST", &bytes, path).expect_err("refused");
        assert!(err.to_string().contains("older build"), "{err}");
        bytes[4..8].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        let err = decode_file::<u32>(b"TEST", &bytes, path).expect_err("refused");
        assert!(err.to_string().contains("unknown format version"), "{err}");
    }
}
