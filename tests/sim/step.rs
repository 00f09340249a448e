//! One step's aftermath: collecting a member's outputs in the order the durability
//! contract asks for — persist batches to the writer, immediate messages to the
//! network, committed entries to the state machine, released reads to the client
//! history — and checking what the step changed.

use raftkv::raft::{ForwardAnswer, Index, Raft, Role};
use rand::Rng;

use super::cluster::Cluster;
use super::invariants::{check_send, vouched_term};
use super::network::Brief;
use super::trace::HardStateBrief;

impl Cluster {
    /// Collects member `i`'s outputs and checks what its last step changed.
    pub(super) fn drain(&mut self, i: usize) {
        let now = self.now_ms;
        let m = &mut self.members[i];
        let id = m.id;
        let Some(raft) = m.raft.as_mut() else {
            return;
        };
        serve_forwarded(raft, now);
        while m.pending_install.is_none() {
            let Some(batch) = raft.take_persist_batch() else {
                break;
            };
            self.checker.check_batch(
                id,
                raft.term(),
                &mut m.shadow,
                &mut m.last_hard_state,
                &batch,
            );
            let latency_ms = self
                .rng
                .gen_range(self.opts.write_min_ms..=self.opts.write_max_ms);
            self.trace.record(
                now,
                format_args!(
                    "n{id} persist #{} {} entries={}{} msgs={} +{latency_ms}ms",
                    batch.token.seq,
                    HardStateBrief(batch.hard_state),
                    batch.entries.len(),
                    batch
                        .entries
                        .first()
                        .map_or(String::new(), |e| format!("@{}", e.index)),
                    batch.messages.len()
                ),
            );
            m.vouched.push_back(
                batch
                    .messages
                    .iter()
                    .map(|msg| vouched_term(&m.shadow, msg))
                    .collect(),
            );
            m.writer.submit(batch, now, latency_ms);
        }
        for mut msg in raft.take_messages() {
            assert_eq!(msg.from, id, "n{id} sends a message from n{}", msg.from);
            let max = self.opts.snapshot_chunk_bytes;
            if !super::snapshots::fill_chunk(&m.store, &mut m.snapshot_cache, &mut msg, max) {
                continue; // the snapshot changed since Raft asked: dropped, Raft retries
            }
            self.trace.record(now, format_args!("send {}", Brief(&msg)));
            check_send(id, &m.store, vouched_term(&m.shadow, &msg), &msg);
            self.net.send(msg, now, &mut self.rng);
        }
        for outcome in raft.take_forward_outcomes() {
            let data = m.forwarded.remove(&outcome.id);
            let data =
                data.unwrap_or_else(|| panic!("n{id}: outcome of unknown forward {outcome:?}"));
            self.trace
                .record(now, format_args!("n{id} forward {outcome:?}"));
            let stats = &mut self.history.stats;
            match outcome.answer {
                // Like the runtime: the follower answers once it applies the position.
                Some(ForwardAnswer::Appended(pos)) if pos.index > m.applied => {
                    stats.forwards_appended += 1;
                    self.history.proposed(id, &data, pos);
                }
                Some(ForwardAnswer::Appended(pos)) => {
                    stats.forwards_appended += 1;
                    self.history.proposed_too_late(id, &data, pos);
                }
                Some(ForwardAnswer::NotLeader | ForwardAnswer::Refused { .. }) => {
                    stats.forwards_refused += 1;
                }
                None => stats.forwards_unknown += 1,
            }
        }
        let faults = raft.take_peer_faults();
        assert!(
            faults.is_empty(),
            "n{id} reports a fault of a correct peer: {faults:?}"
        );
        self.observe_commit(i);
        self.apply(i);
        self.maybe_compact(i);
        self.check_member(i);
    }
}

/// The leader's runtime: proposes what followers forwarded, with a client's
/// backpressure, and answers each.
fn serve_forwarded(raft: &mut Raft, now: u64) {
    for p in raft.take_forwarded_proposals() {
        let uncommitted = raft.last_position().index - raft.commit_index();
        let answer = if uncommitted >= super::run::MAX_UNCOMMITTED {
            ForwardAnswer::Refused {
                reason: format!("{uncommitted} uncommitted"),
                retry: true,
            }
        } else {
            match raft.propose(p.data, now) {
                Ok(pos) => ForwardAnswer::Appended(pos),
                Err(_) => ForwardAnswer::NotLeader,
            }
        };
        raft.answer_forwarded(p.from, p.id, answer);
    }
}

impl Cluster {
    fn observe_commit(&mut self, i: usize) {
        let m = &mut self.members[i];
        let Some(raft) = m.raft.as_ref() else {
            return;
        };
        let commit = raft.commit_index();
        assert!(
            commit >= m.commit_index,
            "n{}: commit index went back from {} to {commit} within one incarnation",
            m.id,
            m.commit_index
        );
        m.commit_index = commit;
        if commit > m.checked_commit {
            let fresh = raft.entries_from(m.checked_commit + 1);
            let count = (commit - m.checked_commit) as usize;
            assert!(
                fresh.len() >= count,
                "n{}: commit index {commit} beyond its log",
                m.id
            );
            self.checker
                .observe_commit(m.id, raft.term(), &fresh[..count]);
            m.checked_commit = commit;
        }
    }

    fn apply(&mut self, i: usize) {
        let now = self.now_ms;
        let m = &mut self.members[i];
        let id = m.id;
        let Some(raft) = m.raft.as_mut() else {
            return;
        };
        loop {
            let entries = raft.take_committed(64);
            if entries.is_empty() {
                break;
            }
            for entry in &entries {
                assert_eq!(
                    entry.index,
                    m.applied + 1,
                    "n{id}: applied entries are not consecutive"
                );
                assert!(
                    entry.index <= m.commit_index,
                    "n{id}: applies {} beyond commit",
                    entry.index
                );
                self.checker.check_applied(id, entry);
                m.applied = entry.index;
                super::invariants::apply_digest(&mut m.digest, entry);
                self.checker.check_digest(id, entry.index, m.digest.value());
                if let Some(fate) = self.history.on_applied(id, entry) {
                    self.trace.record(
                        now,
                        format_args!("n{id} proposal at {} {fate:?}", entry.index),
                    );
                }
            }
        }
        // A leader serves at most its own commit index; a follower serves at the
        // leader's, which it may not have learned yet (it waits to apply it).
        let limit = if raft.role() == Role::Leader {
            m.commit_index
        } else {
            self.checker.committed().len() as Index
        };
        for state in raft.take_read_states() {
            self.trace.record(
                now,
                format_args!("n{id} read {} -> {:?}", state.read_id, state.result),
            );
            self.history.on_read_state(id, &state, limit);
        }
    }

    fn check_member(&mut self, i: usize) {
        let now = self.now_ms;
        let m = &mut self.members[i];
        let Some(raft) = m.raft.as_ref() else {
            return;
        };
        let last = raft.last_position();
        let shadow_last = m.shadow.last().map_or(0, |s| s.term);
        // While a snapshot install waits for the writer, no batch is taken, so the
        // shadow (built from batches) may trail the log.
        let settled = m.pending_install.is_none();
        assert!(
            !settled || (last.index, last.term) == (m.shadow.len() as Index, shadow_last),
            "n{}: the log {:?} differs from what its persist batches described: {:?}",
            m.id,
            (last.index, last.term),
            (m.shadow.len(), shadow_last)
        );
        if raft.role() == Role::Leader && raft.term() > m.led_term {
            m.led_term = raft.term();
            self.trace
                .record(now, format_args!("n{} leads term {}", m.id, m.led_term));
            // Below the base, the store's entries stand for the snapshot's contents.
            let base = raft.log_base().index;
            let mut log = m.store.entries[..base as usize].to_vec();
            log.extend_from_slice(raft.entries_from(base + 1));
            self.checker.observe_leader(m.id, m.led_term, &log);
        }
        raft.check_invariants();
    }
}
