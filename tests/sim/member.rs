//! One simulated member: its Raft value (absent while crashed), its durable store and
//! writer, and what the checks remember about its current incarnation.

use std::collections::{BTreeMap, VecDeque};

use raftkv::raft::{Config, HardState, Index, LogPosition, NodeId, Raft, SnapshotChunk, Term};

use super::invariants::Slot;
use super::storage::{DurableStore, Writer};

/// A member of the simulated cluster.
pub struct Member {
    /// Its id.
    pub id: NodeId,
    /// Its configuration, the same in every incarnation.
    pub config: Config,
    /// Whether its writer uses group commit.
    pub group_commit: bool,
    /// The running Raft; `None` while crashed.
    pub raft: Option<Raft>,
    /// What survives crashes.
    pub store: DurableStore,
    /// Batches on their way to `store`.
    pub writer: Writer,
    /// Incarnations started so far (1 for the first).
    pub incarnation: u32,
    /// The incarnation's log as its persist batches describe it; must match the
    /// Raft's own log after every step.
    pub shadow: Vec<Slot>,
    /// Per batch in `writer`, oldest first: for each of its messages, the term the log
    /// held at the index the message vouches for when the batch was taken.
    pub vouched: VecDeque<Vec<Option<Term>>>,
    /// The hard state of the last batch taken (or the recovered one).
    pub last_hard_state: HardState,
    /// Commit index after the last step. Invariant: never decreases in an incarnation.
    pub commit_index: Index,
    /// Entries up to here were compared with the committed log.
    pub checked_commit: Index,
    /// Index of the last entry taken from `take_committed`.
    pub applied: Index,
    /// The state digest after applying `applied` (see `invariants::digest_of`).
    pub digest: raftkv::kv::StateDigest,
    /// The highest term in which this incarnation was seen leading (0: never).
    pub led_term: Term,
    /// The snapshot being received (volatile, like the runtime's `snapshot.recv`,
    /// which a restart deletes).
    pub recv: Vec<u8>,
    /// A snapshot whose final chunk is written, and its bytes; it is installed once
    /// the writer has no batch in flight.
    pub pending_install: Option<(LogPosition, Vec<u8>)>,
    /// The encoding of this member's snapshot last sent from (its committed entries
    /// never change), so a transfer in small chunks encodes it once, not per chunk.
    pub snapshot_cache: Option<(LogPosition, Vec<u8>)>,
    /// Writes this incarnation forwarded to a leader, by forward number, waiting for
    /// the answer (a crash forgets them, as it forgets the clients waiting on them).
    pub forwarded: BTreeMap<u64, Vec<u8>>,
}

impl Member {
    /// A member that has never run.
    pub fn new(config: Config, group_commit: bool) -> Member {
        Member {
            id: config.id,
            config,
            group_commit,
            raft: None,
            store: DurableStore::default(),
            writer: Writer::new(group_commit),
            incarnation: 0,
            shadow: Vec::new(),
            vouched: VecDeque::new(),
            last_hard_state: HardState::default(),
            commit_index: 0,
            checked_commit: 0,
            applied: 0,
            digest: raftkv::kv::StateDigest::default(),
            led_term: 0,
            recv: Vec::new(),
            pending_install: None,
            snapshot_cache: None,
            forwarded: BTreeMap::new(),
        }
    }

    /// Writes a received chunk where it goes (offset 0 starts over). Like the
    /// runtime's single `snapshot.recv`, a new transfer also discards a completed one
    /// of the same batch that was not installed yet.
    pub fn receive_chunk(&mut self, chunk: &SnapshotChunk) {
        if chunk.offset == 0 {
            self.recv.clear();
            self.pending_install = None;
        }
        assert_eq!(
            chunk.offset,
            self.recv.len() as u64,
            "n{}: chunk at {} but {} bytes received",
            self.id,
            chunk.offset,
            self.recv.len()
        );
        self.recv.extend_from_slice(&chunk.data);
        if chunk.done {
            self.pending_install = Some((chunk.last, std::mem::take(&mut self.recv)));
        }
    }

    /// True while running.
    pub fn is_up(&self) -> bool {
        self.raft.is_some()
    }

    /// Starts a new incarnation from the durable store.
    pub fn start(&mut self, seed: u64, now_ms: u64) {
        assert!(self.raft.is_none(), "n{} started twice", self.id);
        let initial = self.store.initial_state();
        self.raft = Some(Raft::new(self.config.clone(), initial, seed, now_ms));
        self.writer = Writer::new(self.group_commit);
        self.incarnation += 1;
        self.shadow = self.store.entries.iter().map(Slot::of).collect();
        self.vouched.clear();
        self.last_hard_state = self.store.hard_state;
        // Restart loads the snapshot: the state machine starts at its index.
        self.commit_index = self.store.base.index;
        self.checked_commit = self.store.base.index;
        self.applied = self.store.base.index;
        self.digest = super::invariants::digest_of(&self.store.entries[..self.applied as usize]);
        self.led_term = 0;
        self.recv.clear();
        self.pending_install = None;
        self.forwarded.clear();
    }

    /// Stops the member: its Raft value and unfinished writes are gone. With `torn`,
    /// the batch being written leaves its hard state and the first `torn_entries`
    /// entries behind. Returns how many batches were lost.
    pub fn crash(&mut self, torn_entries: Option<usize>) -> usize {
        assert!(self.raft.is_some(), "n{} crashed while down", self.id);
        self.raft = None;
        let lost = self.writer.pending();
        let current = self.writer.crash();
        if let (Some(batch), Some(keep)) = (current, torn_entries) {
            let keep = keep.min(batch.entries.len());
            self.store.write(batch.hard_state, &batch.entries[..keep]);
        }
        lost
    }
}
