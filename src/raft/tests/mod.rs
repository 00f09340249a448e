//! Unit tests of the consensus core, openraft style: build a state, feed one input,
//! compare the exact outputs. Helpers here; scenarios by concern in the submodules.

mod check_quorum;
mod cluster;
mod election;
mod follower_read;
mod forward;
mod fuzz;
mod membership;
mod peer_fault;
mod persistence;
mod pre_vote;
mod read_index;
mod replication;
mod snapshot;
mod stale_term;
mod transfer;

use super::*;

/// Voters `1..=n`; small timeouts, 3 entries per append and 2 in flight, so tests
/// can reach the limits. Pre-vote is off, so a timeout campaigns at once (§5.2) as
/// these tests expect; `pre_vote.rs` turns it on.
pub(super) fn config(id: NodeId, n: u64) -> Config {
    Config {
        election_timeout_min_ms: 100,
        election_timeout_max_ms: 200,
        heartbeat_interval_ms: 50,
        max_entries_per_append: 3,
        max_bytes_per_append: 1 << 20,
        max_inflight_appends: 2,
        pre_vote: false,
        ..Config::new(id, (1..=n).collect())
    }
}

/// An entry whose payload names its position, so different entries differ.
pub(super) fn ent(term: Term, index: Index) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Command(vec![term as u8, index as u8]),
    }
}

/// A log with the given terms at indexes 1, 2, ...
pub(super) fn log_of(terms: &[Term]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(k, &t)| ent(t, k as Index + 1))
        .collect()
}

/// A follower recovered with `terms` as its (durable) log, in `term`, at time 0.
pub(super) fn node(id: NodeId, n: u64, terms: &[Term], term: Term) -> Raft {
    node_with(config(id, n), terms, term)
}

/// Like [`node`], with the given configuration.
pub(super) fn node_with(cfg: Config, terms: &[Term], term: Term) -> Raft {
    let initial = InitialState {
        hard_state: HardState {
            current_term: term,
            voted_for: None,
        },
        log_base: LogPosition::default(),
        entries: log_of(terms),
        membership: None,
    };
    Raft::new(cfg, initial, 7, 0)
}

/// Takes every persist batch, confirms it, and returns the messages it released.
pub(super) fn persist_all(r: &mut Raft) -> Vec<Message> {
    let mut out = Vec::new();
    while let Some(batch) = r.take_persist_batch() {
        let now = r.now_ms;
        r.on_persisted(batch.token, now);
        out.extend(batch.messages);
        r.check_invariants();
    }
    out
}

/// Node 1 of `n`, recovered with `terms` in `term`, elected leader of `term + 1` with
/// votes from 2 and 3; its vote batch is persisted, its outputs discarded.
pub(super) fn leader(n: u64, terms: &[Term], term: Term) -> Raft {
    let mut r = node(1, n, terms, term);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    persist_all(&mut r);
    for peer in 2..=n.min(3) {
        if r.role() != Role::Leader {
            r.step(
                msg(
                    peer,
                    1,
                    term + 1,
                    MessageBody::RequestVoteResponse { vote_granted: true },
                ),
                deadline,
            );
        }
    }
    assert_eq!(r.role(), Role::Leader);
    r.take_messages();
    r.check_invariants();
    r
}

/// A message.
pub(super) fn msg(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

/// An AppendEntries with read round 0.
pub(super) fn append(
    from: NodeId,
    to: NodeId,
    term: Term,
    prev: (Term, Index),
    entries: Vec<Entry>,
    leader_commit: Index,
) -> Message {
    let body = MessageBody::AppendEntries {
        prev_log_index: prev.1,
        prev_log_term: prev.0,
        entries,
        leader_commit,
        read_round: 0,
        check: None,
    };
    msg(from, to, term, body)
}

/// A successful AppendEntriesResponse.
pub(super) fn ack(from: NodeId, term: Term, match_index: Index, read_round: u64) -> Message {
    let body = MessageBody::AppendEntriesResponse {
        success: true,
        match_index,
        conflict: None,
        read_round,
        check: None,
    };
    msg(from, 1, term, body)
}

/// Follower `from`'s rejection of an AppendEntries at `match_index` in `term`, from a
/// log that is empty: it asks the leader to start at index 1.
pub(super) fn reject_from_empty(from: NodeId, term: Term, match_index: Index) -> Message {
    let body = MessageBody::AppendEntriesResponse {
        success: false,
        match_index,
        conflict: Some(ConflictHint {
            term: None,
            first_index: 1,
        }),
        read_round: 0,
        check: None,
    };
    msg(from, 1, term, body)
}

/// Steps a message and checks invariants.
pub(super) fn step(r: &mut Raft, m: Message) {
    let now = r.now_ms;
    r.step(m, now);
    r.check_invariants();
}
