//! Writes forwarded by a follower (`forward.rs`): sent to the leader it follows,
//! proposed by the leader's runtime, answered with the position; unknown on a change
//! of leader or a timeout; bounded on both sides; never sent before the term is
//! durable.

use super::*;

/// Follower 2 of 3 in term 2, following leader 1, with [1, 2] committed.
fn follower() -> Raft {
    let mut r = node(2, 3, &[1, 2], 2);
    step(&mut r, append(1, 2, 2, (2, 2), vec![], 2));
    persist_all(&mut r);
    r.take_messages();
    r
}

/// The forwards among `messages`: (to, id, data).
fn forwards(messages: &[Message]) -> Vec<(NodeId, u64, Vec<u8>)> {
    messages
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::ForwardProposal { id, data } => Some((m.to, *id, data.clone())),
            _ => None,
        })
        .collect()
}

/// The forward answers among `messages`: (to, id, answer).
fn answers(messages: &[Message]) -> Vec<(NodeId, u64, ForwardAnswer)> {
    messages
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::ForwardProposalResponse { id, answer } => {
                Some((m.to, *id, answer.clone()))
            }
            _ => None,
        })
        .collect()
}

fn answer_from(leader: NodeId, term: Term, id: u64, answer: ForwardAnswer) -> Message {
    msg(
        leader,
        2,
        term,
        MessageBody::ForwardProposalResponse { id, answer },
    )
}

fn unknown(id: u64) -> ForwardOutcome {
    ForwardOutcome { id, answer: None }
}

#[test]
fn a_write_on_a_follower_goes_to_the_leader_and_comes_back_with_its_position() {
    let mut f = follower();
    let id = f
        .forward(b"put".to_vec(), 0)
        .expect("a follower with a leader");
    let sent = forwards(&f.take_messages());
    assert_eq!(sent, vec![(1, id, b"put".to_vec())]);

    // The leader hands it to its runtime instead of appending it itself.
    let mut l = leader(3, &[1], 1);
    persist_all(&mut l);
    let body = MessageBody::ForwardProposal {
        id,
        data: b"put".to_vec(),
    };
    step(&mut l, msg(2, 1, 2, body));
    let last = l.last_position();
    let taken = l.take_forwarded_proposals();
    assert_eq!(
        taken,
        vec![ForwardedProposal {
            from: 2,
            id,
            data: b"put".to_vec()
        }]
    );
    assert_eq!(l.last_position(), last, "the core appends nothing itself");
    let pos = l.propose(taken[0].data.clone(), 0).expect("leader");
    l.answer_forwarded(2, id, ForwardAnswer::Appended(pos));
    let back = answers(&l.take_messages());
    assert_eq!(back, vec![(2, id, ForwardAnswer::Appended(pos))]);
    assert_eq!(l.take_forwarded_proposals(), vec![]);

    step(&mut f, answer_from(1, 2, id, ForwardAnswer::Appended(pos)));
    let outcome = ForwardOutcome {
        id,
        answer: Some(ForwardAnswer::Appended(pos)),
    };
    assert_eq!(f.take_forward_outcomes(), vec![outcome]);
    step(&mut f, answer_from(1, 2, id, ForwardAnswer::Appended(pos)));
    assert_eq!(f.take_forward_outcomes(), vec![], "a duplicate is ignored");
}

#[test]
fn a_member_with_no_leader_refuses_at_once() {
    let mut r = node(2, 3, &[1], 1);
    assert_eq!(r.forward(vec![1], 0), Err(ForwardRefused::NoLeader));
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    assert_eq!(r.role(), Role::Candidate);
    assert_eq!(r.forward(vec![1], 0), Err(ForwardRefused::NoLeader));
    assert_eq!(forwards(&r.take_messages()), vec![]);
    let mut l = leader(3, &[1], 1);
    assert_eq!(
        l.forward(vec![1], 0),
        Err(ForwardRefused::NoLeader),
        "a leader proposes, it does not forward"
    );
}

#[test]
fn a_learner_forwards_too() {
    // Member 4 joins an existing cluster: it votes in nothing it knows of.
    let mut r = node_with(Config::new(4, vec![]), &[], 0);
    step(&mut r, append(1, 4, 2, (0, 0), vec![], 0));
    persist_all(&mut r);
    r.take_messages();
    let id = r
        .forward(vec![7], 0)
        .expect("a learner that knows the leader");
    assert_eq!(forwards(&r.take_messages()), vec![(1, id, vec![7])]);
}

#[test]
fn a_change_of_leader_or_a_timeout_makes_the_outcome_unknown() {
    let mut f = follower();
    let a = f.forward(vec![1], 0).expect("follower");
    f.take_messages();
    // Leader 3 of term 3: the forward went to leader 1 of term 2.
    step(&mut f, append(3, 2, 3, (2, 2), vec![], 2));
    assert_eq!(f.take_forward_outcomes(), vec![unknown(a)]);
    persist_all(&mut f);
    // A late answer from the old leader changes nothing.
    let pos = LogPosition { term: 2, index: 3 };
    f.step(answer_from(1, 2, a, ForwardAnswer::Appended(pos)), 0);
    assert_eq!(f.take_forward_outcomes(), vec![]);

    let b = f.forward(vec![2], 0).expect("follower of 3");
    let timeout = f.config.election_timeout_max_ms * FORWARD_TIMEOUT_ELECTIONS;
    f.step(append(3, 2, 3, (2, 2), vec![], 2), timeout - 1);
    assert_eq!(f.take_forward_outcomes(), vec![], "not yet");
    f.step(append(3, 2, 3, (2, 2), vec![], 2), timeout);
    assert_eq!(f.take_forward_outcomes(), vec![unknown(b)]);

    let c = f.forward(vec![3], timeout).expect("follower of 3");
    let deadline = f.next_tick_ms();
    f.tick(deadline);
    assert_eq!(f.role(), Role::Candidate);
    assert_eq!(f.take_forward_outcomes(), vec![unknown(c)]);
    f.check_invariants();
}

#[test]
fn forwards_past_the_bound_are_refused_until_answers_make_room() {
    let mut f = follower();
    let ids: Vec<u64> = (0..MAX_FORWARDED_PROPOSALS)
        .map(|_| f.forward(vec![0], 0).expect("under the bound"))
        .collect();
    assert_eq!(f.forward(vec![0], 0), Err(ForwardRefused::TooMany));
    step(&mut f, answer_from(1, 2, ids[0], ForwardAnswer::NotLeader));
    assert_eq!(
        f.take_forward_outcomes(),
        vec![ForwardOutcome {
            id: ids[0],
            answer: Some(ForwardAnswer::NotLeader)
        }]
    );
    f.forward(vec![0], 0).expect("room again");
}

#[test]
fn a_member_that_does_not_lead_answers_not_leader() {
    let mut r = follower();
    let body = MessageBody::ForwardProposal {
        id: 9,
        data: vec![],
    };
    step(&mut r, msg(3, 2, 2, body));
    assert_eq!(
        answers(&r.take_messages()),
        vec![(3, 9, ForwardAnswer::NotLeader)]
    );
    assert_eq!(r.take_forwarded_proposals(), vec![]);

    // A leader that steps down before its runtime took a forward answers it too.
    let mut l = leader(3, &[1], 1);
    let body = MessageBody::ForwardProposal {
        id: 5,
        data: vec![],
    };
    step(&mut l, msg(2, 1, 2, body));
    step(&mut l, append(3, 1, 3, (0, 0), vec![], 0));
    assert_eq!(l.role(), Role::Follower);
    assert_eq!(l.take_forwarded_proposals(), vec![]);
    let all: Vec<Message> = persist_all(&mut l)
        .into_iter()
        .chain(l.take_messages())
        .collect();
    assert_eq!(answers(&all), vec![(2, 5, ForwardAnswer::NotLeader)]);
    // And a runtime that took one just before answers "not leader" whatever it says.
    let mut l = leader(3, &[1], 1);
    let body = MessageBody::ForwardProposal {
        id: 6,
        data: vec![],
    };
    step(&mut l, msg(2, 1, 2, body));
    let taken = l.take_forwarded_proposals();
    step(&mut l, append(3, 1, 3, (0, 0), vec![], 0));
    let pos = LogPosition { term: 2, index: 9 };
    l.answer_forwarded(taken[0].from, taken[0].id, ForwardAnswer::Appended(pos));
    let all: Vec<Message> = persist_all(&mut l)
        .into_iter()
        .chain(l.take_messages())
        .collect();
    assert_eq!(answers(&all), vec![(2, 6, ForwardAnswer::NotLeader)]);
}

#[test]
fn the_leader_refuses_forwards_past_its_bound() {
    let mut l = leader(3, &[1], 1);
    for id in 0..MAX_PROPOSALS_FROM_FOLLOWERS as u64 {
        let body = MessageBody::ForwardProposal { id, data: vec![] };
        l.step(msg(2, 1, 2, body), 0);
    }
    l.take_messages();
    let body = MessageBody::ForwardProposal {
        id: 99_999,
        data: vec![],
    };
    step(&mut l, msg(2, 1, 2, body));
    let back = answers(&l.take_messages());
    assert!(
        matches!(
            back.as_slice(),
            [(2, 99_999, ForwardAnswer::Refused { retry: true, .. })]
        ),
        "{back:?}"
    );
    assert_eq!(
        l.take_forwarded_proposals().len(),
        MAX_PROPOSALS_FROM_FOLLOWERS
    );
}

#[test]
fn an_impossible_answer_is_a_peer_fault() {
    let mut f = follower();
    let id = f.forward(vec![1], 0).expect("follower");
    let wrong_term = LogPosition { term: 1, index: 3 };
    step(
        &mut f,
        answer_from(1, 2, id, ForwardAnswer::Appended(wrong_term)),
    );
    let zero = LogPosition { term: 2, index: 0 };
    step(&mut f, answer_from(1, 2, id, ForwardAnswer::Appended(zero)));
    let long = ForwardAnswer::Refused {
        reason: "x".repeat(MAX_REFUSAL_BYTES + 1),
        retry: false,
    };
    step(&mut f, answer_from(1, 2, id, long));
    assert_eq!(f.take_forward_outcomes(), vec![]);
    assert_eq!(f.take_peer_faults().faults.len(), 3);
    // An answer from a member it did not forward to is ignored, not a fault.
    let pos = LogPosition { term: 2, index: 3 };
    step(&mut f, answer_from(3, 2, id, ForwardAnswer::Appended(pos)));
    assert_eq!(f.take_forward_outcomes(), vec![]);
    assert!(f.take_peer_faults().is_empty());
}

/// Item: no follower read request or forward leaves for a term that is not durable.
/// Right after adopting a new leader's term, both wait in the persist batch that
/// carries the term; once the term is durable they leave at once, even while entries
/// are still being written (they promise nothing about entries).
#[test]
fn requests_to_the_leader_wait_for_the_term_and_only_the_term() {
    let mut f = follower();
    // Leader 3 of term 3 appears; the term is not durable yet.
    step(&mut f, append(3, 2, 3, (2, 2), vec![], 2));
    f.read_index(1, 0).expect("follower of 3");
    let id = f.forward(vec![1], 0).expect("follower of 3");
    let now = f.take_messages();
    assert_eq!(forwards(&now), vec![]);
    assert!(
        !now.iter()
            .any(|m| matches!(m.body, MessageBody::ReadIndexRequest { .. })),
        "a read-index request left before term 3 was durable: {now:?}"
    );
    let batch = f.take_persist_batch().expect("the term to persist");
    assert_eq!(batch.hard_state.map(|h| h.current_term), Some(3));
    assert_eq!(forwards(&batch.messages), vec![(3, id, vec![1])]);
    let read_batch = batch.messages.iter().find_map(|m| match m.body {
        MessageBody::ReadIndexRequest { batch } => Some(batch),
        _ => None,
    });
    let read_batch = read_batch.expect("the read-index request rides with the term");
    f.on_persisted(batch.token, 0);
    let body = MessageBody::ReadIndexResponse {
        batch: read_batch,
        read_index: 2,
    };
    step(&mut f, msg(3, 2, 3, body));
    assert_eq!(f.take_read_states().len(), 1);

    // Term 3 durable, an entry being written: a forward leaves at once.
    step(&mut f, append(3, 2, 3, (2, 2), vec![ent(3, 3)], 2));
    let writing = f.take_persist_batch().expect("the entry");
    let id = f.forward(vec![2], 0).expect("follower of 3");
    f.read_index(2, 0).expect("follower of 3");
    let now = f.take_messages();
    assert_eq!(forwards(&now), vec![(3, id, vec![2])]);
    assert!(
        now.iter()
            .any(|m| matches!(m.body, MessageBody::ReadIndexRequest { .. })),
        "a read-index request waits for entries it promises nothing about: {now:?}"
    );
    f.on_persisted(writing.token, 0);
    f.check_invariants();
}

#[test]
fn a_forward_delivered_twice_is_taken_once() {
    let mut l = leader(3, &[1], 1);
    let body = MessageBody::ForwardProposal {
        id: 4,
        data: vec![1],
    };
    step(&mut l, msg(2, 1, 2, body.clone()));
    step(&mut l, msg(2, 1, 2, body.clone()));
    assert_eq!(l.take_forwarded_proposals().len(), 1);
    step(&mut l, msg(2, 1, 2, body));
    assert_eq!(
        l.take_forwarded_proposals(),
        vec![],
        "not after it was taken either"
    );
    // Another follower's forward with the same number is another write.
    let body = MessageBody::ForwardProposal {
        id: 4,
        data: vec![2],
    };
    step(&mut l, msg(3, 1, 2, body));
    assert_eq!(l.take_forwarded_proposals().len(), 1);
}

/// A leader of three (n1) that appended, persisted and answered one write forwarded by
/// n2, with the messages so far taken: the leader and the write's position.
fn leader_with_a_write_forwarded_by_2() -> (Raft, LogPosition) {
    let mut l = leader(3, &[1], 1);
    persist_all(&mut l);
    step(&mut l, ack(2, 2, 2, 0));
    step(&mut l, ack(3, 2, 2, 0));
    l.take_messages();
    let body = MessageBody::ForwardProposal {
        id: 1,
        data: vec![9],
    };
    step(&mut l, msg(2, 1, 2, body));
    let p = l.take_forwarded_proposals().remove(0);
    let pos = l.propose(p.data, 0).expect("leader");
    l.answer_forwarded(p.from, p.id, ForwardAnswer::Appended(pos));
    persist_all(&mut l);
    l.take_messages();
    (l, pos)
}

/// The follower answers its client only once it applies the write, so it must learn
/// the commit at once, not with the next heartbeat (a whole heartbeat interval later
/// when nothing else is written).
#[test]
fn the_leader_tells_a_forwarding_follower_of_the_commit_at_once() {
    let (mut l, pos) = leader_with_a_write_forwarded_by_2();
    // Follower 2 acknowledges: a majority holds the entry, no time has passed.
    step(&mut l, ack(2, 2, pos.index, 0));
    assert_eq!(l.commit_index(), pos.index);
    let to_forwarder: Vec<Index> = l
        .take_messages()
        .into_iter()
        .filter(|m| m.to == 2)
        .filter_map(|m| match m.body {
            MessageBody::AppendEntries { leader_commit, .. } => Some(leader_commit),
            _ => None,
        })
        .collect();
    assert!(
        to_forwarder.iter().any(|&c| c >= pos.index),
        "follower 2 is not told that its write at {} committed: {to_forwarder:?}",
        pos.index
    );
}

/// Told only once it holds the write: a heartbeat at a match index below the write
/// would not let it commit the write, and it would wait for the next one.
#[test]
fn the_forwarding_follower_is_told_once_it_holds_the_committed_write() {
    let (mut l, pos) = leader_with_a_write_forwarded_by_2();
    let commits_to_2 = |l: &mut Raft| -> Vec<(Index, Index)> {
        l.take_messages()
            .into_iter()
            .filter(|m| m.to == 2)
            .filter_map(|m| match m.body {
                MessageBody::AppendEntries {
                    prev_log_index,
                    leader_commit,
                    ..
                } => Some((prev_log_index, leader_commit)),
                _ => None,
            })
            .collect()
    };
    // Follower 3 makes the majority before follower 2 acknowledged.
    step(&mut l, ack(3, 2, pos.index, 0));
    assert_eq!(l.commit_index(), pos.index);
    assert_eq!(commits_to_2(&mut l), vec![], "2 does not hold it yet");
    step(&mut l, ack(2, 2, pos.index, 0));
    assert_eq!(commits_to_2(&mut l), vec![(pos.index, pos.index)]);
}
