//! The in-memory log: entries after a base position, and how much of it is durable.
//!
//! Like etcd's `raftLog` with its `unstable` part, the log remembers two boundaries:
//! which suffix has not yet been handed to storage (`persist_from`), and which prefix
//! storage has confirmed (`durable_index`). Everything else in the core asks this type.

use super::membership::{Membership, MembershipLog};
use super::{Entry, Index, LogPosition, Term};

/// The log of one member: `entries` follow `base` consecutively.
#[derive(Debug)]
pub(super) struct RaftLog {
    /// The last position covered by a snapshot (index 0 and term 0 before any).
    base: LogPosition,
    /// Invariant: `entries[k].index == base.index + 1 + k`, terms non-decreasing,
    /// every term >= `base.term`.
    entries: Vec<Entry>,
    /// Entries up to here are on stable storage.
    /// Invariant: `base.index <= durable_index < persist_from`.
    durable_index: Index,
    /// First index not yet handed out in a persist batch (`last_index + 1` if none).
    /// Invariant: `persist_from <= last_index + 1`.
    persist_from: Index,
    /// The configuration at the base and every configuration entry after it.
    memberships: MembershipLog,
}

impl RaftLog {
    /// A log recovered from storage: all of it is already durable.
    /// `membership` is the configuration as of `base`.
    pub(super) fn recovered(
        base: LogPosition,
        entries: Vec<Entry>,
        membership: Membership,
    ) -> RaftLog {
        let log = RaftLog {
            memberships: MembershipLog::new(membership, &entries),
            base,
            durable_index: base.index + entries.len() as Index,
            persist_from: base.index + entries.len() as Index + 1,
            entries,
        };
        log.check_invariants();
        log
    }

    /// Which configuration each part of the log is under.
    pub(super) fn memberships(&self) -> &MembershipLog {
        &self.memberships
    }

    /// The snapshot's last position.
    pub(super) fn base(&self) -> LogPosition {
        self.base
    }

    /// Index of the last entry (the base index if the log is empty).
    pub(super) fn last_index(&self) -> Index {
        self.base.index + self.entries.len() as Index
    }

    /// The last position (the base if the log is empty).
    pub(super) fn last_position(&self) -> LogPosition {
        match self.entries.last() {
            Some(e) => LogPosition {
                term: e.term,
                index: e.index,
            },
            None => self.base,
        }
    }

    /// Highest index confirmed durable by storage.
    pub(super) fn durable_index(&self) -> Index {
        self.durable_index
    }

    /// Term of the entry at `index`; `None` if below the base or past the end.
    pub(super) fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.base.index {
            return Some(self.base.term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if the log holds it (not the base).
    pub(super) fn entry(&self, index: Index) -> Option<&Entry> {
        if index <= self.base.index {
            return None;
        }
        self.entries.get((index - self.base.index - 1) as usize)
    }

    /// Entries from `from` to the end (empty if `from` is past the end).
    pub(super) fn entries_from(&self, from: Index) -> &[Entry] {
        assert!(
            from > self.base.index,
            "entries_from({from}) at or below the log base {}",
            self.base.index
        );
        let start = ((from - self.base.index - 1) as usize).min(self.entries.len());
        &self.entries[start..]
    }

    /// Entries `from..=to`, clamped to the end of the log.
    pub(super) fn slice(&self, from: Index, to: Index) -> &[Entry] {
        let all = self.entries_from(from);
        let len = (to + 1).saturating_sub(from) as usize;
        &all[..len.min(all.len())]
    }

    /// Appends one entry at the end.
    pub(super) fn append(&mut self, entry: Entry) {
        let last = self.last_position();
        assert_eq!(
            entry.index,
            last.index + 1,
            "append leaves a gap after {last:?}"
        );
        assert!(
            entry.term >= last.term,
            "append of term {} after {last:?}",
            entry.term
        );
        self.memberships.appended(&entry);
        self.entries.push(entry);
    }

    /// Removes every entry at or after `from`. The durable index drops below `from`
    /// and the next persist batch starts there, so storage truncates too.
    pub(super) fn truncate_from(&mut self, from: Index) {
        assert!(
            from > self.base.index,
            "truncate_from({from}) at or below the log base {}",
            self.base.index
        );
        self.entries.truncate((from - self.base.index - 1) as usize);
        self.memberships.truncated(from);
        self.durable_index = self.durable_index.min(from - 1);
        self.persist_from = self.persist_from.min(from);
    }

    /// A snapshot now covers everything up to `through`, which the log holds: drop
    /// the entries up to it and make it the base, keeping the entries after it (§7).
    /// Entries up to the base never go to storage again, so the persist boundary
    /// moves past it.
    pub(super) fn compact_to(&mut self, through: LogPosition) {
        assert_eq!(
            self.term_at(through.index),
            Some(through.term),
            "compact to {through:?}, which the log does not hold"
        );
        let drop = (through.index - self.base.index) as usize;
        self.entries.drain(..drop);
        self.memberships.compacted(through.index);
        self.base = through;
        self.durable_index = self.durable_index.max(through.index);
        self.persist_from = self.persist_from.max(through.index + 1);
    }

    /// Where to put the base when compacting under a snapshot at `through` while
    /// keeping up to `keep` entries before it, of at most `keep_bytes` bytes together
    /// (by [`Entry::size_bytes`]): the index of the last entry dropped, never below
    /// the current base. Precondition: the log holds `through`.
    pub(super) fn trailing_base(&self, through: Index, keep: u64, keep_bytes: u64) -> Index {
        let mut base_index = through.saturating_sub(keep).max(self.base.index);
        let kept = self.slice(base_index + 1, through);
        let mut bytes: u64 = 0;
        for entry in kept.iter().rev() {
            bytes = bytes.saturating_add(entry.size_bytes() as u64);
            if bytes > keep_bytes {
                base_index = entry.index;
                break;
            }
        }
        base_index
    }

    /// A snapshot at `base` supersedes the whole log (it does not hold `base`): the
    /// log becomes empty after it (§7, "discard the entire log").
    /// `membership` is the snapshot's configuration.
    pub(super) fn reset_to(&mut self, base: LogPosition, membership: Membership) {
        assert!(
            base.index >= self.base.index,
            "reset to {base:?} behind the base {:?}",
            self.base
        );
        self.entries.clear();
        self.memberships.reset(membership);
        self.base = base;
        self.durable_index = base.index;
        self.persist_from = base.index + 1;
    }

    /// True if some entries have not been handed to storage yet.
    pub(super) fn has_unpersisted(&self) -> bool {
        self.persist_from <= self.last_index()
    }

    /// Hands the not-yet-persisted suffix to storage (a copy of it).
    pub(super) fn take_unpersisted(&mut self) -> Vec<Entry> {
        let out = self.entries_from(self.persist_from).to_vec();
        self.persist_from = self.last_index() + 1;
        out
    }

    /// Storage reports entries up to `last` durable. Ignored if the log no longer
    /// holds `last.term` at `last.index` (the entry was replaced meanwhile; etcd's
    /// `stableTo` check). Returns true if the durable index moved.
    pub(super) fn persisted_to(&mut self, last: LogPosition) -> bool {
        if self.term_at(last.index) != Some(last.term) || last.index <= self.durable_index {
            return false;
        }
        assert!(
            last.index < self.persist_from,
            "storage confirms {} but only up to {} was handed out",
            last.index,
            self.persist_from - 1
        );
        self.durable_index = last.index;
        true
    }

    /// The first index of the run of entries with the same term as `index`, which
    /// the log must hold. Used for the conflict hint of a rejection (§5.3).
    pub(super) fn first_index_of_term_at(&self, index: Index) -> Index {
        let term = self.term_at(index);
        assert!(
            term.is_some(),
            "first_index_of_term_at({index}) outside the log"
        );
        let mut first = index;
        while first - 1 > self.base.index && self.term_at(first - 1) == term {
            first -= 1;
        }
        first
    }

    /// The last index `<= max` whose entry has term `term`, if any (the leader's half
    /// of backing up a whole term at a time, as etcd's `findConflictByTerm`).
    pub(super) fn last_index_of_term(&self, term: Term, max: Index) -> Option<Index> {
        let mut index = max.min(self.last_index());
        while index > self.base.index {
            let t = self.term_at(index).unwrap_or(0);
            if t == term {
                return Some(index);
            }
            if t < term {
                return None; // terms only grow along the log
            }
            index -= 1;
        }
        None
    }

    /// Asserts the structural invariants (O(length)).
    pub(super) fn check_invariants(&self) {
        let mut prev = self.base;
        for e in &self.entries {
            assert_eq!(e.index, prev.index + 1, "log gap: {e:?} after {prev:?}");
            assert!(
                e.term >= prev.term,
                "log term decreases: {e:?} after {prev:?}"
            );
            prev = LogPosition {
                term: e.term,
                index: e.index,
            };
        }
        let last = self.last_index();
        assert!(
            self.durable_index >= self.base.index,
            "durable index {} below base {}",
            self.durable_index,
            self.base.index
        );
        assert!(
            self.durable_index < self.persist_from,
            "durable index {} not below persist_from {}",
            self.durable_index,
            self.persist_from
        );
        assert!(
            self.persist_from <= last + 1,
            "persist_from {} past last index {last} + 1",
            self.persist_from
        );
    }
}
