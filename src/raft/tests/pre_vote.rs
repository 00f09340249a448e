//! Pre-vote (thesis §9.6): ask before bumping the term; grant only with an
//! up-to-date log (§5.4.1) and no live leader.

use super::*;

/// A follower like [`node`], with pre-vote on.
fn pv_node(id: NodeId, n: u64, terms: &[Term], term: Term) -> Raft {
    let cfg = Config {
        pre_vote: true,
        ..config(id, n)
    };
    node_with(cfg, terms, term)
}

fn pre_vote(from: NodeId, to: NodeId, term: Term, last: (Term, Index)) -> Message {
    let body = MessageBody::PreVote {
        last_log_index: last.1,
        last_log_term: last.0,
    };
    msg(from, to, term, body)
}

fn pre_answer(from: NodeId, to: NodeId, term: Term, granted: bool) -> Message {
    let body = MessageBody::PreVoteResponse {
        vote_granted: granted,
    };
    msg(from, to, term, body)
}

/// Node 1 of 3 in term 1 with log [1, 1], pre-candidate after its first timeout.
fn pre_candidate() -> Raft {
    let mut r = pv_node(1, 3, &[1, 1], 1);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    r.check_invariants();
    r
}

#[test]
fn a_timeout_makes_a_pre_candidate_that_keeps_its_term_and_vote() {
    let mut r = pv_node(1, 3, &[1, 1], 1);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    r.check_invariants();
    assert_eq!(
        (r.role(), r.term(), r.voted_for(), r.leader()),
        (Role::PreCandidate, 1, None, None)
    );
    assert!(!r.has_persist_work(), "a pre-vote promises nothing durable");
    assert_eq!(
        r.take_messages(),
        vec![pre_vote(1, 2, 2, (1, 2)), pre_vote(1, 3, 2, (1, 2))]
    );
    assert!(
        r.next_tick_ms() >= deadline + 100,
        "round has its own timeout"
    );

    // No answers: the next timeout asks again, still in term 1.
    let again = r.next_tick_ms();
    r.tick(again);
    assert_eq!((r.role(), r.term()), (Role::PreCandidate, 1));
    assert_eq!(
        r.take_messages(),
        vec![pre_vote(1, 2, 2, (1, 2)), pre_vote(1, 3, 2, (1, 2))]
    );
    assert!(!r.has_persist_work());
}

#[test]
fn a_majority_of_grants_starts_the_real_election_behind_a_persist_batch() {
    let mut r = pre_candidate();
    r.take_messages();
    step(&mut r, pre_answer(2, 1, 2, true));
    assert_eq!(
        (r.role(), r.term(), r.voted_for()),
        (Role::Candidate, 2, Some(1))
    );
    assert_eq!(r.take_messages(), vec![]);
    let batch = r.take_persist_batch().expect("the new term and vote");
    assert_eq!(
        batch.hard_state,
        Some(HardState {
            current_term: 2,
            voted_for: Some(1)
        })
    );
    let request = |to| {
        let body = MessageBody::RequestVote {
            last_log_index: 2,
            last_log_term: 1,
            leadership_transfer: false,
        };
        msg(1, to, 2, body)
    };
    assert_eq!(batch.messages, vec![request(2), request(3)]);
}

#[test]
fn grants_for_another_term_and_duplicates_do_not_count() {
    let mut r = pv_node(1, 5, &[1], 1);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    step(&mut r, pre_answer(2, 1, 2, true));
    step(&mut r, pre_answer(2, 1, 2, true));
    step(&mut r, pre_answer(3, 1, 3, true));
    step(&mut r, pre_answer(4, 1, 1, true));
    assert_eq!((r.role(), r.term()), (Role::PreCandidate, 1));
    step(&mut r, pre_answer(5, 1, 2, true));
    assert_eq!((r.role(), r.term()), (Role::Candidate, 2));
}

#[test]
fn a_majority_of_refusals_ends_the_round_in_the_same_term() {
    let mut r = pre_candidate();
    step(&mut r, pre_answer(2, 1, 1, false));
    assert_eq!(r.role(), Role::PreCandidate);
    step(&mut r, pre_answer(3, 1, 1, false));
    assert_eq!(
        (r.role(), r.term(), r.voted_for()),
        (Role::Follower, 1, None)
    );
    assert!(!r.has_persist_work());
}

#[test]
fn a_refusal_with_a_higher_term_makes_the_pre_candidate_follow_it() {
    let mut r = pre_candidate();
    step(&mut r, pre_answer(2, 1, 5, false));
    assert_eq!(
        (r.role(), r.term(), r.voted_for(), r.leader()),
        (Role::Follower, 5, None, None)
    );
    let batch = r.take_persist_batch().expect("term 5 must be persisted");
    assert_eq!(
        batch.hard_state,
        Some(HardState {
            current_term: 5,
            voted_for: None
        })
    );
}

#[test]
fn a_pre_candidate_follows_a_leader_of_its_term() {
    let mut r = pre_candidate();
    step(&mut r, append(2, 1, 1, (1, 2), vec![], 2));
    assert_eq!(
        (r.role(), r.term(), r.leader()),
        (Role::Follower, 1, Some(2))
    );
}

#[test]
fn a_pre_vote_needs_an_up_to_date_log_and_changes_nothing_here() {
    // Our last entry is (2, 2); the PreVote asks for term 9, far above ours.
    let cases = [
        ((1, 5), false),
        ((2, 1), false),
        ((2, 2), true),
        ((2, 3), true),
        ((3, 1), true),
    ];
    for (last, granted) in cases {
        let mut r = pv_node(2, 3, &[1, 2], 2);
        let deadline = r.next_tick_ms();
        step(&mut r, pre_vote(1, 2, 9, last));
        let reply_term = if granted { 9 } else { 2 };
        assert_eq!(
            r.take_messages(),
            vec![pre_answer(2, 1, reply_term, granted)],
            "candidate last {last:?}"
        );
        assert_eq!(
            (r.role(), r.term(), r.voted_for()),
            (Role::Follower, 2, None)
        );
        assert_eq!(r.next_tick_ms(), deadline, "the deadline must not move");
        assert!(!r.has_persist_work());
    }
}

#[test]
fn a_follower_that_hears_its_leader_refuses_for_the_minimum_election_timeout() {
    let mut r = pv_node(2, 3, &[1], 1);
    r.step(append(1, 2, 1, (1, 1), vec![], 1), 40);
    r.take_messages();
    persist_all(&mut r);
    let deadline = r.next_tick_ms();
    // 40 + 99: inside the lease of 100 ms.
    r.step(pre_vote(3, 2, 2, (1, 1)), 139);
    assert_eq!(r.take_messages(), vec![pre_answer(2, 3, 1, false)]);
    // 40 + 100: the leader may be gone; the same request is granted.
    r.step(pre_vote(3, 2, 2, (1, 1)), 140);
    assert_eq!(r.take_messages(), vec![pre_answer(2, 3, 2, true)]);
    assert_eq!(
        (r.role(), r.term(), r.voted_for(), r.leader()),
        (Role::Follower, 1, None, Some(1))
    );
    assert_eq!(r.next_tick_ms(), deadline);
    r.check_invariants();
}

#[test]
fn a_leader_refuses_and_keeps_its_term() {
    // Answering PreVote does not depend on our own `pre_vote` setting.
    let mut r = leader(3, &[1], 1);
    step(&mut r, pre_vote(2, 1, 7, (2, 9)));
    assert_eq!(r.take_messages(), vec![pre_answer(1, 2, 2, false)]);
    assert_eq!((r.role(), r.term(), r.leader()), (Role::Leader, 2, Some(1)));
}

#[test]
fn a_pre_vote_for_our_own_term_needs_our_vote_free() {
    let mut r = pv_node(2, 3, &[1], 2);
    step(&mut r, pre_vote(1, 2, 2, (1, 1)));
    assert_eq!(r.take_messages(), vec![pre_answer(2, 1, 2, true)]);
    let body = MessageBody::RequestVote {
        last_log_index: 1,
        last_log_term: 1,
        leadership_transfer: false,
    };
    step(&mut r, msg(3, 2, 2, body));
    assert_eq!(r.voted_for(), Some(3));
    step(&mut r, pre_vote(1, 2, 2, (1, 1)));
    assert_eq!(r.take_messages(), vec![pre_answer(2, 1, 2, false)]);
}

#[test]
fn a_single_voter_skips_the_pre_vote() {
    let mut r = pv_node(1, 1, &[], 0);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    assert_eq!((r.role(), r.term()), (Role::Leader, 1));
}

#[test]
fn a_pre_candidate_that_grants_a_real_vote_stops_asking() {
    let mut r = pre_candidate();
    r.take_messages();
    let body = MessageBody::RequestVote {
        last_log_index: 2,
        last_log_term: 1,
        leadership_transfer: false,
    };
    step(&mut r, msg(3, 1, 1, body));
    assert_eq!(
        (r.role(), r.term(), r.voted_for()),
        (Role::Follower, 1, Some(3))
    );
    // A late grant for term 2 no longer starts an election.
    step(&mut r, pre_answer(2, 1, 2, true));
    assert_eq!((r.role(), r.term()), (Role::Follower, 1));
}
