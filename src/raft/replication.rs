//! Log replication (§5.3) and commitment (§5.4.2): the leader's sending side, the
//! follower's AppendEntries handler and the leader's handling of the answers.

use super::core::{Raft, Role};
use super::fault::MAX_INDEX;
use super::progress::ProgressState;
use super::{
    ConflictHint, Entry, Index, InjectedBug, LogPosition, Message, MessageBody, NodeId, Payload,
    Term,
};

impl Raft {
    /// Leader: appends an entry of the current term and starts replicating it at once.
    pub(super) fn append_and_replicate(&mut self, payload: Payload) -> LogPosition {
        assert_eq!(
            self.role,
            Role::Leader,
            "append on a non-leader (term {})",
            self.current_term
        );
        let pos = LogPosition {
            term: self.current_term,
            index: self.log.last_index() + 1,
        };
        self.log.append(Entry {
            term: pos.term,
            index: pos.index,
            payload,
        });
        for peer in self.peers() {
            self.send_append(peer);
        }
        pos
    }

    /// Sends `peer` the next entries it needs, if its in-flight window allows.
    /// Returns true if a message was sent.
    pub(super) fn send_append(&mut self, peer: NodeId) -> bool {
        let max_inflight = self.config.max_inflight_appends;
        let last_index = self.log.last_index();
        let now_ms = self.now_ms;
        let needs_snapshot = match self.progress.get(&peer) {
            Some(pr) => self.needs_snapshot(pr.next_index),
            None => return false,
        };
        let Some(pr) = self.progress.get_mut(&peer) else {
            return false;
        };
        if pr.state == ProgressState::Snapshot && !needs_snapshot {
            // An acknowledgement showed the follower past the base after all.
            let matched = pr.match_index;
            pr.snapshot_done(matched, now_ms);
        }
        if needs_snapshot {
            // §7: the entries it needs are compacted away; send the snapshot.
            return self.send_snapshot(peer);
        }
        if pr.is_paused(max_inflight) || pr.next_index > last_index {
            return false;
        }
        let next = pr.next_index;
        let prev_log_index = next - 1;
        let prev_log_term = self.log.term_at(prev_log_index);
        assert!(
            prev_log_term.is_some(),
            "no term at prev {prev_log_index} for {peer}"
        );
        let entries = self.bounded_entries(next);
        let sent_last = entries.last().map_or(prev_log_index, |e| e.index);
        let msg = self.message_to(
            peer,
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term: prev_log_term.unwrap_or(0),
                entries,
                leader_commit: self.commit_index,
                read_round: self.reads.read_round,
                check: self.digests.local,
            },
        );
        let now_ms = self.now_ms;
        if let Some(pr) = self.progress.get_mut(&peer) {
            pr.sent_entries(sent_last, now_ms);
        }
        // §10.2.1: the leader's own entries may still be in flight to its disk.
        self.messages.push(msg);
        true
    }

    /// Entries from `from`, at most `max_entries_per_append` and `max_bytes_per_append`
    /// bytes, but always at least one.
    fn bounded_entries(&self, from: Index) -> Vec<Entry> {
        let mut bytes = 0;
        let mut out = Vec::new();
        for e in self
            .log
            .entries_from(from)
            .iter()
            .take(self.config.max_entries_per_append)
        {
            bytes += e.size_bytes();
            if !out.is_empty() && bytes > self.config.max_bytes_per_append {
                break;
            }
            out.push(e.clone());
        }
        out
    }

    /// A heartbeat: an empty AppendEntries at `match_index`, which the follower is
    /// known to hold, so it is never rejected and commits at most up to what matches.
    pub(super) fn send_heartbeat(&mut self, peer: NodeId) {
        let Some(pr) = self.progress.get(&peer) else {
            return;
        };
        // A match below the base (the follower is being sent the snapshot): beat at
        // the base instead. The follower may reject it, which the leader ignores while
        // the transfer runs; it still keeps the follower from starting an election.
        let (prev_log_index, prev_log_term) = match self.log.term_at(pr.match_index) {
            Some(term) => (pr.match_index, term),
            None => (self.log.base().index, self.log.base().term),
        };
        let body = MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries: Vec::new(),
            leader_commit: self.commit_index,
            read_round: self.reads.read_round,
            check: self.digests.local,
        };
        let msg = self.message_to(peer, body);
        let now_ms = self.now_ms;
        if let Some(pr) = self.progress.get_mut(&peer) {
            pr.last_sent_ms = now_ms;
        }
        self.messages.push(msg);
    }

    /// Leader tick: for each follower, resend what looks lost, then send a heartbeat
    /// if nothing went to it for a heartbeat interval.
    pub(super) fn tick_heartbeats(&mut self) {
        let interval = self.config.heartbeat_interval_ms;
        let now_ms = self.now_ms;
        for peer in self.peers() {
            let Some(pr) = self.progress.get_mut(&peer) else {
                continue;
            };
            if pr
                .retransmit_due_ms(interval)
                .is_some_and(|due| now_ms >= due)
            {
                pr.retransmit(now_ms);
                self.send_append(peer);
            }
            let heartbeat_due = self
                .progress
                .get(&peer)
                .is_some_and(|pr| now_ms >= pr.last_sent_ms + interval);
            if heartbeat_due && !self.send_append(peer) {
                self.send_heartbeat(peer);
            }
        }
    }

    /// Leader: when `tick` next has something to do for some follower.
    pub(super) fn next_leader_tick_ms(&self) -> u64 {
        let interval = self.config.heartbeat_interval_ms;
        let due = |pr: &super::progress::Progress| {
            let heartbeat = pr.last_sent_ms + interval;
            pr.retransmit_due_ms(interval)
                .map_or(heartbeat, |r| r.min(heartbeat))
        };
        self.progress
            .values()
            .map(due)
            .min()
            .unwrap_or(self.now_ms + interval)
    }

    /// Leader: the highest index a majority holds, itself counted only up to its
    /// durable index, becomes committed if it is of the current term (§5.4.2, Figure 8:
    /// an older-term entry is committed only indirectly).
    pub(super) fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        // Only voters of the latest configuration count (thesis §4.1), the leader
        // only while it is one of them.
        let voters = &self.membership().voters;
        let learners_count = self.config.injected_bug == Some(InjectedBug::LearnersCountInCommit);
        let mut matched: Vec<Index> = self
            .progress
            .iter()
            .filter(|(id, _)| learners_count || voters.contains(id))
            .map(|(_, pr)| pr.match_index)
            .collect();
        if self.is_voter() {
            matched.push(self.log.durable_index());
        }
        matched.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&quorum_index) = matched.get(self.quorum() - 1) else {
            return;
        };
        if quorum_index <= self.commit_index
            || self.log.term_at(quorum_index) != Some(self.current_term)
        {
            return;
        }
        self.commit_index = quorum_index;
        // §6.4 step 1: reads held for the first commit of this term may now proceed.
        self.release_held_reads();
        self.membership_committed();
    }

    /// A valid AppendEntries or InstallSnapshot of the current term came from `leader`:
    /// follow it (a (pre-)candidate of this term steps down, §5.2), note when it was
    /// heard (the pre-vote lease) and push the election deadline back. Returns false,
    /// reporting a peer fault, if another member leads this term (we, or the leader we
    /// know): two leaders in one term break Election Safety (§5.2), so the message is
    /// from a broken peer and is dropped.
    pub(super) fn follow_leader_of_current_term(&mut self, leader: NodeId) -> bool {
        let known = if self.role == Role::Leader {
            Some(self.config.id)
        } else {
            self.leader
        };
        if let Some(other) = known.filter(|&l| l != leader) {
            let what = format!("leads term {} which n{other} leads", self.current_term);
            self.peer_fault(leader, self.current_term, what);
            return false;
        }
        if matches!(self.role, Role::Candidate | Role::PreCandidate) {
            self.become_follower(self.current_term, Some(leader));
        }
        self.leader = Some(leader);
        self.leader_heard_ms = self.now_ms;
        self.reset_election_deadline();
        true
    }

    /// Follower side of AppendEntries of the current term (§5.3).
    pub(super) fn handle_append_entries(&mut self, msg: Message) {
        let (from, term) = (msg.from, msg.term);
        let MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            read_round,
            ..
        } = msg.body
        else {
            return;
        };
        if let Err(why) = well_formed(prev_log_index, prev_log_term, term, &entries) {
            self.peer_fault(from, term, format!("AppendEntries {why}"));
            return;
        }
        if !self.follow_leader_of_current_term(from) {
            return;
        }
        let covered = entries.last().map_or(prev_log_index, |e| e.index);
        let (prev_log_index, prev_log_term, entries) =
            match self.skip_compacted(prev_log_index, prev_log_term, entries) {
                Skipped::Rebased(prev_index, prev_term, rest) => (prev_index, prev_term, rest),
                Skipped::Covered => {
                    // Everything it carries is at or below our base: committed here.
                    let body = MessageBody::AppendEntriesResponse {
                        success: true,
                        match_index: covered,
                        conflict: None,
                        read_round,
                        check: self.digests.local,
                    };
                    let reply = self.message_to(from, body);
                    self.send_durable(reply);
                    return;
                }
                Skipped::Conflict(why) => {
                    self.peer_fault(from, term, format!("AppendEntries {why}"));
                    return;
                }
            };
        let prev = LogPosition {
            term: prev_log_term,
            index: prev_log_index,
        };
        let body = match self.log.term_at(prev_log_index) {
            Some(t) if t == prev_log_term => {
                let checked = self.check_no_committed_conflict(&entries).and_then(|()| {
                    self.check_no_installing_conflict(prev, &entries, leader_commit)
                });
                if let Err(why) = checked {
                    self.peer_fault(from, term, format!("AppendEntries {why}"));
                    return;
                }
                let match_index = self.accept_entries(prev, entries, leader_commit);
                MessageBody::AppendEntriesResponse {
                    success: true,
                    match_index,
                    conflict: None,
                    read_round,
                    check: self.digests.local,
                }
            }
            _ => MessageBody::AppendEntriesResponse {
                success: false,
                match_index: prev_log_index,
                conflict: Some(self.conflict_hint(prev_log_index)),
                read_round,
                check: self.digests.local,
            },
        };
        let reply = self.message_to(from, body);
        self.send_durable(reply);
    }

    /// An AppendEntries whose `prev` is below our snapshot base: the entries up to the
    /// base are committed here, and committed prefixes agree (§5.4), so they match.
    /// Returns the message re-based on our base, or says that it ends before the base
    /// (an old message: all of it is committed here), or that its entry at the base
    /// disagrees with the committed base (impossible from a correct leader).
    fn skip_compacted(
        &self,
        prev_log_index: Index,
        prev_log_term: Term,
        mut entries: Vec<Entry>,
    ) -> Skipped {
        let base = self.log.base();
        if prev_log_index >= base.index {
            return Skipped::Rebased(prev_log_index, prev_log_term, entries);
        }
        let Some(k) = entries.iter().position(|e| e.index == base.index) else {
            return Skipped::Covered;
        };
        if entries[k].term != base.term {
            return Skipped::Conflict(format!(
                "has term {} at index {}, but the committed entry there has term {}",
                entries[k].term, base.index, base.term
            ));
        }
        let rest = entries.split_off(k + 1);
        Skipped::Rebased(base.index, base.term, rest)
    }

    /// Err if storing `entries` (whose `prev` matches) would replace a committed entry
    /// (§5.4: committed entries are never overwritten; only a broken leader asks).
    fn check_no_committed_conflict(&self, entries: &[Entry]) -> Result<(), String> {
        let conflict = entries
            .iter()
            .find(|e| self.log.term_at(e.index).is_some_and(|t| t != e.term));
        match conflict {
            Some(e) if e.index <= self.commit_index => Err(format!(
                "has term {} at index {}, which conflicts with the committed entry there \
                 (commit index {})",
                e.term, e.index, self.commit_index
            )),
            _ => Ok(()),
        }
    }

    /// The log matches at `prev`: store `entries`, replacing a suffix only from the
    /// first real term conflict, so a stale or duplicated message never truncates
    /// matching entries. Returns the last index now known to match the leader.
    /// Precondition: `entries` follow `prev` (checked by `well_formed`) and replace
    /// no committed entry (`check_no_committed_conflict`).
    fn accept_entries(
        &mut self,
        prev: LogPosition,
        entries: Vec<Entry>,
        leader_commit: Index,
    ) -> Index {
        let match_index = entries.last().map_or(prev.index, |e| e.index);
        let first_new = entries
            .iter()
            .position(|e| self.log.term_at(e.index) != Some(e.term));
        if let Some(k) = first_new {
            let at = entries[k].index;
            if at <= self.log.last_index() {
                assert!(
                    at > self.commit_index,
                    "entry {at} conflicts with committed entry {}: not checked first",
                    self.commit_index
                );
                self.log.truncate_from(at);
            }
            for e in entries.into_iter().skip(k) {
                self.log.append(e);
            }
        }
        // Only the prefix verified by this message is known to match the leader.
        let new_commit = leader_commit.min(match_index);
        if new_commit > self.commit_index {
            self.commit_index = new_commit;
        }
        match_index
    }

    /// Where the leader should retry after a mismatch at `prev_log_index` (§5.3).
    fn conflict_hint(&self, prev_log_index: Index) -> ConflictHint {
        // A prev below our base cannot mismatch (the base is committed, and committed
        // prefixes agree), so term_at is None here only past the end of the log.
        match self.log.term_at(prev_log_index) {
            Some(term) if prev_log_index > self.log.base().index => ConflictHint {
                term: Some(term),
                first_index: self.log.first_index_of_term_at(prev_log_index),
            },
            _ => ConflictHint {
                term: None,
                first_index: self.log.last_index() + 1,
            },
        }
    }

    /// Leader: an answer to one of its AppendEntries of this term.
    pub(super) fn handle_append_entries_response(
        &mut self,
        peer: NodeId,
        success: bool,
        match_index: Index,
        conflict: Option<ConflictHint>,
        read_round: u64,
    ) {
        if self.role != Role::Leader {
            return; // stale
        }
        if match_index > self.log.last_index() {
            let what = format!(
                "AppendEntriesResponse claims index {match_index}, past this leader's last \
                 index {}",
                self.log.last_index()
            );
            self.peer_fault(peer, self.current_term, what);
            return;
        }
        let now_ms = self.now_ms;
        let Some(pr) = self.progress.get_mut(&peer) else {
            return;
        };
        // Any answer in this term proves the peer still followed us when it got the
        // message, rejection or not (§6.4 step 3).
        pr.acked_read_round = pr.acked_read_round.max(read_round);
        pr.last_heard_ms = pr.last_heard_ms.max(now_ms);
        if success {
            if pr.acked(match_index, now_ms) {
                self.maybe_commit();
            }
        } else {
            self.handle_rejection(peer, match_index, conflict);
        }
        // Freed window: send what waits at once (batching).
        while self.send_append(peer) {}
        if success {
            self.send_timeout_now_if_caught_up(peer);
        }
        self.confirm_reads();
    }

    /// A follower's log did not match at `rejected`: back up a whole term at a time
    /// (etcd's `findConflictByTerm`) and probe again. Stale rejections are ignored.
    fn handle_rejection(&mut self, peer: NodeId, rejected: Index, hint: Option<ConflictHint>) {
        let now_ms = self.now_ms;
        let Some(pr) = self.progress.get(&peer) else {
            return;
        };
        // A rejection during a snapshot transfer answers an AppendEntries sent before it.
        let stale = rejected <= pr.match_index
            || pr.state == ProgressState::Snapshot
            || (pr.state == ProgressState::Probe && rejected + 1 != pr.next_index);
        if stale {
            return;
        }
        let candidate = match hint {
            Some(ConflictHint {
                term: Some(term),
                first_index,
            }) => self
                .log
                .last_index_of_term(term, rejected)
                .map_or(first_index, |i| i + 1),
            Some(ConflictHint {
                term: None,
                first_index,
            }) => first_index,
            None => rejected,
        };
        let next = candidate.clamp(pr.match_index + 1, rejected);
        if let Some(pr) = self.progress.get_mut(&peer) {
            pr.become_probe(next, now_ms);
        }
    }
}

/// What `skip_compacted` made of an AppendEntries.
enum Skipped {
    /// The message re-based at (`prev_index`, `prev_term`) with the entries after it.
    Rebased(Index, Term, Vec<Entry>),
    /// It ends at or before our base.
    Covered,
    /// Its entry at our base has another term: impossible from a correct leader.
    Conflict(String),
}

/// An AppendEntries is well formed if `prev` is a possible index, its entries follow
/// `prev` consecutively with non-decreasing terms no newer than the message's term.
/// Checked because it came off the network; every index is checked before `+ 1`.
fn well_formed(
    prev_index: Index,
    prev_term: Term,
    msg_term: Term,
    entries: &[Entry],
) -> Result<(), String> {
    if prev_index > MAX_INDEX {
        return Err(format!("has prev index {prev_index}, above {MAX_INDEX}"));
    }
    if prev_term > msg_term {
        return Err(format!(
            "has prev term {prev_term} above its term {msg_term}"
        ));
    }
    let mut prev = LogPosition {
        term: prev_term,
        index: prev_index,
    };
    for e in entries {
        let next = prev.index.checked_add(1).filter(|&n| n <= MAX_INDEX);
        if next != Some(e.index) {
            return Err(format!("has entry {} after index {}", e.index, prev.index));
        }
        if e.term < prev.term || e.term > msg_term {
            return Err(format!(
                "has entry {} of term {} after term {} (message term {msg_term})",
                e.index, e.term, prev.term
            ));
        }
        prev = LogPosition {
            term: e.term,
            index: e.index,
        };
    }
    Ok(())
}
