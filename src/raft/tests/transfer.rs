//! Thesis §3.10: leadership transfer. The leader refuses proposals, brings the target
//! up to date, sends it TimeoutNow; the target campaigns at once with a flag that the
//! §4.2.3 check lets through; the transfer is abandoned after an election timeout.

use super::*;

/// Leader 1 of voters `1..=n` in term 1, its no-op (index 1) acknowledged by every
/// follower and committed.
fn settled_leader(n: u64) -> Raft {
    let mut r = leader(n, &[], 0);
    persist_all(&mut r);
    for peer in 2..=n {
        step(&mut r, ack(peer, 1, 1, 0));
    }
    assert_eq!(r.commit_index(), 1);
    r.take_messages();
    r
}

fn timeout_now_to(messages: &[Message]) -> Vec<NodeId> {
    messages
        .iter()
        .filter(|m| m.body == MessageBody::TimeoutNow)
        .map(|m| m.to)
        .collect()
}

fn vote_request(from: NodeId, to: NodeId, term: Term, transfer: bool) -> Message {
    let body = MessageBody::RequestVote {
        last_log_index: 1,
        last_log_term: 1,
        leadership_transfer: transfer,
    };
    msg(from, to, term, body)
}

#[test]
fn a_caught_up_target_gets_timeout_now_and_proposals_are_refused_meanwhile() {
    let mut r = settled_leader(3);
    assert_eq!(r.transfer_leadership(Some(2), 10), Ok(2));
    r.check_invariants();
    assert_eq!(timeout_now_to(&r.take_messages()), vec![2]);
    assert_eq!(r.transfer_target(), Some(2));
    assert_eq!(
        r.propose(b"x".to_vec(), 10),
        Err(NotLeader { leader: None }),
        "no new proposal while leadership moves"
    );
    let change = MembershipChange::Remove { id: 3 };
    assert_eq!(
        r.propose_membership(change, 10),
        Err(ChangeRefused::NotLeader(NotLeader { leader: None }))
    );
    assert_eq!(r.last_position().index, 1, "nothing was appended");
    // Asking again for the same target is not an error; for another one it is.
    assert_eq!(r.transfer_leadership(Some(2), 10), Ok(2));
    assert_eq!(
        r.transfer_leadership(Some(3), 10),
        Err(TransferRefused::InProgress(2))
    );
}

#[test]
fn a_target_that_is_behind_is_brought_up_to_date_before_timeout_now() {
    let mut r = settled_leader(3);
    r.propose(b"a".to_vec(), 0).expect("leader");
    r.propose(b"b".to_vec(), 0).expect("leader");
    persist_all(&mut r);
    step(&mut r, ack(2, 1, 3, 0));
    r.take_messages();
    assert_eq!(r.transfer_leadership(Some(3), 0), Ok(3));
    let sent = r.take_messages();
    assert!(timeout_now_to(&sent).is_empty(), "n3 lacks entries 2 and 3");
    // n3's last ack (index 1) is in the past; what it acknowledges next decides.
    step(&mut r, ack(3, 1, 2, 0));
    assert!(
        timeout_now_to(&r.take_messages()).is_empty(),
        "still lacks 3"
    );
    step(&mut r, ack(3, 1, 3, 0));
    assert_eq!(timeout_now_to(&r.take_messages()), vec![3]);
}

#[test]
fn without_a_target_the_most_up_to_date_voter_is_chosen() {
    let mut r = settled_leader(3);
    r.propose(b"a".to_vec(), 0).expect("leader");
    persist_all(&mut r);
    step(&mut r, ack(3, 1, 2, 0));
    r.take_messages();
    assert_eq!(r.transfer_leadership(None, 0), Ok(3));
    assert_eq!(timeout_now_to(&r.take_messages()), vec![3]);
}

#[test]
fn self_learners_unknown_ids_and_followers_are_refused() {
    let mut r = settled_leader(3);
    let add = MembershipChange::AddLearner {
        id: 4,
        address: "127.0.0.1:7004".into(),
    };
    r.propose_membership(add, 0).expect("accepted");
    assert_eq!(
        r.transfer_leadership(Some(1), 0),
        Err(TransferRefused::AlreadyLeader(1))
    );
    assert_eq!(
        r.transfer_leadership(Some(4), 0),
        Err(TransferRefused::NotVoter(4))
    );
    assert_eq!(
        r.transfer_leadership(Some(9), 0),
        Err(TransferRefused::NotMember(9))
    );
    assert_eq!(r.transfer_target(), None, "a refusal changes nothing");
    let mut follower = node(2, 3, &[1], 1);
    step(&mut follower, append(1, 2, 1, (1, 1), vec![], 1));
    assert_eq!(
        follower.transfer_leadership(Some(3), 0),
        Err(TransferRefused::NotLeader(NotLeader { leader: Some(1) }))
    );
    let mut alone = leader(1, &[], 0);
    assert_eq!(
        alone.transfer_leadership(None, 0),
        Err(TransferRefused::NoOtherVoter)
    );
}

#[test]
fn the_transfer_is_abandoned_after_an_election_timeout_and_proposals_resume() {
    let mut r = settled_leader(3);
    let start = r.now_ms;
    r.transfer_leadership(Some(2), start).expect("started");
    let deadline = start + r.config.election_timeout_max_ms;
    assert!(
        r.next_tick_ms() <= deadline,
        "the timer wakes for the deadline"
    );
    // Keep the quorum alive so check-quorum does not end it first.
    r.step(ack(2, 1, 1, 0), deadline - 1);
    r.step(ack(3, 1, 1, 0), deadline - 1);
    r.tick(deadline - 1);
    assert_eq!(r.transfer_target(), Some(2));
    r.tick(deadline);
    r.check_invariants();
    assert_eq!(r.transfer_target(), None);
    assert_eq!(r.role(), Role::Leader);
    assert!(r.propose(b"x".to_vec(), deadline).is_ok());
}

#[test]
fn stepping_down_ends_the_transfer() {
    let mut r = settled_leader(3);
    r.transfer_leadership(Some(2), 0).expect("started");
    step(&mut r, vote_request(2, 1, 2, true));
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(r.transfer_target(), None);
}

#[test]
fn timeout_now_makes_a_voter_campaign_at_once_without_pre_vote() {
    let cfg = Config {
        pre_vote: true,
        ..config(2, 3)
    };
    let mut r = node_with(cfg, &[1], 1);
    step(&mut r, append(1, 2, 1, (1, 1), vec![], 1));
    persist_all(&mut r);
    r.take_messages();
    step(&mut r, msg(1, 2, 1, MessageBody::TimeoutNow));
    assert_eq!(r.role(), Role::Candidate, "no pre-vote round");
    assert_eq!(r.term(), 2);
    let requests = persist_all(&mut r);
    let to: Vec<NodeId> = requests.iter().map(|m| m.to).collect();
    assert_eq!(to, vec![1, 3]);
    for m in requests {
        assert_eq!(m.body, vote_request(2, m.to, 2, true).body);
    }
}

#[test]
fn timeout_now_from_an_older_term_or_to_a_learner_is_ignored() {
    let mut r = node(2, 3, &[1, 2], 2);
    step(&mut r, msg(1, 2, 1, MessageBody::TimeoutNow));
    assert_eq!((r.role(), r.term()), (Role::Follower, 2));
    assert!(persist_all(&mut r).is_empty() && r.take_messages().is_empty());
    let add = MembershipChange::AddLearner {
        id: 4,
        address: "127.0.0.1:7004".into(),
    };
    let with_learner = Membership::bootstrap([1, 2, 3]).apply(&add).expect("valid");
    let initial = InitialState {
        hard_state: HardState {
            current_term: 1,
            voted_for: None,
        },
        log_base: LogPosition { term: 1, index: 1 },
        entries: Vec::new(),
        membership: Some(with_learner),
    };
    let mut learner = Raft::new(config(4, 0), initial, 7, 0);
    step(&mut learner, msg(1, 4, 1, MessageBody::TimeoutNow));
    assert_eq!((learner.role(), learner.term()), (Role::Follower, 1));
}

#[test]
fn a_transfer_vote_passes_the_disruption_check_that_stops_other_votes() {
    let mut r = node(3, 3, &[1], 1);
    step(&mut r, append(1, 3, 1, (1, 1), vec![], 1));
    persist_all(&mut r);
    r.take_messages();
    // Within the minimum election timeout of hearing from leader 1.
    step(&mut r, vote_request(2, 3, 2, false));
    assert_eq!(
        r.term(),
        1,
        "an unasked campaign is ignored (thesis §4.2.3)"
    );
    step(&mut r, vote_request(2, 3, 2, true));
    assert_eq!(r.term(), 2);
    assert_eq!(r.voted_for(), Some(2));
    let answers = persist_all(&mut r);
    let granted = MessageBody::RequestVoteResponse { vote_granted: true };
    assert_eq!(answers, vec![msg(3, 2, 2, granted)]);
}
