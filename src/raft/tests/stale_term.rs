//! Answers to requests of an older term (§5.1, issue 13 critical 1): a `StaleTerm`
//! notice that says only "a newer term exists", so that a restarted leader in that
//! newer term takes no answer to its previous incarnation's messages for an answer to
//! its own: no read round, no contact credit, no snapshot restart, no vote.

use super::*;

fn stale(from: NodeId, to: NodeId, term: Term) -> Message {
    msg(from, to, term, MessageBody::StaleTerm)
}

/// Requests of term 2 that follower 2, in term 3, receives from 1.
fn old_requests() -> Vec<Message> {
    let append = MessageBody::AppendEntries {
        prev_log_index: 1,
        prev_log_term: 1,
        entries: vec![],
        leader_commit: 1,
        read_round: 1000,
        check: None,
    };
    let vote = MessageBody::RequestVote {
        last_log_index: 1,
        last_log_term: 1,
        leadership_transfer: false,
    };
    let snapshot = MessageBody::InstallSnapshot {
        last: LogPosition { term: 1, index: 1 },
        membership: Membership::bootstrap([1, 2, 3]),
        offset: 4096,
        data: vec![1, 2, 3],
        done: false,
    };
    [append, vote, snapshot]
        .into_iter()
        .map(|body| msg(1, 2, 2, body))
        .collect()
}

#[test]
fn a_request_of_an_older_term_is_answered_by_a_stale_term_notice_only() {
    for request in old_requests() {
        let mut r = node(2, 3, &[1], 3);
        step(&mut r, request.clone());
        let mut sent = r.take_messages();
        sent.extend(persist_all(&mut r));
        assert_eq!(sent, vec![stale(2, 1, 3)], "answer to {request:?}");
        assert_eq!((r.term(), r.role()), (3, Role::Follower));
    }
}

/// A leader of term 2 with its no-op committed; 2 acknowledged round 0 at `t`.
fn leader_with_a_read_pending() -> Raft {
    let mut r = leader(3, &[1], 1);
    persist_all(&mut r);
    step(&mut r, ack(2, 2, 2, 0));
    r.read_index(7, r.now_ms).expect("leader");
    r.take_messages();
    r
}

#[test]
fn a_stale_term_notice_in_the_leaders_own_term_confirms_no_read() {
    let mut r = leader_with_a_read_pending();
    step(&mut r, stale(2, 1, 2));
    step(&mut r, stale(3, 1, 2));
    assert_eq!(r.take_read_states(), vec![], "confirmed by an echo");
    assert_eq!((r.role(), r.term()), (Role::Leader, 2));
    // A real answer of the round still confirms it.
    step(&mut r, ack(3, 2, 0, 1));
    assert_eq!(r.take_read_states().len(), 1);
}

#[test]
fn a_stale_term_notice_gives_no_check_quorum_credit() {
    let mut r = leader_with_a_read_pending();
    let elected = r.now_ms;
    // Followers last heard at the election (the test config's timeout is 200 ms).
    r.step(stale(2, 1, 2), elected + 150);
    r.step(stale(3, 1, 2), elected + 150);
    r.tick(elected + 200);
    r.check_invariants();
    assert_eq!(r.role(), Role::Follower, "kept in office by echoes");
}

#[test]
fn a_stale_term_notice_is_no_vote() {
    let mut r = node(1, 3, &[1], 1);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    persist_all(&mut r);
    assert_eq!((r.role(), r.term()), (Role::Candidate, 2));
    step(&mut r, stale(2, 1, 2));
    step(&mut r, stale(3, 1, 2));
    assert_eq!(r.role(), Role::Candidate, "echoes counted as refusals");
    let grant = MessageBody::RequestVoteResponse { vote_granted: true };
    step(&mut r, msg(2, 1, 2, grant));
    assert_eq!(r.role(), Role::Leader, "the real grant was ignored");
}

#[test]
fn a_stale_term_notice_does_not_restart_a_snapshot_transfer() {
    let mut r = leader(3, &[1, 1, 1, 1], 1);
    persist_all(&mut r);
    step(&mut r, ack(2, 2, 5, 0));
    r.take_committed(100);
    let base = LogPosition { term: 1, index: 4 };
    r.compact(base);
    r.take_messages();
    // Follower 3 has nothing: its rejection starts a transfer; it takes a chunk.
    step(&mut r, reject_from_empty(3, 2, 4));
    r.take_messages();
    let reply = MessageBody::InstallSnapshotResponse {
        last: base,
        next_offset: 10,
        done: false,
    };
    step(&mut r, msg(3, 1, 2, reply));
    assert_eq!(snapshot_offsets(r.take_messages()), vec![10]);
    step(&mut r, stale(3, 1, 2));
    assert_eq!(r.take_messages(), vec![], "an echo moved the transfer");
    // The chunk at 10 is still the one in flight: a retransmission resends it.
    r.tick(r.now_ms + 120);
    let resent = snapshot_offsets(r.take_messages());
    assert_eq!(resent, vec![10], "the transfer started over");
}

/// Offsets of the InstallSnapshot chunks to 3 among `sent`.
fn snapshot_offsets(sent: Vec<Message>) -> Vec<u64> {
    sent.iter()
        .filter_map(|m| match m.body {
            MessageBody::InstallSnapshot { offset, .. } if m.to == 3 => Some(offset),
            _ => None,
        })
        .collect()
}

#[test]
fn a_stale_term_notice_of_a_newer_term_deposes_the_leader() {
    let mut r = leader_with_a_read_pending();
    step(&mut r, stale(2, 1, 5));
    assert_eq!((r.role(), r.term(), r.leader()), (Role::Follower, 5, None));
    assert_eq!(r.take_read_states().len(), 1, "the pending read failed");
}
