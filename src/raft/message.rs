//! The messages Raft peers exchange (§5, Figure 2), as serde types that cross the wire
//! with bincode. Messages are one-way: a response travels like any other message.

use serde::{Deserialize, Serialize};

use super::digest_check::DigestCheck;
use super::forward::ForwardAnswer;
use super::membership::Membership;
use super::types::{Entry, Index, LogPosition, NodeId, Term};

/// One message between two members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Sender.
    pub from: NodeId,
    /// Receiver.
    pub to: NodeId,
    /// The sender's current term; every message carries it (§5.1).
    pub term: Term,
    /// What the message says.
    pub body: MessageBody,
}

/// The kinds of message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// A candidate asks for a vote (§5.2).
    RequestVote {
        /// Index of the candidate's last log entry (§5.4.1 up-to-date check).
        last_log_index: Index,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
        /// True if the candidate campaigns because the leader handed it leadership
        /// (`TimeoutNow`, thesis §3.10): voters then grant it even though they heard
        /// from that leader moments ago (the §4.2.3 check exempts it).
        leadership_transfer: bool,
    },
    /// The answer to `RequestVote`.
    RequestVoteResponse {
        /// True if the vote was granted.
        vote_granted: bool,
    },
    /// Log replication and heartbeat (§5.3). An empty `entries` is a heartbeat.
    AppendEntries {
        /// Index of the entry immediately before `entries`.
        prev_log_index: Index,
        /// Term of the entry at `prev_log_index`.
        prev_log_term: Term,
        /// Entries to store, in order; may be empty.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: Index,
        /// The leader's ReadIndex round when it sent this (thesis §6.4); echoed back so
        /// an acknowledgement proves leadership at a time after the reads of that round.
        read_round: u64,
        /// The leader's latest state digest check, for the follower to compare.
        check: Option<DigestCheck>,
    },
    /// The answer to `AppendEntries`.
    AppendEntriesResponse {
        /// True if the follower's log matched at `prev_log_index` and now holds the entries.
        success: bool,
        /// On success: the last index known to match the leader's log
        /// (`prev_log_index + entries.len()`). On failure: the request's `prev_log_index`.
        match_index: Index,
        /// On failure: where the leader should look next, so it backs up a term at a time.
        conflict: Option<ConflictHint>,
        /// The `read_round` of the request this answers.
        read_round: u64,
        /// The follower's latest state digest check, for the leader to compare.
        check: Option<DigestCheck>,
    },
    /// One chunk of the leader's snapshot, for a follower that needs entries the
    /// leader has compacted away (§7, thesis §5.3). Chunks of one snapshot are sent one
    /// at a time, in order; the bytes are the snapshot file exactly as the leader
    /// stores it, so the follower can check its CRC before installing it.
    ///
    /// As the core emits it, `data` is empty and `done` false: the core holds no
    /// snapshot bytes. The runtime (or simulator) fills in up to
    /// `Config::max_snapshot_chunk_bytes` bytes of its snapshot at `last` from
    /// `offset`, sets `done` if they reach the end, and drops the message if its
    /// snapshot is no longer at `last` (the leader starts over on its next retry).
    InstallSnapshot {
        /// The last entry the snapshot covers.
        last: LogPosition,
        /// The configuration as of `last`: it becomes the follower's log-base one.
        membership: Membership,
        /// Byte offset of `data` in the snapshot.
        offset: u64,
        /// The chunk.
        data: Vec<u8>,
        /// True if this chunk ends the snapshot.
        done: bool,
    },
    /// The answer to `InstallSnapshot`.
    InstallSnapshotResponse {
        /// The snapshot being transferred.
        last: LogPosition,
        /// The next byte offset the follower expects (0: start over).
        next_offset: u64,
        /// True once the follower has installed the snapshot (or already had its
        /// entries committed): it holds everything up to `last.index`.
        done: bool,
    },
    /// A pre-candidate asks whether it could win an election (Ongaro thesis §9.6),
    /// before disturbing anyone's term. Sent with `term` one above the sender's
    /// current term, the term it would campaign in; the sender's own term and vote
    /// stay as they are, and so do the receiver's.
    PreVote {
        /// Index of the pre-candidate's last log entry (§5.4.1 up-to-date check).
        last_log_index: Index,
        /// Term of the pre-candidate's last log entry.
        last_log_term: Term,
    },
    /// The answer to `PreVote`: carries the request's term when granted, the
    /// responder's own term when rejected (so a pre-candidate behind learns the term).
    PreVoteResponse {
        /// True if the responder would vote for the pre-candidate now.
        vote_granted: bool,
    },
    /// The answer to a request of a term older than the responder's: "a newer term
    /// exists" (§5.1), and nothing else. It carries no read round, grants no contact
    /// credit, restarts no snapshot transfer and is no vote: it answers a message of an
    /// earlier term, perhaps of the receiver's previous incarnation, so it says nothing
    /// about the receiver's current term. A receiver behind its term follows it; a
    /// receiver already in that term ignores it.
    StaleTerm,
    /// A follower asks the leader for a read index for a batch of its reads
    /// (thesis §6.4; etcd's `MsgReadIndex`).
    ReadIndexRequest {
        /// The follower's number for the batch, echoed in the answer.
        batch: u64,
    },
    /// The leader's answer to `ReadIndexRequest`, once a majority confirmed its
    /// leadership after the request arrived: the batch's reads may be served once
    /// the follower has applied `read_index`.
    ReadIndexResponse {
        /// The batch answered.
        batch: u64,
        /// The leader's commit index when the request arrived.
        read_index: Index,
    },
    /// The leader hands leadership over (thesis §3.10): the receiver, which holds the
    /// leader's whole log, starts an election at once, without pre-vote.
    TimeoutNow,
    /// A follower forwards a client's write to the leader (etcd's `MsgProp`).
    ForwardProposal {
        /// The follower's number for it, echoed in the answer.
        id: u64,
        /// The command, as the client sent it.
        data: Vec<u8>,
    },
    /// The leader's answer to `ForwardProposal`: where it appended the write, or why
    /// it did not.
    ForwardProposalResponse {
        /// The forward answered.
        id: u64,
        /// What became of it.
        answer: ForwardAnswer,
    },
}

/// Why an `AppendEntries` was rejected and where the leader should retry (§5.3, the
/// optimization described at the end of that section).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConflictHint {
    /// Term of the follower's entry at `prev_log_index`, or `None` if its log is shorter.
    pub term: Option<Term>,
    /// The first index the follower holds with `term`; if `term` is `None`, the
    /// follower's last index + 1.
    pub first_index: Index,
}
