//! Length-prefixed bincode frames.

use std::io::{self, Read, Write};

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{NetError, NetErrorKind};
use super::MAX_FRAME_BYTES;

/// Bytes of the length prefix.
const HEADER_BYTES: usize = 4;

/// Writes `msg` as one frame: a `u32` big-endian length, then the bincode body.
///
/// The frame goes out in a single `write_all`, so with `TCP_NODELAY` it is one segment
/// when it fits. A body over [`MAX_FRAME_BYTES`] is refused before anything is sent.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), NetError> {
    crate::sync::assert_no_io_free_lock("writing a frame");
    let mut buf = Vec::new();
    encode_frame(&mut buf, msg)?;
    // Any write error, a timeout included, may leave part of the frame sent.
    w.write_all(&buf).map_err(NetError::io_mid_frame)?;
    w.flush().map_err(NetError::io_mid_frame)
}

/// Appends `msg` as one frame to `buf`, so a sender can put many frames on the wire
/// with one `write` (a replicator's whole batch in one segment train, not a syscall
/// and a segment per message). A body over [`MAX_FRAME_BYTES`] is refused and leaves
/// `buf` unchanged.
pub fn encode_frame<T: Serialize>(buf: &mut Vec<u8>, msg: &T) -> Result<(), NetError> {
    encode_frame_with_prefix(buf, &[], msg)
}

/// [`encode_frame`] with `prefix` (raw bytes, e.g. a tagged frame's id) at the start
/// of the body; the length counts both.
pub(super) fn encode_frame_with_prefix<T: Serialize>(
    buf: &mut Vec<u8>,
    prefix: &[u8],
    msg: &T,
) -> Result<(), NetError> {
    let options = bincode::DefaultOptions::new();
    let len = options
        .serialized_size(msg)
        .map_err(|e| NetError::new(NetErrorKind::Decode(format!("encoding: {e}"))))?
        + prefix.len() as u64;
    if len > u64::from(MAX_FRAME_BYTES) {
        return Err(NetError::new(NetErrorKind::TooLarge {
            len,
            max: u64::from(MAX_FRAME_BYTES),
        }));
    }
    let start = buf.len();
    buf.reserve(HEADER_BYTES + len as usize);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    buf.extend_from_slice(prefix);
    options
        .serialize_into(&mut *buf, msg)
        .map_err(|e| NetError::new(NetErrorKind::Decode(format!("encoding: {e}"))))?;
    assert_eq!(
        (buf.len() - start) as u64,
        HEADER_BYTES as u64 + len,
        "serialized_size disagrees with serialize"
    );
    Ok(())
}

/// True if `buffered` (bytes already read from a stream) begins with a whole frame, so
/// [`read_frame`] on a buffered reader would return without touching the socket. Lets
/// a receiver drain every frame that arrived together and handle them as one batch.
pub fn frame_buffered(buffered: &[u8]) -> bool {
    match buffered.get(..HEADER_BYTES) {
        Some(header) => {
            let mut len = [0u8; HEADER_BYTES];
            len.copy_from_slice(header);
            buffered.len() - HEADER_BYTES >= u32::from_be_bytes(len) as usize
        }
        None => false,
    }
}

/// Reads one frame and decodes its body as `T`.
///
/// The announced length is checked against `max_bytes` (and [`MAX_FRAME_BYTES`])
/// before the body buffer is allocated, and the body is decoded from that buffer with
/// its length as the bincode limit; trailing bytes are an error. A clean end of stream
/// before the first byte is [`NetErrorKind::Closed`]; one inside a frame is
/// [`NetErrorKind::Io`] (`UnexpectedEof`). A timeout before the first byte is
/// [`NetErrorKind::Timeout`] and leaves the stream in step; inside a frame it is `Io`.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R, max_bytes: u32) -> Result<T, NetError> {
    read_frame_or_skip(r, max_bytes, 0)
}

/// [`read_frame`], except that a body over `max_bytes` but not over `skip_up_to` (nor
/// [`MAX_FRAME_BYTES`]) is read and thrown away in small pieces, never held whole, and
/// reported as [`NetErrorKind::Skipped`]: the stream stays in step, so the caller can
/// answer with a refusal and go on. A server uses it to tell a client why its request
/// was refused instead of cutting it off.
pub fn read_frame_or_skip<R: Read, T: DeserializeOwned>(
    r: &mut R,
    max_bytes: u32,
    skip_up_to: u32,
) -> Result<T, NetError> {
    crate::sync::assert_no_io_free_lock("reading a frame");
    let len = read_header(r)?;
    let max = max_bytes.min(MAX_FRAME_BYTES);
    if len > max {
        if len <= skip_up_to.min(MAX_FRAME_BYTES) {
            skip(r, len)?;
            return Err(NetError::new(NetErrorKind::Skipped {
                len: u64::from(len),
                max: u64::from(max),
            }));
        }
        return Err(NetError::new(NetErrorKind::TooLarge {
            len: u64::from(len),
            max: u64::from(max),
        }));
    }
    let mut body = vec![0u8; len as usize];
    read_full(r, &mut body).map_err(|(_, e)| NetError::io_mid_frame(e))?;
    bincode::DefaultOptions::new()
        .with_limit(u64::from(len))
        .reject_trailing_bytes()
        .deserialize(&body)
        .map_err(|e| NetError::new(NetErrorKind::Decode(e.to_string())))
}

/// Reads a frame's length prefix. A clean end of stream before its first byte is
/// [`NetErrorKind::Closed`]; a timeout then is [`NetErrorKind::Timeout`].
pub(super) fn read_header<R: Read>(r: &mut R) -> Result<u32, NetError> {
    let mut header = [0u8; HEADER_BYTES];
    match read_full(r, &mut header) {
        Ok(()) => Ok(u32::from_be_bytes(header)),
        Err((0, e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            Err(NetError::new(NetErrorKind::Closed))
        }
        Err((0, e)) => Err(NetError::io(e)),
        Err((_, e)) => Err(NetError::io_mid_frame(e)),
    }
}

/// Reads and discards `len` bytes, 64 KiB at a time.
pub(super) fn skip<R: Read>(r: &mut R, len: u32) -> Result<(), NetError> {
    let mut buf = vec![0u8; 64 << 10];
    let mut left = len as usize;
    while left > 0 {
        let n = left.min(buf.len());
        read_full(r, &mut buf[..n]).map_err(|(_, e)| NetError::io_mid_frame(e))?;
        left -= n;
    }
    Ok(())
}

/// Fills `buf`, retrying interrupted reads. On failure returns how many bytes had been
/// read, and the error (`UnexpectedEof` if the stream ended).
pub(super) fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), (usize, io::Error)> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Err((filled, io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err((filled, e)),
        }
    }
    Ok(())
}
