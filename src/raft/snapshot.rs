//! Snapshots (§7, thesis §5): compaction of the log under a snapshot the state machine
//! took, and InstallSnapshot for a follower that needs entries the leader no longer
//! has.
//!
//! The core holds no snapshot bytes. It decides *what* to send and *whether* to accept;
//! the runtime moves the bytes:
//! - Leader: an outgoing `InstallSnapshot` asks for the chunk at `offset` of the
//!   snapshot at `last` with empty `data`; the runtime fills it from its snapshot file
//!   (see [`MessageBody::InstallSnapshot`]). One chunk is in flight per follower; the
//!   follower's answer names the next offset it wants.
//! - Follower: accepted chunks leave in [`PersistBatch::snapshot_chunks`]
//!   (crate::raft::PersistBatch) for the runtime to write to a temporary file; their
//!   acknowledgements ride the same batch. After the final chunk the runtime checks
//!   the file, installs it atomically as its snapshot and reports
//!   [`Raft::snapshot_installed`] (or [`Raft::snapshot_rejected`]).

use serde::{Deserialize, Serialize};

use super::core::{Raft, Role};
use super::fault::MAX_INDEX;
use super::progress::ProgressState;
use super::{Index, LogPosition, Message, MessageBody, NodeId};

/// A chunk of a snapshot this follower accepted, for the runtime to write at `offset`
/// of the file it assembles (offset 0 starts a new file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChunk {
    /// The snapshot the chunk belongs to.
    pub last: LogPosition,
    /// Where the chunk goes in the file.
    pub offset: u64,
    /// The bytes.
    pub data: Vec<u8>,
    /// True for the final chunk: once it is written, check and install the file.
    pub done: bool,
}

/// Most snapshots remembered as possibly being installed (see `Raft::installing`).
pub(super) const MAX_INSTALLING: usize = 8;

/// A transfer this follower is receiving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Incoming {
    /// The leader sending it.
    pub(super) from: NodeId,
    /// The snapshot.
    pub(super) last: LogPosition,
    /// The next byte expected.
    pub(super) next_offset: u64,
    /// The final chunk was accepted; waiting for the runtime to install it.
    pub(super) complete: bool,
}

impl Raft {
    /// The state machine holds a snapshot covering everything up to `through`, and
    /// storage has made it durable as its snapshot: drop the log up to there and make
    /// it the base (§7). No-op if the snapshot is already there or later.
    ///
    /// Precondition: `through.index <= ` the last index handed out by
    /// [`Raft::take_committed`], and the log holds `through`. The caller must have
    /// persisted every entry up to `through` before saving the snapshot (so storage
    /// keeps the entries after it, as this log does).
    pub fn compact(&mut self, through: LogPosition) {
        self.compact_keeping(through, 0, 0);
    }

    /// Like [`Raft::compact`], but keeps up to `keep` entries (of at most
    /// `keep_bytes` bytes together) before the snapshot in the log (etcd's
    /// `SnapshotCatchUpEntries`): a follower that fell only a little behind is then
    /// sent those entries instead of the whole snapshot. The snapshot still covers
    /// `through`; afterwards [`Raft::log_base`] is where storage may compact to.
    pub fn compact_keeping(&mut self, through: LogPosition, keep: u64, keep_bytes: u64) {
        if through.index <= self.snapshot.index {
            return;
        }
        assert!(
            through.index <= self.last_applied,
            "compact through {} beyond the applied index {}",
            through.index,
            self.last_applied
        );
        assert_eq!(
            self.log.term_at(through.index),
            Some(through.term),
            "snapshot at {through:?}, which the log does not hold"
        );
        self.snapshot = through;
        let base_index = self.log.trailing_base(through.index, keep, keep_bytes);
        if base_index > self.log.base().index {
            let term = self.log.term_at(base_index);
            let Some(term) = term else {
                panic!("log holds {through:?} but not {base_index} before it");
            };
            self.log.compact_to(LogPosition {
                index: base_index,
                term,
            });
        }
    }

    /// Leader: sends `peer` the next chunk of the latest snapshot, starting over if
    /// the snapshot changed. Returns true if a chunk was sent.
    pub(super) fn send_snapshot(&mut self, peer: NodeId) -> bool {
        let base = self.snapshot;
        let now_ms = self.now_ms;
        let Some(pr) = self.progress.get_mut(&peer) else {
            return false;
        };
        // A transfer in progress goes on even if a newer snapshot replaced it: the
        // runtime keeps the file it started sending open. Back at offset 0 (a new
        // transfer, or repeated timeouts) it starts with the latest.
        if pr.state != ProgressState::Snapshot
            || (pr.snapshot_last != base && pr.snapshot_offset == 0)
        {
            pr.become_snapshot(base, now_ms);
        }
        if pr.is_paused(1) {
            return false;
        }
        let (last, offset) = (pr.snapshot_last, pr.snapshot_offset);
        pr.sent_entries(last.index, now_ms);
        let body = MessageBody::InstallSnapshot {
            last,
            membership: self.log.memberships().at(last.index).clone(),
            offset,
            data: Vec::new(),
            done: false,
        };
        let msg = self.message_to(peer, body);
        self.messages.push(msg);
        true
    }

    /// Leader: a follower's answer to a chunk.
    pub(super) fn handle_install_snapshot_response(
        &mut self,
        peer: NodeId,
        last: LogPosition,
        next_offset: u64,
        done: bool,
    ) {
        if self.role != Role::Leader {
            return; // stale
        }
        if last.index > self.log.last_index() {
            let what = format!(
                "InstallSnapshotResponse names index {}, past this leader's last index {}",
                last.index,
                self.log.last_index()
            );
            self.peer_fault(peer, self.current_term, what);
            return;
        }
        let now_ms = self.now_ms;
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        // Any answer in this term shows the follower still follows (check-quorum).
        pr.last_heard_ms = pr.last_heard_ms.max(now_ms);
        if done {
            if pr.state == ProgressState::Snapshot || last.index > pr.match_index {
                pr.snapshot_done(last.index, now_ms);
                self.maybe_commit();
            }
        } else if pr.state == ProgressState::Snapshot && pr.snapshot_last == last {
            if next_offset == pr.snapshot_offset && !pr.inflight.is_empty() {
                // It asks for the chunk already in flight (a duplicated or reordered
                // answer). Resending would add a second chunk/answer exchange that
                // never ends, and each further duplicate another: a message storm.
                return;
            }
            pr.snapshot_offset = next_offset;
            pr.snapshot_stalls = 0;
            pr.inflight.clear();
            pr.last_progress_ms = now_ms;
        } else {
            return; // an answer about a transfer the leader has given up
        }
        while self.send_append(peer) {}
    }

    /// Follower side of InstallSnapshot of the current term.
    pub(super) fn handle_install_snapshot(&mut self, msg: Message) {
        let (from, term) = (msg.from, msg.term);
        let MessageBody::InstallSnapshot {
            last,
            membership,
            offset,
            data,
            done,
        } = msg.body
        else {
            return;
        };
        if let Err(why) = self.check_snapshot_chunk(last, term, offset, data.len()) {
            self.peer_fault(from, term, format!("InstallSnapshot {why}"));
            return;
        }
        if !self.follow_leader_of_current_term(from) {
            return;
        }
        if last.index <= self.commit_index {
            // Our committed prefix already covers it, and committed prefixes agree
            // (§5.4 Log Matching): nothing to install.
            self.reply_snapshot(from, last, 0, true);
            return;
        }
        let expected = match self.incoming {
            Some(inc) if inc.last == last && !inc.complete => inc.next_offset,
            Some(inc) if inc.last == last => {
                // Installing it already; the answer goes to whoever sends it now.
                self.incoming = Some(Incoming { from, ..inc });
                return;
            }
            _ => 0,
        };
        if offset != expected {
            // Even this answer carries our term, which must be durable first.
            self.reply_snapshot(from, last, expected, false);
            return;
        }
        // Checked by `check_snapshot_chunk`.
        let next_offset = offset.saturating_add(data.len() as u64);
        self.incoming = Some(Incoming {
            from,
            last,
            next_offset,
            complete: done,
        });
        self.persist.chunks.push(SnapshotChunk {
            last,
            offset,
            data,
            done,
        });
        if done {
            if self.installing.len() == MAX_INSTALLING {
                self.installing.remove(0);
            }
            self.installing.push(last);
            self.installing_memberships
                .retain(|(p, _)| self.installing.contains(p));
            self.installing_memberships.push((last, membership));
        }
        if !done {
            // Rides the batch that writes the chunk.
            self.reply_snapshot(from, last, next_offset, false);
        }
    }

    /// Err if a chunk of the snapshot at `last`, sent in `term`, is impossible: a
    /// snapshot of a later term than its sender's or of nothing, an index or offset
    /// that cannot be, or one that conflicts with an entry committed here.
    fn check_snapshot_chunk(
        &self,
        last: LogPosition,
        term: super::Term,
        offset: u64,
        len: usize,
    ) -> Result<(), String> {
        if last.term > term || last.index == 0 || last.index > MAX_INDEX {
            return Err(format!(
                "names snapshot {last:?}, impossible in term {term}"
            ));
        }
        if offset.checked_add(len as u64).is_none() {
            return Err(format!("has offset {offset} + {len} bytes, past u64"));
        }
        let ours = self.log.term_at(last.index);
        if last.index <= self.commit_index && ours.is_some_and(|t| t != last.term) {
            return Err(format!(
                "names snapshot {last:?}, but the committed entry there has term {ours:?}"
            ));
        }
        Ok(())
    }

    /// Queues an answer to a chunk; it leaves once everything before it is durable.
    fn reply_snapshot(&mut self, to: NodeId, last: LogPosition, next_offset: u64, done: bool) {
        let body = MessageBody::InstallSnapshotResponse {
            last,
            next_offset,
            done,
        };
        let reply = self.message_to(to, body);
        self.send_durable(reply);
    }

    /// The runtime wrote the final chunk of the snapshot at `last`, checked it and
    /// installed it durably as its snapshot (storage kept its log after `last` only if
    /// it held `last` itself). The log follows: it keeps the entries after `last` if it
    /// holds `last`, else it is emptied (§7). Returns true if the state machine must
    /// be replaced by the snapshot (it had not reached `last`).
    ///
    /// Precondition: `last.index` is above the snapshot's (storage's snapshot equals
    /// this one whenever the runtime's single writer is between operations).
    pub fn snapshot_installed(&mut self, last: LogPosition, now_ms: u64) -> bool {
        self.observe_time(now_ms);
        self.installing.retain(|&p| p != last);
        let installing = &self.installing;
        let keep = |(p, _): &(LogPosition, _)| *p == last || installing.contains(p);
        self.installing_memberships.retain(keep);
        assert!(
            last.index > self.snapshot.index,
            "installed snapshot {last:?} not after the snapshot {:?}",
            self.snapshot
        );
        self.snapshot = last;
        if self.log.term_at(last.index) == Some(last.term) {
            self.log.compact_to(last);
        } else {
            // Own state: nothing that conflicts with a snapshot being installed is
            // committed (`check_no_installing_conflict`), and a chunk of one that
            // conflicts with a committed entry is refused (`check_snapshot_chunk`).
            assert!(
                last.index > self.commit_index,
                "snapshot {last:?} conflicts with committed entry {}",
                self.commit_index
            );
            let membership = self
                .installing_memberships
                .iter()
                .find(|(p, _)| *p == last)
                .map_or_else(|| self.membership().clone(), |(_, m)| m.clone());
            self.log.reset_to(last, membership);
        }
        self.commit_index = self.commit_index.max(last.index);
        let restore = self.last_applied < last.index;
        self.last_applied = self.last_applied.max(last.index);
        // A newer transfer accepted meanwhile (its chunks in a later batch) goes on:
        // dropping it would make the leader start it over, or, if its final chunk
        // was already accepted, leave it installed but never answered.
        if let Some(inc) = self.incoming.filter(|inc| inc.last == last) {
            self.incoming = None;
            // To the leader of our current term if we know one (the transfer may have
            // begun under an older leader), else to whoever sent the last chunk.
            let to = self
                .leader
                .filter(|&l| l != self.config.id)
                .unwrap_or(inc.from);
            self.reply_snapshot(to, last, 0, true);
        }
        restore
    }

    /// The runtime could not check or install the snapshot at `last`: forget the
    /// transfer; the leader's next retry starts it over.
    pub fn snapshot_rejected(&mut self, last: LogPosition) {
        self.installing.retain(|&p| p != last);
        let installing = &self.installing;
        let keep = |(p, _): &(LogPosition, _)| *p == last || installing.contains(p);
        self.installing_memberships.retain(keep);
        if self.incoming.is_some_and(|inc| inc.last == last) {
            self.incoming = None;
        }
    }

    /// The snapshot transfer being received, if any: its position and next offset.
    pub fn incoming_snapshot(&self) -> Option<(LogPosition, u64)> {
        self.incoming.map(|inc| (inc.last, inc.next_offset))
    }

    /// Err if accepting `entries` after `prev` with `leader_commit` would commit, at
    /// the index of a snapshot that may be being installed, an entry of another term
    /// (the snapshot holds committed entries only, so a correct leader agrees with it).
    pub(super) fn check_no_installing_conflict(
        &self,
        prev: LogPosition,
        entries: &[super::Entry],
        leader_commit: Index,
    ) -> Result<(), String> {
        let match_index = entries.last().map_or(prev.index, |e| e.index);
        let new_commit = leader_commit.min(match_index).max(self.commit_index);
        for snap in self.installing.iter().filter(|p| p.index <= new_commit) {
            let term = match entries.iter().find(|e| e.index == snap.index) {
                Some(e) => Some(e.term),
                None => self.log.term_at(snap.index),
            };
            if term.is_some_and(|t| t != snap.term) {
                return Err(format!(
                    "would commit term {term:?} at index {}, where the snapshot {snap:?} \
                     it sent is being installed",
                    snap.index
                ));
            }
        }
        Ok(())
    }

    /// Index below which this leader would have to send `peer` a snapshot.
    pub(super) fn needs_snapshot(&self, next_index: Index) -> bool {
        next_index <= self.log.base().index
    }
}
