//! The size limits of raftkv in one place, each derived from the one before it so that
//! the largest legal request always fits in every frame and record it travels in.
//!
//! ```text
//! request  ≤ MAX_REQUEST_BYTES                       (a client's encoded write)
//! entry    ≤ MAX_ENTRY_BYTES   = request + entry overhead
//! client frame ≤ MAX_CLIENT_FRAME_BYTES = request + frame overhead  (node reads)
//! WAL record   ≤ MAX_RECORD_BYTES        ≥ entry                    (log writer)
//! peer frame   ≤ MAX_FRAME_BYTES         ≥ AppendEntries with one entry, or with a
//!                                          batch of MAX_APPEND_BATCH_BYTES, or an
//!                                          InstallSnapshot chunk, plus its overhead
//! ```
//!
//! A node refuses a request over [`MAX_REQUEST_BYTES`] before it proposes it, so no
//! entry in any log is over [`MAX_ENTRY_BYTES`]. The constants below are checked at
//! compile time; the unit tests encode the largest legal messages for real.
//! Uses nothing else of this crate.

/// Largest encoded `kv::Request` (one client write) a node accepts.
pub const MAX_REQUEST_BYTES: u64 = 4 << 20;

/// Most bytes an `raft::Entry` adds around its payload: term, index, the payload's tag
/// and length, each a varint of at most 9 bytes; rounded up.
pub const ENTRY_OVERHEAD_BYTES: u64 = 64;

/// Largest encoded log entry: the largest request plus the entry's own fields.
pub const MAX_ENTRY_BYTES: u64 = MAX_REQUEST_BYTES + ENTRY_OVERHEAD_BYTES;

/// Most bytes a message adds around what it carries: the envelope (from, to, term),
/// the body's tag and fixed fields (positions, commit index, round, flags), and the
/// lengths of its vectors; rounded up generously.
pub const MESSAGE_OVERHEAD_BYTES: u64 = 1024;

/// Largest frame body a node reads from a client: a write of the largest request, or
/// a read of a key as long, plus the request's tag and its 8-byte id. A bigger frame is skipped (up to
/// [`MAX_FRAME_BYTES`]) and answered with a refusal naming [`MAX_REQUEST_BYTES`].
pub const MAX_CLIENT_FRAME_BYTES: u32 = (MAX_REQUEST_BYTES + MESSAGE_OVERHEAD_BYTES) as u32;

/// The `size_bytes` budget of the entries in one AppendEntries (raft's
/// `max_bytes_per_append`, as the node configures it); a single entry may exceed it.
pub const MAX_APPEND_BATCH_BYTES: u64 = 1 << 20;

/// Most entries in one AppendEntries (raft's `max_entries_per_append`, as the node
/// configures it).
pub const MAX_APPEND_BATCH_ENTRIES: u64 = 512;

/// Largest InstallSnapshot chunk the node may be configured with.
pub const MAX_SNAPSHOT_CHUNK_BYTES: u64 = 16 << 20;

/// Largest encoded cluster configuration (raft's `MAX_MEMBERS` members, each with an
/// address of `MAX_ADDRESS_BYTES`), which every InstallSnapshot chunk carries.
pub const MAX_MEMBERSHIP_BYTES: u64 = 8 << 10;

/// Largest frame body sent or accepted between members, and read by a client (an
/// answer carries at most one value, far less). Four times the largest thing it must
/// carry, so a peer of a later version with somewhat larger messages still fits.
pub const MAX_FRAME_BYTES: u32 = 64 << 20;

/// Largest WAL record body (one encoded entry) written or believed on recovery. Kept
/// at the frame size rather than [`MAX_ENTRY_BYTES`] so that logs written before the
/// request limit was enforced by the node, which may hold entries up to this size,
/// still recover.
pub const MAX_RECORD_BYTES: u32 = MAX_FRAME_BYTES;

/// Largest AppendEntries body: one maximal entry, or a full batch (each entry's
/// encoding may exceed its `size_bytes` by the entry overhead), plus the message.
pub const MAX_APPEND_BYTES: u64 = max(
    MAX_ENTRY_BYTES,
    MAX_APPEND_BATCH_BYTES + MAX_APPEND_BATCH_ENTRIES * ENTRY_OVERHEAD_BYTES,
) + MESSAGE_OVERHEAD_BYTES;

const fn max(a: u64, b: u64) -> u64 {
    if a > b {
        a
    } else {
        b
    }
}

const _: () = {
    assert!(MAX_ENTRY_BYTES > MAX_REQUEST_BYTES);
    assert!((MAX_CLIENT_FRAME_BYTES as u64) < MAX_FRAME_BYTES as u64);
    assert!(MAX_APPEND_BYTES <= MAX_FRAME_BYTES as u64);
    assert!(
        MAX_SNAPSHOT_CHUNK_BYTES + MAX_MEMBERSHIP_BYTES + MESSAGE_OVERHEAD_BYTES
            <= MAX_FRAME_BYTES as u64
    );
    assert!(MAX_ENTRY_BYTES <= MAX_RECORD_BYTES as u64);
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{encode_request, Command, Request};
    use crate::net::tagged::ID_BYTES;
    use crate::net::{ClientRequest, ClientResponse};
    use crate::raft::{Entry, LogPosition, Message, MessageBody, Payload};
    use bincode::Options;

    fn size<T: serde::Serialize>(value: &T) -> u64 {
        bincode::DefaultOptions::new()
            .serialized_size(value)
            .expect("sizes")
    }

    /// The largest legal write: its encoding is exactly `MAX_REQUEST_BYTES`, with
    /// every integer at its widest.
    fn largest_request() -> Request {
        let mut request = Request {
            client_id: u64::MAX,
            seq: u64::MAX,
            command: Command::Put {
                key: "k".into(),
                value: String::new(),
            },
        };
        let room = MAX_REQUEST_BYTES - size(&request);
        // The value's length prefix grows from 1 to 5 bytes as the value grows.
        request.command = Command::Put {
            key: "k".into(),
            value: "v".repeat((room - 4) as usize),
        };
        assert_eq!(encode_request(&request).len() as u64, MAX_REQUEST_BYTES);
        request
    }

    fn entry(payload: Vec<u8>) -> Entry {
        Entry {
            term: u64::MAX,
            index: u64::MAX,
            payload: Payload::Command(payload),
        }
    }

    fn append(entries: Vec<Entry>) -> Message {
        Message {
            from: u64::MAX,
            to: u64::MAX,
            term: u64::MAX,
            body: MessageBody::AppendEntries {
                prev_log_index: u64::MAX,
                prev_log_term: u64::MAX,
                entries,
                leader_commit: u64::MAX,
                read_round: u64::MAX,
                check: None,
            },
        }
    }

    #[test]
    fn the_largest_request_fits_a_client_frame_an_entry_and_a_record() {
        let request = largest_request();
        // A client frame's body is the request's id, then the request.
        let framed = ID_BYTES as u64 + size(&ClientRequest::Write(request.clone()));
        assert!(framed <= u64::from(MAX_CLIENT_FRAME_BYTES), "{framed}");
        let entry = entry(encode_request(&request));
        let encoded = size(&entry);
        assert!(encoded <= MAX_ENTRY_BYTES, "{encoded}");
        // A WAL record's body is the entry in this same encoding.
        assert!(encoded <= u64::from(MAX_RECORD_BYTES));
    }

    #[test]
    fn a_key_as_long_as_the_limit_fits_a_client_frame() {
        let get = ClientRequest::Get {
            key: "k".repeat(MAX_REQUEST_BYTES as usize),
            stale: false,
        };
        assert!(ID_BYTES as u64 + size(&get) <= u64::from(MAX_CLIENT_FRAME_BYTES));
    }

    #[test]
    fn append_entries_with_the_largest_entry_or_a_full_batch_fit_a_peer_frame() {
        let one = append(vec![entry(encode_request(&largest_request()))]);
        assert!(size(&one) <= MAX_APPEND_BYTES);
        let mut buf = Vec::new();
        crate::net::encode_frame(&mut buf, &one).expect("fits a peer frame");

        // A full batch by count, its `size_bytes` total at the budget.
        let per_entry = (MAX_APPEND_BATCH_BYTES / MAX_APPEND_BATCH_ENTRIES) as usize - 24;
        let batch: Vec<Entry> = (0..MAX_APPEND_BATCH_ENTRIES)
            .map(|_| entry(vec![7; per_entry]))
            .collect();
        let total: usize = batch.iter().map(Entry::size_bytes).sum();
        assert!(total as u64 <= MAX_APPEND_BATCH_BYTES);
        assert!(size(&append(batch)) <= MAX_APPEND_BYTES);
    }

    #[test]
    fn a_snapshot_chunk_fits_a_peer_frame() {
        let chunk = Message {
            from: u64::MAX,
            to: u64::MAX,
            term: u64::MAX,
            body: MessageBody::InstallSnapshot {
                last: LogPosition {
                    term: u64::MAX,
                    index: u64::MAX,
                },
                membership: largest_membership(),
                offset: u64::MAX,
                data: vec![0; MAX_SNAPSHOT_CHUNK_BYTES as usize],
                done: true,
            },
        };
        let bound = MAX_SNAPSHOT_CHUNK_BYTES + MAX_MEMBERSHIP_BYTES + MESSAGE_OVERHEAD_BYTES;
        assert!(size(&chunk) <= bound);
    }

    /// A configuration of the most members, each with the longest address.
    fn largest_membership() -> crate::raft::Membership {
        use crate::raft::{Membership, MAX_ADDRESS_BYTES, MAX_MEMBERS};
        let ids = (0..MAX_MEMBERS as u64).map(|k| u64::MAX - k);
        let mut m = Membership::bootstrap(ids.clone().take(MAX_MEMBERS / 2));
        m.learners = ids.clone().skip(MAX_MEMBERS / 2).collect();
        m.addresses = ids.map(|id| (id, "a".repeat(MAX_ADDRESS_BYTES))).collect();
        m
    }

    #[test]
    fn the_largest_membership_fits_its_budget() {
        assert!(size(&largest_membership()) <= MAX_MEMBERSHIP_BYTES);
    }

    #[test]
    fn the_refusal_of_an_oversized_request_is_small() {
        let refusal = ClientResponse::TooLarge {
            len: u64::MAX,
            max: MAX_REQUEST_BYTES,
        };
        assert!(size(&refusal) < 64);
    }
}
