//! The consensus core: Raft as a pure, deterministic state machine (sans-I/O).
//!
//! Nothing in here touches threads, sockets, files or clocks. The caller feeds inputs —
//! a received [`Message`], the current time in milliseconds, a proposal, a read
//! request, "this persist batch is durable" — and collects outputs with the `take_*`
//! methods: messages to send, a [`PersistBatch`] to make durable, committed entries to
//! apply, and reads that are now safe to serve. The threaded runtime (`crate::node`)
//! and the deterministic simulator (`tests/sim`) are its two drivers.
//!
//! The durability contract, in one sentence: a message handed out inside a
//! [`PersistBatch`] may be sent only after that batch's hard state and entries are on
//! stable storage; messages from [`Raft::take_messages`] depend on nothing unpersisted
//! and may be sent at once.
//!
//! Files, one concern each: `core.rs` (the struct, inputs and outputs, dispatch),
//! `election.rs` (§5.2, role changes), `replication.rs` (§5.3, §5.4.2, flow control),
//! `read_index.rs` (thesis §6.4), `follower_read.rs` (a follower's reads, by
//! a read index from the leader), `forward.rs` (a follower's writes, forwarded to the
//! leader), `snapshot.rs` (§7: compaction and
//! InstallSnapshot), `persist.rs` (batches and which messages wait for
//! them), `log.rs` (entries after a base; durable and handed-out boundaries),
//! `progress.rs` (per-follower probe/replicate and in-flight window),
//! `check_quorum.rs` (a leader cut off from a majority steps down),
//! `pre_vote.rs` (thesis §9.6: ask before bumping the term),
//! `fault.rs` (messages no correct peer sends: dropped and reported, never fatal),
//! `invariants.rs` (`check_invariants`),
//! `membership.rs` (configurations in the log, learners, single-server changes),
//! `transfer.rs` (leadership transfer, thesis §3.10).

mod check_quorum;
mod digest_check;
mod election;
mod fault;
mod follower_read;
mod forward;
mod invariants;
mod log;
mod membership;
mod message;
mod persist;
mod pre_vote;
mod progress;
mod read_index;
mod replication;
mod snapshot;
mod transfer;
mod types;

pub use digest_check::{DigestCheck, MAX_DIGEST_REPORTS};
pub use fault::{PeerFault, PeerFaults, MAX_INDEX, MAX_PEER_FAULTS, MAX_TERM};
pub use forward::{
    ForwardAnswer, ForwardOutcome, ForwardRefused, ForwardedProposal, FORWARD_TIMEOUT_ELECTIONS,
    MAX_FORWARDED_PROPOSALS, MAX_PROPOSALS_FROM_FOLLOWERS, MAX_REFUSAL_BYTES,
};
pub use membership::{ChangeRefused, Membership, MembershipChange, MAX_ADDRESS_BYTES, MAX_MEMBERS};
pub use message::{ConflictHint, Message, MessageBody};
pub use snapshot::SnapshotChunk;
pub use transfer::TransferRefused;
pub use types::{Entry, HardState, Index, LogPosition, NodeId, Payload, Term};

/// Tuning of one member. Times are in milliseconds of the caller's clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This member's id: its 1-based position in the member list.
    pub id: NodeId,
    /// The voters a new cluster starts with (this one included), used until the log
    /// or a snapshot says otherwise; empty for a member joining an existing cluster.
    pub voters: Vec<NodeId>,
    /// Lower bound of the randomized election timeout (§5.2). Default 300.
    pub election_timeout_min_ms: u64,
    /// Upper bound (exclusive) of the randomized election timeout. Default 550.
    pub election_timeout_max_ms: u64,
    /// A leader sends each follower something at least this often. Default 80.
    pub heartbeat_interval_ms: u64,
    /// Most entries in one `AppendEntries`.
    pub max_entries_per_append: usize,
    /// Most payload bytes in one `AppendEntries` (at least one entry is always sent).
    pub max_bytes_per_append: usize,
    /// Most `AppendEntries` carrying entries in flight to one follower (pipelining).
    pub max_inflight_appends: usize,
    /// Most snapshot bytes in one `InstallSnapshot` chunk (filled in by the runtime).
    pub max_snapshot_chunk_bytes: usize,
    /// Check-quorum (thesis §6.2): a leader that has heard from no majority (itself
    /// included) for `election_timeout_max_ms` steps down, so an isolated old leader
    /// stops taking writes and reads and its clients look elsewhere. Default true.
    pub check_quorum: bool,
    /// Pre-vote (thesis §9.6): a member whose election timer fires first asks the
    /// others whether it could win, and bumps its term only on a majority of yeses, so
    /// a member that was cut off cannot depose a healthy leader with its inflated term
    /// when it rejoins. Default true.
    pub pre_vote: bool,
    /// A deliberately broken rule, so tests can show the simulator catches it. Always
    /// `None` outside tests. Default `None`.
    pub injected_bug: Option<InjectedBug>,
}

/// A membership rule a test can switch off, to show that the checks catch its absence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InjectedBug {
    /// Append a change before an entry of the leader's own term is committed (the
    /// single-server bug of 2015).
    SkipOwnTermRule,
    /// Count learners in commit quorums as if they voted.
    LearnersCountInCommit,
}

impl Config {
    /// The defaults of the brief for member `id` of `voters`.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 550,
            heartbeat_interval_ms: 80,
            max_entries_per_append: 512,
            max_bytes_per_append: 1 << 20,
            max_inflight_appends: 8,
            max_snapshot_chunk_bytes: 1 << 20,
            check_quorum: true,
            pre_vote: true,
            injected_bug: None,
        }
    }
}

mod core;
pub use self::core::{
    InitialState, NotLeader, PersistBatch, PersistToken, Raft, ReadState, Role, Status,
};

#[cfg(test)]
mod tests;
