//! Entry points for fuzzing: each feeds arbitrary bytes to one decoder of untrusted
//! input — what arrives on a socket or is read back from the disk — and must return,
//! never panic nor allocate beyond the limits. The cargo-fuzz targets in `fuzz/` call
//! them, and `tests/fuzz_corpus.rs` replays the saved corpus through them on stable.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::kv::{decode_request, KvStore};
use crate::net::{self, ClientRequest, ClientResponse, Hello};
use crate::raft::Message;
use crate::storage::{crc32, Meta, Storage};

/// Reads frames of peer messages from `data` until the first error, as a peer
/// connection does.
pub fn frames(data: &[u8]) {
    let mut reader = Cursor::new(data);
    while net::read_frame::<_, Message>(&mut reader, net::MAX_FRAME_BYTES).is_ok() {}
}

/// Decodes `data` as one frame body of every message type a node or client reads:
/// a peer message, a hello, a client request (with the skip path) and a response,
/// plain and tagged.
pub fn messages(data: &[u8]) {
    let len = (data.len() as u32).to_be_bytes();
    let framed: Vec<u8> = len.iter().chain(data).copied().collect();
    let _ = net::read_frame::<_, Message>(&mut Cursor::new(&framed), net::MAX_FRAME_BYTES);
    let _ = net::read_frame::<_, Hello>(&mut Cursor::new(&framed), net::MAX_FRAME_BYTES);
    let _ = net::read_frame_or_skip::<_, ClientRequest>(&mut Cursor::new(&framed), 64, 1 << 20);
    let _ = net::read_tagged_frame::<_, ClientRequest>(&mut Cursor::new(&framed), 64, 1 << 20);
    let _ = net::read_frame::<_, ClientResponse>(&mut Cursor::new(&framed), net::MAX_FRAME_BYTES);
    let max = net::MAX_FRAME_BYTES;
    let _ = net::read_tagged_frame::<_, ClientResponse>(&mut Cursor::new(&framed), max, 0);
    let _ = decode_request(data);
}

/// Decodes `data` as a state machine snapshot, and as a snapshot file read at start.
pub fn snapshot(data: &[u8]) {
    let _ = KvStore::restore(data);
    with_data_dir(|dir| {
        let _ = std::fs::write(dir.join("snapshot"), data);
    });
}

/// Recovers a data directory whose only WAL segment holds `data` (the segment of
/// index 1), as a node does at start.
pub fn wal(data: &[u8]) {
    with_data_dir(|dir| {
        let wal = dir.join("wal");
        let _ = std::fs::create_dir_all(&wal);
        let _ = std::fs::write(wal.join(format!("{:020}.wal", 1)), data);
    });
}

/// Recovers a data directory whose WAL segment holds records made from `data` with
/// correct checksums, so that the fuzzer gets past them to what they guard (entry
/// decoding, the order of indexes, torn tails and truncation), which random bytes in
/// [`wal`] rarely reach. `data` is read as records `len: u8, body: [len]`; a last body
/// cut short by the end of `data` is written as a torn tail (its header claims the
/// whole length). The segment's header is the one the storage wrote at creation.
pub fn wal_records(data: &[u8]) {
    let mut records = Vec::with_capacity(data.len() * 2);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (body, after) = tail.split_at(usize::from(len).min(tail.len()));
        let len_bytes = u32::from(len).to_le_bytes();
        records.extend_from_slice(&len_bytes);
        records.extend_from_slice(&crc32(&len_bytes).to_le_bytes());
        records.extend_from_slice(&crc32(body).to_le_bytes());
        records.extend_from_slice(body);
        rest = after;
    }
    with_data_dir(|dir| {
        let path = dir.join("wal").join(format!("{:020}.wal", 1));
        if let Ok(mut segment) = std::fs::read(&path) {
            segment.extend_from_slice(&records);
            let _ = std::fs::write(&path, segment);
        }
    });
}

/// The identity of the data directories the storage targets recover (and the seed
/// writer creates).
pub fn fuzz_meta() -> Meta {
    Meta {
        node_id: 1,
        cluster: "fuzz".into(),
        peers: vec!["127.0.0.1:1".into()],
        incarnation: 1,
        join: false,
    }
}

/// Makes a fresh data directory, lets `fill` write into it, opens it as storage (the
/// recovery under test) and removes it.
fn with_data_dir(fill: impl FnOnce(&std::path::Path)) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("raftkv-fuzz-{}-{n}", std::process::id()));
    let meta = fuzz_meta();
    if Storage::open(&dir, &meta).is_ok() {
        fill(&dir);
        let _ = Storage::open(&dir, &meta);
    }
    let _ = std::fs::remove_dir_all(PathBuf::from(&dir));
}

/// Parses `data` as the bytes a Redis client sent, command after command, as a RESP
/// connection reads them, and as replies (what a RESP tool reads back).
pub fn resp(data: &[u8]) {
    use crate::resp::{parse_command, CommandLimits, Parsed};
    let limits = CommandLimits::default();
    let mut rest = data;
    while let Ok(Parsed::Command { used, .. } | Parsed::Empty { used }) =
        parse_command(rest, &limits)
    {
        rest = &rest[used..];
    }
    let _ = crate::resp::parse_reply(data, 1 << 20, 1 << 10);
}
