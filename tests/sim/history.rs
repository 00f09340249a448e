//! What clients did and saw: proposals and their fates, reads and what they returned.
//!
//! A proposal is acknowledged when its proposer hands out an entry with the
//! proposal's index and term from `take_committed` — what a runtime would answer the
//! client on. A write a follower forwarded is that follower's proposal once the
//! leader tells it the position: it is acknowledged when the follower itself applies
//! that position, exactly as a leader's own. It is lost when the proposer hands out another term at that index. A
//! read issued while writes up to index w were acknowledged must be released at an
//! index >= w (linearizability: the read starts after those writes completed).

use std::collections::BTreeMap;

use raftkv::raft::{Entry, Index, LogPosition, NodeId, ReadState, Term};

use super::invariants::{payload_key, Committed, Slot};

/// What became of a proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Not decided yet as far as the proposer knows.
    Pending,
    /// The proposer saw it commit.
    Acked,
    /// The proposer saw another entry take its place.
    Lost,
}

/// One accepted proposal.
#[derive(Clone, Copy, Debug)]
pub struct Proposal {
    /// The member that accepted it.
    pub proposer: NodeId,
    /// Where it was appended.
    pub pos: LogPosition,
    /// Its payload's fingerprint.
    pub key: u64,
    /// What became of it.
    pub fate: Fate,
}

struct PendingRead {
    /// Highest acknowledged write index when the read was issued.
    min_index: Index,
}

/// Counters for the summary line.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryStats {
    /// Proposals accepted by a leader.
    pub proposed: u64,
    /// Proposals acknowledged.
    pub acked: u64,
    /// Proposals seen lost.
    pub lost: u64,
    /// Reads accepted by a leader.
    pub reads: u64,
    /// Reads released with an index.
    pub reads_ok: u64,
    /// Reads released as "not leader".
    pub reads_refused: u64,
    /// Writes a follower forwarded to its leader.
    pub forwarded: u64,
    /// Forwarded writes the leader appended (counted in `proposed` too).
    pub forwards_appended: u64,
    /// Forwarded writes the leader did not append.
    pub forwards_refused: u64,
    /// Forwarded writes whose outcome the follower could not learn.
    pub forwards_unknown: u64,
}

/// The client history of one run.
pub struct History {
    proposals: Vec<Proposal>,
    /// Per member (id - 1): index -> proposal, for proposals of its current incarnation.
    waiting: Vec<BTreeMap<Index, usize>>,
    /// Per member (id - 1): read id -> read, for reads of its current incarnation.
    reads: Vec<BTreeMap<u64, PendingRead>>,
    next_command: u64,
    next_read: u64,
    /// The highest index of an acknowledged write.
    pub max_acked_index: Index,
    /// Counters.
    pub stats: HistoryStats,
}

impl History {
    /// An empty history for `members` members.
    pub fn new(members: usize) -> History {
        History {
            proposals: Vec::new(),
            waiting: (0..members).map(|_| BTreeMap::new()).collect(),
            reads: (0..members).map(|_| BTreeMap::new()).collect(),
            next_command: 1,
            next_read: 1,
            max_acked_index: 0,
            stats: HistoryStats::default(),
        }
    }

    /// A fresh, unique command: its number, then `pad_bytes` filler.
    pub fn new_command(&mut self, pad_bytes: usize) -> Vec<u8> {
        let number = self.next_command;
        self.next_command += 1;
        let mut data = number.to_le_bytes().to_vec();
        data.extend((0..pad_bytes).map(|i| (number as usize + i) as u8));
        data
    }

    /// All proposals so far.
    pub fn proposals(&self) -> &[Proposal] {
        &self.proposals
    }

    /// Member `id` accepted `data` at `pos`.
    pub fn proposed(&mut self, id: NodeId, data: &[u8], pos: LogPosition) {
        let key = payload_key(&raftkv::raft::Payload::Command(data.to_vec()));
        let number = self.proposals.len();
        self.proposals.push(Proposal {
            proposer: id,
            pos,
            key,
            fate: Fate::Pending,
        });
        self.stats.proposed += 1;
        if let Some(old) = self.waiting[id as usize - 1].insert(pos.index, number) {
            // The older proposal is gone from this member's log, but another member may
            // still hold it and commit it as a later leader: it stays pending until the
            // end of the run decides it (seeds 6110 and 9344).
            let old = &self.proposals[old];
            assert!(
                old.pos.term < pos.term,
                "n{id} accepted two proposals at index {} in term {}",
                pos.index,
                pos.term
            );
        }
    }

    /// The leader appended a write member `id` forwarded at `pos`, and `id` learned it
    /// only after applying `pos`: it cannot tell its client the entry's result, so the
    /// proposal stays pending (the end of the run checks it is committed or can never
    /// be), never acknowledged.
    pub fn proposed_too_late(&mut self, id: NodeId, data: &[u8], pos: LogPosition) {
        let key = payload_key(&raftkv::raft::Payload::Command(data.to_vec()));
        self.proposals.push(Proposal {
            proposer: id,
            pos,
            key,
            fate: Fate::Pending,
        });
        self.stats.proposed += 1;
        self.stats.forwards_unknown += 1;
    }

    /// Member `id` handed `entry` to its state machine; returns the fate it decided.
    pub fn on_applied(&mut self, id: NodeId, entry: &Entry) -> Option<Fate> {
        let number = self.waiting[id as usize - 1].remove(&entry.index)?;
        let proposal = &mut self.proposals[number];
        if entry.term == proposal.pos.term {
            let key = payload_key(&entry.payload);
            assert_eq!(
                key, proposal.key,
                "n{id} applies another payload at the position {:?} it returned for a proposal",
                proposal.pos
            );
            proposal.fate = Fate::Acked;
            self.stats.acked += 1;
            self.max_acked_index = self.max_acked_index.max(entry.index);
        } else {
            proposal.fate = Fate::Lost;
            self.stats.lost += 1;
        }
        Some(proposal.fate)
    }

    /// Member `id` crashed: what it was waiting for is forgotten (the proposals stay
    /// pending until the end of the run decides them).
    pub fn on_crash(&mut self, id: NodeId) {
        self.waiting[id as usize - 1].clear();
        self.reads[id as usize - 1].clear();
    }

    /// A new read id.
    pub fn next_read_id(&mut self) -> u64 {
        self.next_read += 1;
        self.next_read - 1
    }

    /// Member `id` accepted read `read_id`.
    pub fn read_issued(&mut self, id: NodeId, read_id: u64) {
        let read = PendingRead {
            min_index: self.max_acked_index,
        };
        let previous = self.reads[id as usize - 1].insert(read_id, read);
        assert!(previous.is_none(), "read id {read_id} issued twice");
        self.stats.reads += 1;
    }

    /// Reads still waiting at member `id`.
    pub fn reads_waiting(&self, id: NodeId) -> usize {
        self.reads[id as usize - 1].len()
    }

    /// Member `id` released `state`; no read may be served beyond `commit_index` (its
    /// own commit index on a leader, the highest committed anywhere on a follower).
    pub fn on_read_state(&mut self, id: NodeId, state: &ReadState, commit_index: Index) {
        let read = self.reads[id as usize - 1].remove(&state.read_id);
        let Some(read) = read else {
            panic!(
                "n{id} released read {} it never accepted (or twice)",
                state.read_id
            );
        };
        match state.result {
            Ok(index) => {
                assert!(
                    index >= read.min_index,
                    "linearizability: n{id} released read {} at index {index}, but a write at index {} \
                     was acknowledged before the read was issued",
                    state.read_id,
                    read.min_index
                );
                assert!(
                    index <= commit_index,
                    "n{id} released read {} at index {index} beyond its commit index {commit_index}",
                    state.read_id
                );
                self.stats.reads_ok += 1;
            }
            Err(_) => self.stats.reads_refused += 1,
        }
    }

    /// At the end of a run: `committed` is the final committed log, whose last entry
    /// was written by the leader of `leader_term`. Every proposal must be decided:
    /// acknowledged ones are in the log; pending ones are in it or can never be.
    pub fn check_resolved(&self, committed: &[Committed], leader_term: Term) {
        for p in &self.proposals {
            let there = committed.get(p.pos.index as usize - 1).map(|c| c.slot);
            let mine = Slot {
                term: p.pos.term,
                key: p.key,
            };
            let who = format!("proposal of n{} at {:?} ({:?})", p.proposer, p.pos, p.fate);
            match p.fate {
                Fate::Acked => assert_eq!(
                    there,
                    Some(mine),
                    "{who} lost: the final log holds {there:?} at its index"
                ),
                Fate::Lost => assert_ne!(there, Some(mine), "{who} reported lost but committed"),
                Fate::Pending => assert!(
                    there.is_some() || p.pos.term < leader_term,
                    "liveness: {who} neither committed nor overwritten at the end of the run"
                ),
            }
        }
    }
}
