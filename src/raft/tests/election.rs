//! §5.2 leader election, §5.4.1 the up-to-date check, §5.1 terms.

use super::*;

fn vote_request(from: NodeId, to: NodeId, term: Term, last: (Term, Index)) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVote {
            last_log_index: last.1,
            last_log_term: last.0,
            leadership_transfer: false,
        },
    )
}

fn vote(from: NodeId, to: NodeId, term: Term, granted: bool) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVoteResponse {
            vote_granted: granted,
        },
    )
}

#[test]
fn follower_campaigns_at_its_deadline_and_votes_wait_for_the_term_to_be_durable() {
    let mut r = node(1, 3, &[1, 1], 1);
    let deadline = r.next_tick_ms();
    assert!(
        (100..200).contains(&deadline),
        "deadline {deadline} outside [100, 200)"
    );

    r.tick(deadline - 1);
    assert_eq!(r.role(), Role::Follower);
    assert!(!r.has_persist_work());

    r.tick(deadline);
    assert_eq!(
        (r.role(), r.term(), r.voted_for()),
        (Role::Candidate, 2, Some(1))
    );
    assert_eq!(r.take_messages(), vec![]);
    let batch = r.take_persist_batch().expect("a batch with the new term");
    assert_eq!(
        batch.hard_state,
        Some(HardState {
            current_term: 2,
            voted_for: Some(1)
        })
    );
    assert_eq!(batch.entries, vec![]);
    assert_eq!(
        batch.messages,
        vec![vote_request(1, 2, 2, (1, 2)), vote_request(1, 3, 2, (1, 2))]
    );
    assert_eq!(batch.token.last, LogPosition { term: 1, index: 2 });
    assert!(
        r.next_tick_ms() >= deadline + 100,
        "election deadline not reset"
    );
}

#[test]
fn candidate_with_a_majority_becomes_leader_and_appends_a_noop() {
    let mut r = node(1, 3, &[1], 1);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    persist_all(&mut r);
    step(&mut r, vote(2, 1, 2, true));
    assert_eq!((r.role(), r.leader()), (Role::Leader, Some(1)));
    // §8: the noop of the new term, sent at once from next = old last + 1.
    let noop = Entry {
        term: 2,
        index: 2,
        payload: Payload::Noop,
    };
    assert_eq!(r.entries_from(2), std::slice::from_ref(&noop));
    let expected: Vec<Message> = [2, 3]
        .iter()
        .map(|&p| append(1, p, 2, (1, 1), vec![noop.clone()], 0))
        .collect();
    assert_eq!(r.take_messages(), expected);
}

#[test]
fn duplicate_grants_from_one_voter_count_once() {
    let mut r = node(1, 5, &[], 0);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    persist_all(&mut r);
    step(&mut r, vote(2, 1, 1, true));
    step(&mut r, vote(2, 1, 1, true));
    assert_eq!(r.role(), Role::Candidate);
    step(&mut r, vote(3, 1, 1, true));
    assert_eq!(r.role(), Role::Leader);
}

#[test]
fn candidate_rejected_by_a_majority_steps_down() {
    let mut r = node(1, 3, &[], 0);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    persist_all(&mut r);
    step(&mut r, vote(2, 1, 1, false));
    assert_eq!(r.role(), Role::Candidate);
    step(&mut r, vote(3, 1, 1, false));
    assert_eq!(
        (r.role(), r.term(), r.voted_for()),
        (Role::Follower, 1, Some(1))
    );
}

#[test]
fn granted_vote_leaves_only_inside_the_batch_that_persists_it() {
    let mut r = node(2, 3, &[1], 1);
    step(&mut r, vote_request(1, 2, 2, (1, 1)));
    assert_eq!(r.take_messages(), vec![]);
    let batch = r.take_persist_batch().expect("the vote must be persisted");
    assert_eq!(
        batch.hard_state,
        Some(HardState {
            current_term: 2,
            voted_for: Some(1)
        })
    );
    assert_eq!(batch.messages, vec![vote(2, 1, 2, true)]);

    // One vote per term: a second candidate of term 2 is refused. The batch above
    // is not yet confirmed, so the refusal waits behind it.
    step(&mut r, vote_request(3, 2, 2, (1, 1)));
    assert_eq!(r.take_messages(), vec![]);
    r.on_persisted(batch.token, 0);
    let batch = r
        .take_persist_batch()
        .expect("refusal rides the next batch");
    assert_eq!((batch.hard_state, batch.entries.len()), (None, 0));
    assert_eq!(batch.messages, vec![vote(2, 3, 2, false)]);
    r.on_persisted(batch.token, 0);

    // Nothing pending now: a repeated request from the same candidate is answered
    // at once (the vote is already durable).
    step(&mut r, vote_request(1, 2, 2, (1, 1)));
    assert_eq!(r.take_messages(), vec![vote(2, 1, 2, true)]);
    assert!(!r.has_persist_work());
}

#[test]
fn vote_requires_an_up_to_date_log() {
    // Our last entry is (2, 2).
    let cases = [
        ((1, 5), false),
        ((2, 1), false),
        ((2, 2), true),
        ((2, 3), true),
        ((3, 1), true),
    ];
    for (last, granted) in cases {
        let mut r = node(2, 3, &[1, 2], 2);
        step(&mut r, vote_request(1, 2, 3, last));
        let batch = r.take_persist_batch().expect("term 3 must be persisted");
        assert_eq!(
            batch.messages,
            vec![vote(2, 1, 3, granted)],
            "candidate last {last:?}"
        );
        let voted = if granted { Some(1) } else { None };
        assert_eq!(
            batch.hard_state,
            Some(HardState {
                current_term: 3,
                voted_for: voted
            })
        );
    }
}

#[test]
fn requests_from_an_older_term_are_refused_with_our_term() {
    let mut r = node(2, 3, &[1], 3);
    step(&mut r, vote_request(1, 2, 2, (9, 9)));
    step(&mut r, append(1, 2, 2, (1, 1), vec![], 1));
    let stale = msg(2, 1, 3, MessageBody::StaleTerm);
    assert_eq!(r.take_messages(), vec![stale.clone(), stale]);
    assert_eq!(
        (r.term(), r.voted_for(), r.leader(), r.commit_index()),
        (3, None, None, 0)
    );
}

#[test]
fn responses_from_an_older_term_are_ignored() {
    let mut r = node(1, 3, &[], 5);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    persist_all(&mut r);
    step(&mut r, vote(2, 1, 5, true));
    step(&mut r, vote(3, 1, 4, true));
    assert_eq!((r.role(), r.term()), (Role::Candidate, 6));
    assert_eq!(r.take_messages(), vec![]);
}

#[test]
fn a_higher_term_makes_a_leader_follow_and_clears_the_vote() {
    let mut r = leader(3, &[1], 1);
    step(&mut r, vote(3, 1, 7, false));
    assert_eq!(
        (r.role(), r.term(), r.voted_for(), r.leader()),
        (Role::Follower, 7, None, None)
    );
    assert_eq!(r.status().match_index, vec![]);
    let batch = r.take_persist_batch().expect("term 7 must be persisted");
    assert_eq!(
        batch.hard_state,
        Some(HardState {
            current_term: 7,
            voted_for: None
        })
    );
}

#[test]
fn messages_from_removed_members_or_for_others_are_dropped() {
    let mut r = node(2, 3, &[], 1);
    // n4 was a member once and has been removed.
    let was_four = Membership {
        max_id: 4,
        ..Membership::bootstrap([1, 2, 3])
    };
    let config = Entry {
        term: 1,
        index: 1,
        payload: Payload::Membership(was_four),
    };
    step(&mut r, append(1, 2, 1, (0, 0), vec![config], 0));
    persist_all(&mut r);
    r.take_messages();
    step(&mut r, vote_request(4, 2, 9, (9, 9)));
    step(&mut r, vote_request(1, 3, 9, (9, 9)));
    step(&mut r, vote_request(2, 2, 9, (9, 9)));
    assert_eq!(r.term(), 1);
    assert!(!r.has_persist_work());
    assert_eq!(r.take_messages(), vec![]);
}

#[test]
fn single_voter_elects_itself_and_commits_on_its_own_persistence() {
    let mut r = node(1, 1, &[], 0);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    assert_eq!((r.role(), r.term()), (Role::Leader, 1));
    let pos = r.propose(b"x".to_vec(), deadline).expect("leader");
    assert_eq!(pos, LogPosition { term: 1, index: 2 });
    assert_eq!(r.commit_index(), 0);
    let batch = r.take_persist_batch().expect("term, noop and command");
    assert_eq!(batch.entries.len(), 2);
    assert_eq!(batch.token.last, pos);
    r.on_persisted(batch.token, deadline);
    assert_eq!(r.commit_index(), 2);
    let applied: Vec<Payload> = r
        .take_committed(10)
        .into_iter()
        .map(|e| e.payload)
        .collect();
    assert_eq!(
        applied,
        vec![Payload::Noop, Payload::Command(b"x".to_vec())]
    );
    assert_eq!(r.next_tick_ms(), deadline + 50);
    r.check_invariants();
}

#[test]
fn deadline_moves_on_leader_contact_and_on_a_granted_vote_only() {
    let mut r = node(2, 3, &[], 1);
    let first = r.next_tick_ms();
    r.step(append(1, 2, 1, (0, 0), vec![], 0), first - 1);
    let after_append = r.next_tick_ms();
    assert!(
        after_append >= first - 1 + 100,
        "valid append resets: {after_append}"
    );
    // Term 2 has no known leader, so 3 gets the vote and the deadline moves.
    r.step(vote_request(3, 2, 2, (0, 0)), after_append - 1);
    assert_eq!(r.voted_for(), Some(3));
    let after_grant = r.next_tick_ms();
    assert!(
        after_grant >= after_append - 1 + 100,
        "granted vote resets: {after_grant}"
    );
    r.step(vote_request(1, 2, 2, (0, 0)), after_grant - 1);
    assert_eq!(r.voted_for(), Some(3), "one vote per term");
    assert_eq!(
        r.next_tick_ms(),
        after_grant,
        "a refused vote does not reset"
    );
    r.tick(after_grant);
    assert_eq!((r.role(), r.term()), (Role::Candidate, 3));
}
