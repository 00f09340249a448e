//! Every metric the node records, in one struct of atomics.

use std::sync::atomic::{AtomicU64, Ordering};

use super::histogram::{Counter, Histogram, DISK_BUCKETS, REQUEST_BUCKETS};

/// The kinds of client request counted apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientOp {
    /// A read (linearizable or stale).
    Get,
    /// A write of a value.
    Put,
    /// A delete.
    Delete,
    /// A compare-and-swap.
    Cas,
    /// Anything else: status, membership changes, transfers.
    Other,
}

impl ClientOp {
    /// Every kind, in the order they are rendered.
    pub const ALL: [ClientOp; 5] = [
        ClientOp::Get,
        ClientOp::Put,
        ClientOp::Delete,
        ClientOp::Cas,
        ClientOp::Other,
    ];

    /// The `op` label.
    pub fn label(self) -> &'static str {
        match self {
            ClientOp::Get => "get",
            ClientOp::Put => "put",
            ClientOp::Delete => "delete",
            ClientOp::Cas => "cas",
            ClientOp::Other => "other",
        }
    }
}

/// How a client request ended, as the CLI's exit codes group them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientResult {
    /// Done (exit 0).
    Ok,
    /// A definite no: not found, cas mismatch, a refused change (exit 1).
    Refused,
    /// No leader or quorum, or a redirect (exit 3, nothing applied).
    Unavailable,
    /// The outcome is unknown (exit 3).
    Unknown,
    /// Anything else: too large, over quota, a bad request (exit 4).
    Error,
}

impl ClientResult {
    /// Every result, in the order they are rendered.
    pub const ALL: [ClientResult; 5] = [
        ClientResult::Ok,
        ClientResult::Refused,
        ClientResult::Unavailable,
        ClientResult::Unknown,
        ClientResult::Error,
    ];

    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            ClientResult::Ok => "ok",
            ClientResult::Refused => "refused",
            ClientResult::Unavailable => "unavailable",
            ClientResult::Unknown => "unknown",
            ClientResult::Error => "error",
        }
    }
}

/// Traffic with one peer. A replicator or connection looks its slot up once
/// ([`Metrics::peer`]) and then records with atomics only.
#[derive(Debug)]
pub struct PeerTraffic {
    /// The peer's id; 0 while the slot is free, [`OTHER_PEERS`] for the shared slot.
    id: AtomicU64,
    /// Bytes of frames sent to the peer.
    pub sent_bytes: Counter,
    /// Bytes of frames received from the peer.
    pub received_bytes: Counter,
    /// Round trip of an AppendEntries or heartbeat to the peer and its answer.
    pub round_trip: Histogram,
}

impl PeerTraffic {
    fn new() -> PeerTraffic {
        PeerTraffic {
            id: AtomicU64::new(0),
            sent_bytes: Counter::default(),
            received_bytes: Counter::default(),
            round_trip: Histogram::new(REQUEST_BUCKETS),
        }
    }

    /// The peer this slot counts (`None` while free; [`OTHER_PEERS`] for the slot
    /// shared by peers beyond the table).
    pub fn peer_id(&self) -> Option<u64> {
        Some(self.id.load(Ordering::Relaxed)).filter(|&id| id != 0)
    }
}

/// How many peers get a slot of their own; ids are never reused, so over a long life
/// with many membership changes the rest share one slot.
pub const PEER_SLOTS: usize = 32;

/// The id of the slot shared by peers beyond [`PEER_SLOTS`], rendered as `other`.
pub const OTHER_PEERS: u64 = u64::MAX;

/// Every metric a node records. Shared by all threads; every method takes `&self`.
#[derive(Debug)]
pub struct Metrics {
    /// Leaders seen (a change of the known leader to another member).
    pub leader_changes_seen: Counter,
    /// Log entries this node saw committed.
    pub proposals_committed: Counter,
    /// Log entries this node applied.
    pub proposals_applied: Counter,
    /// Client writes that failed or whose outcome is unknown.
    pub proposals_failed: Counter,
    /// Duration of each WAL fsync.
    pub wal_fsync: Histogram,
    /// Duration of each snapshot save.
    pub snapshot_save: Histogram,
    peers: Vec<PeerTraffic>,
    client_requests: Vec<Counter>,
    client_latency: Vec<Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let ops = ClientOp::ALL.len();
        Metrics {
            leader_changes_seen: Counter::default(),
            proposals_committed: Counter::default(),
            proposals_applied: Counter::default(),
            proposals_failed: Counter::default(),
            wal_fsync: Histogram::new(DISK_BUCKETS),
            snapshot_save: Histogram::new(DISK_BUCKETS),
            peers: (0..=PEER_SLOTS).map(|_| PeerTraffic::new()).collect(),
            client_requests: (0..ops * ClientResult::ALL.len())
                .map(|_| Counter::default())
                .collect(),
            client_latency: (0..ops).map(|_| Histogram::new(REQUEST_BUCKETS)).collect(),
        }
    }
}

impl Metrics {
    /// The traffic slot of peer `id` (claimed on first use). Scans at most
    /// [`PEER_SLOTS`] slots: call it once per connection or replicator, not per message.
    pub fn peer(&self, id: u64) -> &PeerTraffic {
        let id = id.clamp(1, OTHER_PEERS - 1);
        for slot in &self.peers[..PEER_SLOTS] {
            let claimed = slot
                .id
                .compare_exchange(0, id, Ordering::Relaxed, Ordering::Relaxed);
            match claimed {
                Ok(_) => return slot,
                Err(owner) if owner == id => return slot,
                Err(_) => continue,
            }
        }
        let other = &self.peers[PEER_SLOTS];
        other.id.store(OTHER_PEERS, Ordering::Relaxed);
        other
    }

    /// The claimed peer slots, for rendering.
    pub fn peers(&self) -> impl Iterator<Item = &PeerTraffic> {
        self.peers.iter().filter(|p| p.peer_id().is_some())
    }

    /// Records one client request: its kind, how it ended and how long it took.
    pub fn client_request(&self, op: ClientOp, result: ClientResult, took: std::time::Duration) {
        self.client_requests[Self::request_slot(op, result)].inc();
        self.client_latency[op as usize].observe(took);
    }

    /// How many client requests of kind `op` ended with `result`.
    pub fn client_requests(&self, op: ClientOp, result: ClientResult) -> u64 {
        self.client_requests[Self::request_slot(op, result)].get()
    }

    /// The latency histogram of client requests of kind `op`.
    pub fn client_latency(&self, op: ClientOp) -> &Histogram {
        &self.client_latency[op as usize]
    }

    fn request_slot(op: ClientOp, result: ClientResult) -> usize {
        op as usize * ClientResult::ALL.len() + result as usize
    }
}
