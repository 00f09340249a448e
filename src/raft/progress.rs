//! What a leader knows about one follower: `next_index` / `match_index` (Figure 2),
//! whether it is probing or streaming, and the AppendEntries it has in flight.
//!
//! The two states follow etcd's `tracker.Progress`: in `Probe` the leader does not know
//! where the follower's log diverges and sends one AppendEntries at a time; in
//! `Replicate` it has seen a success and pipelines up to `max_inflight_appends`
//! AppendEntries, advancing `next_index` optimistically.

use std::collections::VecDeque;

use super::{Index, LogPosition};

/// How the leader is talking to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProgressState {
    /// Finding the point where the logs agree; one AppendEntries in flight at most.
    Probe,
    /// The logs agree up to `match_index`; entries stream in a bounded pipeline.
    Replicate,
    /// The follower needs entries below the leader's log base: the leader streams it
    /// the snapshot at `snapshot_last`, one chunk in flight at a time.
    Snapshot,
}

/// The leader's view of one follower.
#[derive(Debug)]
pub(super) struct Progress {
    /// Highest index known replicated on the follower; never decreases in a term.
    /// Invariant: `match_index < next_index`.
    pub(super) match_index: Index,
    /// Next index to send.
    /// Invariant: `next_index <= leader's last index + 1`.
    pub(super) next_index: Index,
    /// Probe or replicate.
    pub(super) state: ProgressState,
    /// Last index of each entry-carrying AppendEntries not yet acknowledged, ascending.
    /// Invariant: at most `max_inflight_appends` (at most 1 in `Probe`), each in
    /// `(match_index, next_index)` in `Replicate`.
    pub(super) inflight: VecDeque<Index>,
    /// When anything was last sent to the follower (for heartbeats).
    pub(super) last_sent_ms: u64,
    /// When the last entry-carrying AppendEntries was sent (for retransmission).
    pub(super) last_append_ms: u64,
    /// When `match_index` last advanced or the state last changed (for retransmission).
    pub(super) last_progress_ms: u64,
    /// Highest ReadIndex round the follower acknowledged in this term (thesis §6.4).
    pub(super) acked_read_round: u64,
    /// In `Snapshot`: the snapshot being sent.
    pub(super) snapshot_last: LogPosition,
    /// In `Snapshot`: the byte offset of the next chunk to send.
    pub(super) snapshot_offset: u64,
    /// In `Snapshot`: retransmission timeouts since the last answer.
    pub(super) snapshot_stalls: u32,
    /// When the follower last answered an AppendEntries of this term (check-quorum).
    /// Starts at the leader's election, which grants every follower a full timeout.
    pub(super) last_heard_ms: u64,
}

/// Retransmission timeouts without an answer after which a snapshot transfer starts
/// over from the first byte.
const MAX_SNAPSHOT_STALLS: u32 = 3;

impl Progress {
    /// A fresh follower record for a new leader whose log ends at `last_index` (§5.3:
    /// nextIndex starts just after the leader's last entry).
    pub(super) fn new(last_index: Index, now_ms: u64) -> Progress {
        Progress {
            match_index: 0,
            next_index: last_index + 1,
            state: ProgressState::Probe,
            inflight: VecDeque::new(),
            last_sent_ms: now_ms,
            last_append_ms: now_ms,
            last_progress_ms: now_ms,
            acked_read_round: 0,
            snapshot_last: LogPosition::default(),
            snapshot_offset: 0,
            snapshot_stalls: 0,
            last_heard_ms: now_ms,
        }
    }

    /// True if no more entry-carrying AppendEntries may be sent now.
    pub(super) fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe | ProgressState::Snapshot => !self.inflight.is_empty(),
            ProgressState::Replicate => self.inflight.len() >= max_inflight,
        }
    }

    /// Records an AppendEntries carrying entries up to `last` (inclusive).
    pub(super) fn sent_entries(&mut self, last: Index, now_ms: u64) {
        self.inflight.push_back(last);
        self.last_sent_ms = now_ms;
        self.last_append_ms = now_ms;
        if self.state == ProgressState::Replicate {
            // Pipelining: assume delivery and go on after it.
            self.next_index = last + 1;
        }
    }

    /// A success for everything up to `index`. Returns true if `match_index` advanced.
    /// A success that moves nothing (a heartbeat's, at `match_index`) leaves the
    /// probe in flight: the probe starts above `match_index`, so its own success
    /// always moves it.
    pub(super) fn acked(&mut self, index: Index, now_ms: u64) -> bool {
        if index <= self.match_index {
            return false;
        }
        if self.state == ProgressState::Probe {
            // The probe has been answered (or overtaken by a later success).
            self.inflight.clear();
        }
        self.match_index = index;
        self.next_index = self.next_index.max(index + 1);
        self.last_progress_ms = now_ms;
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        if self.state == ProgressState::Probe {
            self.state = ProgressState::Replicate;
        }
        true
    }

    /// When entries in flight should be presumed lost, if any are in flight: a probe
    /// unanswered for one heartbeat interval, or a pipeline without progress for two.
    /// Independent of heartbeats, which ReadIndex rounds may send at any rate.
    pub(super) fn retransmit_due_ms(&self, interval_ms: u64) -> Option<u64> {
        if self.inflight.is_empty() {
            return None;
        }
        Some(match self.state {
            ProgressState::Probe => self.last_append_ms + interval_ms,
            ProgressState::Replicate | ProgressState::Snapshot => {
                self.last_progress_ms.max(self.last_append_ms) + 2 * interval_ms
            }
        })
    }

    /// Presumes the entries in flight lost: probe again from just after `match_index`.
    pub(super) fn retransmit(&mut self, now_ms: u64) {
        let next = match self.state {
            ProgressState::Probe => self.next_index,
            ProgressState::Replicate => self.match_index + 1,
            ProgressState::Snapshot => {
                // Resend the chunk presumed lost. After several timeouts in a row the
                // runtime may no longer have this snapshot: start over (the leader then
                // sends its latest).
                self.inflight.clear();
                self.snapshot_stalls += 1;
                if self.snapshot_stalls >= MAX_SNAPSHOT_STALLS {
                    self.snapshot_offset = 0;
                    self.snapshot_stalls = 0;
                }
                self.last_progress_ms = now_ms;
                return;
            }
        };
        self.become_probe(next, now_ms);
    }

    /// Starts streaming the snapshot at `last` from its first byte.
    pub(super) fn become_snapshot(&mut self, last: LogPosition, now_ms: u64) {
        assert!(
            last.index >= self.match_index,
            "snapshot at {} behind match {}",
            last.index,
            self.match_index
        );
        self.state = ProgressState::Snapshot;
        self.snapshot_last = last;
        self.snapshot_offset = 0;
        self.snapshot_stalls = 0;
        self.inflight.clear();
        self.last_progress_ms = now_ms;
    }

    /// The follower installed the snapshot at `last` (or already held its entries):
    /// it matches up to there; probe from just after it.
    pub(super) fn snapshot_done(&mut self, last: Index, now_ms: u64) {
        self.match_index = self.match_index.max(last);
        self.state = ProgressState::Probe;
        self.next_index = self.match_index + 1;
        self.inflight.clear();
        self.last_progress_ms = now_ms;
    }

    /// Falls back to probing from `next_index` (after a rejection or a suspected loss).
    pub(super) fn become_probe(&mut self, next_index: Index, now_ms: u64) {
        assert!(
            next_index > self.match_index,
            "probe at {next_index} not after match {}",
            self.match_index
        );
        self.state = ProgressState::Probe;
        self.next_index = next_index;
        self.inflight.clear();
        self.last_progress_ms = now_ms;
    }

    /// Asserts this record's invariants.
    pub(super) fn check_invariants(&self, last_index: Index, max_inflight: usize) {
        assert!(
            self.match_index < self.next_index,
            "match {} not below next {}",
            self.match_index,
            self.next_index
        );
        assert!(
            self.next_index <= last_index + 1,
            "next {} past leader's last index {last_index} + 1",
            self.next_index
        );
        let cap = if self.state != ProgressState::Replicate {
            1
        } else {
            max_inflight
        };
        assert!(
            self.inflight.len() <= cap,
            "{} in flight in {:?}, cap {cap}",
            self.inflight.len(),
            self.state
        );
        if self.state == ProgressState::Replicate {
            let mut prev = self.match_index;
            for &last in &self.inflight {
                assert!(
                    last > prev,
                    "inflight {:?} not ascending above match {}",
                    self.inflight,
                    self.match_index
                );
                assert!(
                    last < self.next_index,
                    "inflight {last} not below next {}",
                    self.next_index
                );
                prev = last;
            }
        }
    }
}
