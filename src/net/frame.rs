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
    let options = bincode::DefaultOptions::new();
    let len = options
        .serialized_size(msg)
        .map_err(|e| NetError::new(NetErrorKind::Decode(format!("encoding: {e}"))))?;
    if len > u64::from(MAX_FRAME_BYTES) {
        return Err(NetError::new(NetErrorKind::TooLarge {
            len,
            max: u64::from(MAX_FRAME_BYTES),
        }));
    }
    let mut buf = Vec::with_capacity(HEADER_BYTES + len as usize);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    options
        .serialize_into(&mut buf, msg)
        .map_err(|e| NetError::new(NetErrorKind::Decode(format!("encoding: {e}"))))?;
    assert_eq!(
        buf.len() as u64,
        HEADER_BYTES as u64 + len,
        "serialized_size disagrees with serialize"
    );
    // Any write error, a timeout included, may leave part of the frame sent.
    w.write_all(&buf).map_err(NetError::io_mid_frame)?;
    w.flush().map_err(NetError::io_mid_frame)
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
    crate::sync::assert_no_io_free_lock("reading a frame");
    let mut header = [0u8; HEADER_BYTES];
    match read_full(r, &mut header) {
        Ok(()) => {}
        Err((0, e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(NetError::new(NetErrorKind::Closed))
        }
        Err((0, e)) => return Err(NetError::io(e)),
        Err((_, e)) => return Err(NetError::io_mid_frame(e)),
    }
    let len = u32::from_be_bytes(header);
    let max = max_bytes.min(MAX_FRAME_BYTES);
    if len > max {
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

/// Fills `buf`, retrying interrupted reads. On failure returns how many bytes had been
/// read, and the error (`UnexpectedEof` if the stream ended).
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<(), (usize, io::Error)> {
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
