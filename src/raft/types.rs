//! Plain data the consensus core shares with storage, the network and the runtime:
//! identifiers, log entries, the hard state and log positions.

use serde::{Deserialize, Serialize};

/// A member of the cluster: its 1-based position in `--peers`.
pub type NodeId = u64;
/// A Raft term (§5.1). Term 0 exists only before the first election.
pub type Term = u64;
/// A log index (§5.3). Index 0 is the empty position before the first entry.
pub type Index = u64;

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// The empty entry a new leader appends to commit entries of earlier terms (§5.4.2, §8).
    Noop,
    /// An opaque command for the state machine (raftkv encodes a `kv` request here).
    Command(Vec<u8>),
    /// A new cluster configuration (thesis §4.1): in force as soon as it is in a log.
    Membership(super::membership::Membership),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Term of the leader that created the entry.
    pub term: Term,
    /// Position in the log; consecutive, starting after the log base.
    pub index: Index,
    /// What the entry carries.
    pub payload: Payload,
}

impl Entry {
    /// Approximate encoded size, used to bound batches by bytes.
    pub fn size_bytes(&self) -> usize {
        let payload = match &self.payload {
            Payload::Noop => 0,
            Payload::Command(data) => data.len(),
            Payload::Membership(m) => {
                let addresses: usize = m.addresses.values().map(|a| a.len() + 8).sum();
                8 * (m.voters.len() + m.learners.len() + 1) + addresses
            }
        };
        24 + payload
    }
}

/// State that must be on stable storage before the node answers any RPC (Figure 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// Latest term this node has seen.
    pub current_term: Term,
    /// Candidate this node voted for in `current_term`, if any.
    pub voted_for: Option<NodeId>,
}

/// A position in the log: an index and the term of the entry there.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogPosition {
    /// Term of the entry at `index` (0 for the empty position 0).
    pub term: Term,
    /// The index.
    pub index: Index,
}
