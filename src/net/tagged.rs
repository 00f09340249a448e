//! Tagged frames: the frames of a client connection. Each carries the id that pairs a
//! response with its request, so one connection can hold many requests at once and
//! have them answered in the order they complete.
//!
//! A tagged frame is a frame (see [`super::frame`]) whose body is an 8-byte big-endian
//! id followed by the bincode body; the frame's length counts both. The id comes
//! first and outside bincode, so a node can name the request it answers even when the
//! rest of the frame does not decode or is too large to read.

use std::io::{Read, Write};

use bincode::Options;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{NetError, NetErrorKind};
use super::frame::{encode_frame_with_prefix, read_full, read_header, skip};
use super::MAX_FRAME_BYTES;

/// Bytes of the id at the start of a tagged frame's body.
pub const ID_BYTES: usize = 8;

/// Appends `msg` as one tagged frame with `id` to `buf`. A body over
/// [`MAX_FRAME_BYTES`] is refused and leaves `buf` unchanged.
pub fn encode_tagged_frame<T: Serialize>(
    buf: &mut Vec<u8>,
    id: u64,
    msg: &T,
) -> Result<(), NetError> {
    encode_frame_with_prefix(buf, &id.to_be_bytes(), msg)
}

/// Writes `msg` as one tagged frame with `id`, in a single `write_all`.
pub fn write_tagged_frame<W: Write, T: Serialize>(
    w: &mut W,
    id: u64,
    msg: &T,
) -> Result<(), NetError> {
    crate::sync::assert_no_io_free_lock("writing a frame");
    let mut buf = Vec::new();
    encode_tagged_frame(&mut buf, id, msg)?;
    w.write_all(&buf).map_err(NetError::io_mid_frame)?;
    w.flush().map_err(NetError::io_mid_frame)
}

/// Reads one tagged frame: its id, and its body decoded as `T`.
///
/// The outer `Err` leaves the stream out of step (or closed; [`NetErrorKind::Timeout`]
/// before the first byte leaves it in step), as for [`super::read_frame`]; a frame too
/// short to hold an id is a [`NetErrorKind::Decode`] error there. The inner `Err` is a
/// frame that was read whole but whose body did not decode ([`NetErrorKind::Decode`])
/// or was over `max_bytes` and not over `skip_up_to` (nor [`MAX_FRAME_BYTES`]), so it
/// was read and thrown away ([`NetErrorKind::Skipped`]): the stream is in step, and
/// the id says which request to refuse. An inner [`NetErrorKind::TooLarge`] is a frame
/// too large even to skip: only its id was read, so the stream is out of step (answer
/// the id, then close).
pub fn read_tagged_frame<R: Read, T: DeserializeOwned>(
    r: &mut R,
    max_bytes: u32,
    skip_up_to: u32,
) -> Result<(u64, Result<T, NetError>), NetError> {
    crate::sync::assert_no_io_free_lock("reading a frame");
    let len = read_header(r)?;
    let max = max_bytes.min(MAX_FRAME_BYTES);
    if (len as usize) < ID_BYTES {
        // Read the short body so the error is about the frame, not a cut stream.
        skip(r, len)?;
        return Err(NetError::new(NetErrorKind::Decode(format!(
            "a client frame of {len} bytes is too short for its {ID_BYTES}-byte id"
        ))));
    }
    let mut id = [0u8; ID_BYTES];
    read_full(r, &mut id).map_err(|(_, e)| NetError::io_mid_frame(e))?;
    let id = u64::from_be_bytes(id);
    let body_len = len - ID_BYTES as u32;
    if len > max && len > skip_up_to.min(MAX_FRAME_BYTES) {
        let too_large = NetError::new(NetErrorKind::TooLarge {
            len: u64::from(len),
            max: u64::from(max),
        });
        return Ok((id, Err(too_large)));
    }
    if len > max {
        skip(r, body_len)?;
        let skipped = NetError::new(NetErrorKind::Skipped {
            len: u64::from(len),
            max: u64::from(max),
        });
        return Ok((id, Err(skipped)));
    }
    let mut body = vec![0u8; body_len as usize];
    read_full(r, &mut body).map_err(|(_, e)| NetError::io_mid_frame(e))?;
    let decoded = bincode::DefaultOptions::new()
        .with_limit(u64::from(body_len))
        .reject_trailing_bytes()
        .deserialize(&body)
        .map_err(|e| NetError::new(NetErrorKind::Decode(e.to_string())));
    Ok((id, decoded))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read<T: DeserializeOwned>(
        bytes: &[u8],
        max: u32,
        skip: u32,
    ) -> Result<(u64, Result<T, NetError>), NetError> {
        read_tagged_frame(&mut Cursor::new(bytes), max, skip)
    }

    #[test]
    fn a_tagged_frame_round_trips_with_its_id() {
        let mut buf = Vec::new();
        encode_tagged_frame(&mut buf, 7, &"seven".to_string()).expect("encode");
        encode_tagged_frame(&mut buf, u64::MAX, &3u32).expect("encode");
        let mut r = Cursor::new(&buf);
        let (id, body) = read_tagged_frame::<_, String>(&mut r, 1 << 10, 0).expect("first");
        assert_eq!((id, body.expect("decodes")), (7, "seven".to_string()));
        let (id, body) = read_tagged_frame::<_, u32>(&mut r, 1 << 10, 0).expect("second");
        assert_eq!((id, body.expect("decodes")), (u64::MAX, 3));
        let end = read_tagged_frame::<_, u32>(&mut r, 1 << 10, 0).expect_err("end");
        assert_eq!(*end.kind(), NetErrorKind::Closed);
    }

    #[test]
    fn a_body_that_does_not_decode_still_names_its_id_and_keeps_the_stream_in_step() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&12u32.to_be_bytes());
        buf.extend_from_slice(&42u64.to_be_bytes());
        buf.extend_from_slice(&[0xff; 4]); // not a valid bool
        encode_tagged_frame(&mut buf, 43, &true).expect("encode");
        let mut r = Cursor::new(&buf);
        let (id, body) = read_tagged_frame::<_, bool>(&mut r, 1 << 10, 0).expect("in step");
        assert_eq!(id, 42);
        assert!(matches!(
            body.expect_err("bad").kind(),
            NetErrorKind::Decode(_)
        ));
        let (id, body) = read_tagged_frame::<_, bool>(&mut r, 1 << 10, 0).expect("next");
        assert_eq!((id, body.expect("decodes")), (43, true));
    }

    #[test]
    fn an_oversized_body_is_skipped_with_its_id_or_refused_past_the_skip_limit() {
        let mut buf = Vec::new();
        encode_tagged_frame(&mut buf, 5, &vec![1u8; 100]).expect("encode");
        let (id, body) = read::<Vec<u8>>(&buf, 50, 1 << 10).expect("skipped");
        assert_eq!(id, 5);
        assert!(matches!(
            body.expect_err("too big").kind(),
            NetErrorKind::Skipped { .. }
        ));
        let (id, body) = read::<Vec<u8>>(&buf, 50, 60).expect("its id is read");
        assert_eq!(id, 5);
        let err = body.expect_err("too large to skip");
        assert!(matches!(err.kind(), NetErrorKind::TooLarge { .. }));
    }

    #[test]
    fn a_frame_too_short_for_its_id_is_a_decode_error() {
        let buf = [0, 0, 0, 3, 1, 2, 3];
        let err = read::<u8>(&buf, 1 << 10, 0).expect_err("short");
        assert!(matches!(err.kind(), NetErrorKind::Decode(_)), "{err}");
    }
}
