//! Raft's safety properties (Figure 3 of the paper), checked after every simulator
//! step. Each check is incremental: it looks only at what the step changed, so a
//! run's cost stays linear in its length.
//!
//! - Election safety: at most one leader per term.
//! - Log matching: two logs holding an entry with the same index and term hold the
//!   same entry and, by induction, the same prefix. Checked per position: every entry
//!   ever written is recorded by (index, term) with its payload and the term before
//!   it; a second entry at that (index, term) must agree on both.
//! - Leader completeness: a new leader of term t holds every entry known committed in
//!   a term before t.
//! - State machine safety: no two members apply different entries at one index, and
//!   no batch overwrites a committed entry.
//! - Durability: every committed entry is on a majority of the durable stores.
//! - Votes: within one term a member's persisted vote never changes.
//! - The durability contract, checked on every message as it leaves a member: the
//!   term it carries is on disk; a granted vote is on disk; a successful
//!   `AppendEntriesResponse` vouches only for entries on disk.

use std::collections::{BTreeSet, HashMap, HashSet};

use raftkv::raft::{
    Entry, HardState, Index, Message, MessageBody, NodeId, Payload, PersistBatch, Term,
};

use super::storage::DurableStore;

/// A payload, reduced to a fingerprint (FNV-1a; deterministic across runs).
pub fn payload_key(payload: &Payload) -> u64 {
    match payload {
        Payload::Noop => 0,
        Payload::Command(data) => fnv(data) | 1, // odd: never 0, the key of a no-op
        // Even and never 0: distinct from every command and from a no-op.
        Payload::Membership(m) => (fnv(format!("{m:?}").as_bytes()) & !1).max(2),
    }
}

/// The state digest of a simulated state machine that stores each command's payload
/// under its fingerprint, using the runtime's digest (`raftkv::kv::StateDigest`).
pub fn digest_of(entries: &[Entry]) -> raftkv::kv::StateDigest {
    let mut digest = raftkv::kv::StateDigest::default();
    for entry in entries {
        apply_digest(&mut digest, entry);
    }
    digest
}

/// Applies `entry` to a simulated state machine's digest (see [`digest_of`]).
pub fn apply_digest(digest: &mut raftkv::kv::StateDigest, entry: &Entry) {
    if let Payload::Command(data) = &entry.payload {
        digest.add(&payload_key(&entry.payload).to_le_bytes(), data);
    }
}

/// FNV-1a of `data`.
fn fnv(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in data {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// One position of a log as the checker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// The entry's term.
    pub term: Term,
    /// Its payload's fingerprint.
    pub key: u64,
}

impl Slot {
    /// The slot of `entry`.
    pub fn of(entry: &Entry) -> Slot {
        Slot {
            term: entry.term,
            key: payload_key(&entry.payload),
        }
    }
}

/// An entry known committed.
#[derive(Clone, Copy, Debug)]
pub struct Committed {
    /// What is there.
    pub slot: Slot,
    /// The lowest term in which some member was seen to hold it as committed; every
    /// leader of a later term must hold it (§5.4.3).
    pub known_in_term: Term,
}

/// Global knowledge the checks compare members against.
pub struct Checker {
    members: usize,
    /// Election safety: the leader of each term seen so far.
    leaders: HashMap<Term, NodeId>,
    /// Log matching: (index, term) -> (payload key, term of the entry before).
    positions: HashMap<(Index, Term), (u64, Term)>,
    /// The committed log, index 1 first.
    committed: Vec<Committed>,
    /// Payload keys of committed commands, to catch one command committed twice.
    committed_commands: HashSet<u64>,
    /// State digests: index -> (digest after applying it, member that first reported it).
    digests: HashMap<Index, (u64, NodeId)>,
}

impl Checker {
    /// A checker for a cluster of `members`.
    pub fn new(members: usize) -> Checker {
        Checker {
            members,
            leaders: HashMap::new(),
            positions: HashMap::new(),
            committed: Vec::new(),
            committed_commands: HashSet::new(),
            digests: HashMap::new(),
        }
    }

    /// The committed log known so far.
    pub fn committed(&self) -> &[Committed] {
        &self.committed
    }

    /// Number of distinct terms that had a leader.
    pub fn terms_with_leader(&self) -> usize {
        self.leaders.len()
    }

    /// Checks a batch member `id` took at `term` and applies it to `shadow`, the log as
    /// the batches describe it. `last_hs` is the last hard state the member persisted
    /// or queued.
    pub fn check_batch(
        &mut self,
        id: NodeId,
        term: Term,
        shadow: &mut Vec<Slot>,
        last_hs: &mut HardState,
        batch: &PersistBatch,
    ) {
        if let Some(hs) = batch.hard_state {
            check_vote_change(id, last_hs, &hs);
            *last_hs = hs;
        }
        let Some(first) = batch.entries.first() else {
            return;
        };
        assert!(
            first.index >= 1 && first.index <= shadow.len() as Index + 1,
            "n{id}: batch starts at index {} but the log ends at {}",
            first.index,
            shadow.len()
        );
        self.check_not_overwriting_committed(id, shadow, &batch.entries);
        shadow.truncate(first.index as usize - 1);
        for entry in &batch.entries {
            assert_eq!(
                entry.index,
                shadow.len() as Index + 1,
                "n{id}: batch entries not consecutive"
            );
            assert!(
                entry.term <= term,
                "n{id}: entry {} has term {} > current term {term}",
                entry.index,
                entry.term
            );
            let slot = Slot::of(entry);
            let prev_term = shadow.last().map_or(0, |s| s.term);
            assert!(
                slot.term >= prev_term,
                "n{id}: entry {} has term {} after an entry of term {prev_term}",
                entry.index,
                slot.term
            );
            self.check_log_matching(id, entry.index, slot, prev_term);
            shadow.push(slot);
        }
    }

    /// A member may write an entry at a committed index it does not hold (a stale
    /// leader replicating to a stale follower), but never replace or truncate a
    /// committed entry it holds.
    fn check_not_overwriting_committed(&self, id: NodeId, shadow: &[Slot], entries: &[Entry]) {
        let from = entries[0].index as usize;
        let to = shadow.len().min(self.committed.len());
        for index in from..=to {
            let held = shadow[index - 1];
            let committed = self.committed[index - 1].slot;
            if held != committed {
                continue;
            }
            let written = entries.get(index - from).map(Slot::of);
            assert_eq!(
                written,
                Some(committed),
                "n{id}: a batch starting at {from} replaces committed entry {index} {committed:?} with {written:?}"
            );
        }
    }

    fn check_log_matching(&mut self, id: NodeId, index: Index, slot: Slot, prev_term: Term) {
        let seen = *self
            .positions
            .entry((index, slot.term))
            .or_insert((slot.key, prev_term));
        assert_eq!(
            seen,
            (slot.key, prev_term),
            "log matching: n{id} holds (index {index}, term {}) with (payload, previous term) {:?}, \
             another log held {seen:?}",
            slot.term,
            (slot.key, prev_term)
        );
    }

    /// Member `id`, now in `term`, holds `entries` as committed (they are consecutive
    /// and start at most one past the end of the committed log).
    pub fn observe_commit(&mut self, id: NodeId, term: Term, entries: &[Entry]) {
        for entry in entries {
            let slot = Slot::of(entry);
            let i = entry.index as usize - 1;
            if let Some(c) = self.committed.get_mut(i) {
                assert_eq!(
                    c.slot, slot,
                    "state machine safety: n{id} commits {slot:?} at index {}, but {:?} was committed there",
                    entry.index, c.slot
                );
                c.known_in_term = c.known_in_term.min(term);
                continue;
            }
            assert_eq!(i, self.committed.len(), "n{id}: commit observed past a gap");
            if slot.key != 0 {
                assert!(
                    self.committed_commands.insert(slot.key),
                    "n{id}: command {:#x} committed a second time, at index {}",
                    slot.key,
                    entry.index
                );
            }
            self.committed.push(Committed {
                slot,
                known_in_term: term,
            });
        }
    }

    /// Member `id`'s state machine has `digest` after applying index `index`: every
    /// member that applied `index` must have the same.
    pub fn check_digest(&mut self, id: NodeId, index: Index, digest: u64) {
        let (first, by) = *self.digests.entry(index).or_insert((digest, id));
        assert_eq!(
            digest, first,
            "state digest: n{id} has {digest:#x} after index {index}, n{by} had {first:#x}"
        );
    }

    /// Member `id` handed `entry` to its state machine.
    pub fn check_applied(&self, id: NodeId, entry: &Entry) {
        let slot = Slot::of(entry);
        let committed = self.committed.get(entry.index as usize - 1);
        assert!(
            committed.is_some_and(|c| c.slot == slot),
            "state machine safety: n{id} applies {slot:?} at index {}, committed there: {committed:?}",
            entry.index
        );
    }

    /// Member `id` is leader of `term` with log `log` (index 1 first).
    pub fn observe_leader(&mut self, id: NodeId, term: Term, log: &[Entry]) {
        let leader = *self.leaders.entry(term).or_insert(id);
        assert_eq!(
            leader, id,
            "election safety: n{id} and n{leader} both lead term {term}"
        );
        for (i, c) in self.committed.iter().enumerate() {
            if c.known_in_term >= term {
                continue;
            }
            let held = log.get(i).map(Slot::of);
            assert_eq!(
                held,
                Some(c.slot),
                "leader completeness: n{id}, leader of term {term}, holds {held:?} at index {} where \
                 {:?} was committed in term {}",
                i + 1,
                c.slot,
                c.known_in_term
            );
        }
    }

    /// Every committed entry is on a majority of the durable stores (`stores[k]` is
    /// member k + 1's) of the voters of some configuration that may have committed
    /// it: the one in force at its index (the bootstrap `1..=voters`, or the latest
    /// committed configuration entry at or before it), or any configuration entry
    /// after it in any store (a leader counts by its latest, perhaps uncommitted).
    pub fn check_durable_majority(&self, stores: &[&DurableStore], voters: usize) {
        let mut configs: Vec<(Index, BTreeSet<NodeId>)> = stores
            .iter()
            .flat_map(|s| s.entries.iter().filter_map(config_of))
            .collect();
        configs.sort();
        configs.dedup();
        let mut in_force: BTreeSet<NodeId> = (1..=voters as NodeId).collect();
        for (i, c) in self.committed.iter().enumerate() {
            let index = i as Index + 1;
            let holders: BTreeSet<NodeId> = (1..=stores.len() as NodeId)
                .filter(|&id| stores[id as usize - 1].entry(index).map(Slot::of) == Some(c.slot))
                .collect();
            if let Some(entry) = stores
                .iter()
                .filter_map(|s| s.entry(index))
                .find(|e| Slot::of(e) == c.slot)
            {
                if let Some((_, voters)) = config_of(entry) {
                    in_force = voters;
                }
            }
            let later = configs.iter().filter(|(at, _)| *at > index).map(|(_, v)| v);
            let majority_holds =
                |v: &BTreeSet<NodeId>| v.intersection(&holders).count() > v.len() / 2;
            // What keeps the entry is that every quorum of the configuration in force
            // holds it: a future leader needs a vote from a holder. With an even number
            // of voters half of them is enough; that is how a leader removing itself
            // from {1, 3} commits on n1 alone, under the new configuration {1}.
            let every_quorum_holds = |v: &BTreeSet<NodeId>| {
                let missing = v.difference(&holders).count();
                missing <= v.len() / 2
            };
            assert!(
                every_quorum_holds(&in_force) || later.clone().any(majority_holds),
                "durability: committed entry {index} {:?} is on the durable stores of {holders:?}, \
                 which miss a quorum of the voters {in_force:?} (of {} members) and hold a \
                 majority of no later configuration",
                c.slot,
                self.members
            );
        }
    }
}

/// The index and voters of a configuration entry.
fn config_of(entry: &Entry) -> Option<(Index, BTreeSet<NodeId>)> {
    match &entry.payload {
        Payload::Membership(m) => Some((entry.index, m.voters.clone())),
        _ => None,
    }
}

/// Member `id`, whose durable state is `store`, is about to put `msg` on the network:
/// everything the message promises must be durable. `vouched` is the term its log
/// held at the acknowledged index when the message was created (see [`vouched_term`]).
pub fn check_send(id: NodeId, store: &DurableStore, vouched: Option<Term>, msg: &Message) {
    let hs = store.hard_state;
    if matches!(
        msg.body,
        MessageBody::PreVote { .. } | MessageBody::PreVoteResponse { .. }
    ) {
        // Pre-votes promise nothing (thesis §9.6): a PreVote and a grant carry the
        // next term, which nobody has entered, and a refusal only informs.
        return;
    }
    assert!(
        msg.term <= hs.current_term,
        "durability: n{id} sends a message of term {} while its durable term is {}",
        msg.term,
        hs.current_term
    );
    match msg.body {
        MessageBody::RequestVoteResponse { vote_granted: true } => assert_eq!(
            (hs.current_term, hs.voted_for),
            (msg.term, Some(msg.to)),
            "durability: n{id} grants its vote to n{} in term {} before the vote is durable",
            msg.to,
            msg.term
        ),
        MessageBody::AppendEntriesResponse {
            success: true,
            match_index,
            ..
        } if match_index > 0 => {
            let durable = store.entry(match_index).map(|e| e.term);
            assert!(
                durable.is_some() && durable == vouched,
                "durability: n{id} acknowledges index {match_index} (term {vouched:?} in its log) while its \
                 durable log holds term {durable:?} there",
            );
        }
        _ => {}
    }
}

/// The term `shadow` holds at the index a successful `AppendEntriesResponse` vouches
/// for (`None` for other messages).
pub fn vouched_term(shadow: &[Slot], msg: &Message) -> Option<Term> {
    match msg.body {
        MessageBody::AppendEntriesResponse {
            success: true,
            match_index,
            ..
        } if match_index > 0 => shadow.get(match_index as usize - 1).map(|s| s.term),
        _ => None,
    }
}

/// A persisted vote may change only together with the term; the term never goes back.
fn check_vote_change(id: NodeId, old: &HardState, new: &HardState) {
    assert!(
        new.current_term >= old.current_term,
        "n{id}: persisted term goes back from {} to {}",
        old.current_term,
        new.current_term
    );
    if new.current_term == old.current_term && old.voted_for.is_some() {
        assert_eq!(
            new.voted_for, old.voted_for,
            "n{id}: vote changed within term {}",
            new.current_term
        );
    }
}

#[cfg(test)]
mod tests {
    use super::Checker;

    /// The digest check can fail: two members with different digests at one index stop
    /// the run (every scenario feeds it each member's digest after each applied entry).
    #[test]
    #[should_panic(expected = "state digest: n2 has 0xabd after index 5, n1 had 0xabc")]
    fn the_digest_check_refuses_two_digests_at_one_index() {
        let mut checker = Checker::new(3);
        checker.check_digest(1, 5, 0xabc);
        checker.check_digest(3, 6, 0x123);
        checker.check_digest(3, 5, 0xabc);
        checker.check_digest(2, 5, 0xabd);
    }
}
