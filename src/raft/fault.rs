//! Peer faults: messages no correct peer can send (two leaders in one term, an entry
//! or snapshot that conflicts with a committed entry, an index or term that cannot
//! be). The core drops such a message without acknowledging it and records a
//! [`PeerFault`] naming the peer; being sans-I/O, it logs nothing itself: the runtime
//! drains the records with [`Raft::take_peer_faults`](super::Raft::take_peer_faults)
//! and logs them outside the Raft mutex.
//!
//! Asserts stay only where they check this member's own state.

use std::fmt;

use super::{Index, NodeId, Term};

/// Highest term a correct peer can reach (2^63 elections would take longer than any
/// cluster lives); above it, `term + 1` could overflow.
pub const MAX_TERM: Term = u64::MAX >> 1;
/// Highest log index a correct peer can reach; above it, `index + 1` could overflow.
pub const MAX_INDEX: Index = u64::MAX >> 1;
/// Most fault records kept until the runtime takes them; later ones are counted only.
pub const MAX_PEER_FAULTS: usize = 64;

/// A message from `peer` that no correct peer can send; it was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerFault {
    /// The sender.
    pub peer: NodeId,
    /// The term the message carried.
    pub term: Term,
    /// What was impossible about it.
    pub what: String,
}

impl fmt::Display for PeerFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "peer n{} sent an impossible message (term {}): {}; dropped",
            self.peer, self.term, self.what
        )
    }
}

/// Fault records waiting for the runtime, bounded by [`MAX_PEER_FAULTS`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerFaults {
    /// The records, oldest first.
    pub faults: Vec<PeerFault>,
    /// Faults beyond the bound, counted but not kept.
    pub dropped: u64,
}

impl PeerFaults {
    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty() && self.dropped == 0
    }

    /// Records a fault, or counts it if the bound is reached.
    pub(super) fn record(&mut self, fault: PeerFault) {
        if self.faults.len() < MAX_PEER_FAULTS {
            self.faults.push(fault);
        } else {
            self.dropped += 1;
        }
    }
}

impl super::Raft {
    /// Records that `peer` sent, in `term`, a message that is impossible because
    /// `what`; the caller drops the message.
    pub(super) fn peer_fault(&mut self, peer: NodeId, term: Term, what: String) {
        self.faults.record(PeerFault { peer, term, what });
    }

    /// The peer faults recorded since the last call (see the module documentation).
    pub fn take_peer_faults(&mut self) -> PeerFaults {
        std::mem::take(&mut self.faults)
    }
}
