//! ReadIndex (thesis §6.4): held until a current-term commit, confirmed by a majority
//! round, shared rounds, failure on step-down.

use super::*;

fn heartbeat(to: NodeId, term: Term, prev: (Term, Index), commit: Index, round: u64) -> Message {
    let body = MessageBody::AppendEntries {
        prev_log_index: prev.1,
        prev_log_term: prev.0,
        entries: vec![],
        leader_commit: commit,
        read_round: round,
        check: None,
    };
    msg(1, to, term, body)
}

fn ok(read_id: u64, index: Index) -> ReadState {
    ReadState {
        read_id,
        result: Ok(index),
    }
}

/// A leader of term 2 over [1] + noop(2), with the noop committed and acked by both.
fn committed_leader() -> Raft {
    let mut r = leader(3, &[1], 1);
    persist_all(&mut r);
    step(&mut r, ack(2, 2, 2, 0));
    step(&mut r, ack(3, 2, 2, 0));
    assert_eq!(r.commit_index(), 2);
    r.take_messages();
    r
}

#[test]
fn reads_wait_for_a_commit_in_the_leaders_term_then_for_a_majority_round() {
    let mut r = leader(3, &[1], 1);
    r.read_index(7, 0).expect("leader");
    assert_eq!(
        r.take_messages(),
        vec![],
        "no round before a current-term commit"
    );
    persist_all(&mut r);
    step(&mut r, ack(2, 2, 2, 0));
    assert_eq!(r.commit_index(), 2);
    assert_eq!(r.take_read_states(), vec![]);
    // The commit released the read into round 1, whose heartbeats leave at once.
    let expected = vec![heartbeat(2, 2, (2, 2), 2, 1), heartbeat(3, 2, (0, 0), 2, 1)];
    assert_eq!(r.take_messages(), expected);
    step(&mut r, ack(3, 2, 0, 1));
    assert_eq!(r.take_read_states(), vec![ok(7, 2)]);
}

#[test]
fn concurrent_reads_share_one_round_and_old_rounds_do_not_confirm_new_ones() {
    let mut r = committed_leader();
    r.read_index(1, 0).expect("leader");
    r.read_index(2, 0).expect("leader");
    let round1 = vec![heartbeat(2, 2, (2, 2), 2, 1), heartbeat(3, 2, (2, 2), 2, 1)];
    assert_eq!(r.take_messages(), round1);
    step(&mut r, ack(2, 2, 2, 1));
    assert_eq!(r.take_read_states(), vec![ok(1, 2), ok(2, 2)]);

    r.read_index(3, 0).expect("leader");
    let round2 = vec![heartbeat(2, 2, (2, 2), 2, 2), heartbeat(3, 2, (2, 2), 2, 2)];
    assert_eq!(r.take_messages(), round2);
    step(&mut r, ack(3, 2, 2, 1));
    assert_eq!(
        r.take_read_states(),
        vec![],
        "an echo of round 1 says nothing about round 2"
    );
    // A rejection in this term proves leadership just as well.
    let body = MessageBody::AppendEntriesResponse {
        success: false,
        match_index: 2,
        conflict: None,
        read_round: 2,
        check: None,
    };
    step(&mut r, msg(3, 1, 2, body));
    assert_eq!(r.take_read_states(), vec![ok(3, 2)]);
}

#[test]
fn reads_arriving_while_a_round_is_in_flight_gather_into_the_next_round() {
    let mut r = committed_leader();
    r.read_index(1, 0).expect("leader");
    let round1 = vec![heartbeat(2, 2, (2, 2), 2, 1), heartbeat(3, 2, (2, 2), 2, 1)];
    assert_eq!(r.take_messages(), round1);
    r.read_index(2, 0).expect("leader");
    assert_eq!(
        r.take_messages(),
        vec![],
        "round 1 is in flight: round 2 waits"
    );
    r.read_index(3, 0).expect("leader");
    assert_eq!(r.take_messages(), vec![]);
    r.check_invariants();
    // Confirming round 1 releases read 1 and sends round 2 for reads 2 and 3 at once.
    step(&mut r, ack(2, 2, 2, 1));
    assert_eq!(r.take_read_states(), vec![ok(1, 2)]);
    let round2 = vec![heartbeat(2, 2, (2, 2), 2, 2), heartbeat(3, 2, (2, 2), 2, 2)];
    assert_eq!(r.take_messages(), round2);
    step(&mut r, ack(3, 2, 2, 2));
    assert_eq!(r.take_read_states(), vec![ok(2, 2), ok(3, 2)]);
    assert_eq!(r.take_messages(), vec![], "nothing open, nothing sent");
}

#[test]
fn a_message_sent_before_a_read_arrived_never_confirms_it() {
    // §6.4 step 3 needs a majority to answer a message sent *after* the read arrived.
    // A round left open while another is in flight must not be carried by messages
    // created before its reads were recorded.
    let mut r = committed_leader();
    r.read_index(1, 0).expect("leader");
    r.take_messages(); // round 1 in flight
    r.read_index(2, 0).expect("leader"); // opens round 2, held back
    r.propose(b"x".to_vec(), 0).expect("leader");
    let appends = r.take_messages();
    assert!(!appends.is_empty(), "the proposal replicates at once");
    for m in &appends {
        match &m.body {
            // Round 2 is still open (read 3 may join it): the appends carry round 1.
            MessageBody::AppendEntries { read_round, .. } => assert_eq!(*read_round, 1),
            other => panic!("expected AppendEntries, got {other:?}"),
        }
    }
    r.read_index(3, 0).expect("leader"); // recorded after the appends left
                                         // Both followers echo round 1 (the appends and the heartbeats of round 1):
                                         // read 1 is confirmed, reads 2 and 3 are not, and their own round goes out.
    step(&mut r, ack(2, 2, 2, 1));
    step(&mut r, ack(3, 2, 2, 1));
    assert_eq!(r.take_read_states(), vec![ok(1, 2)]);
    let round2: Vec<u64> = r
        .take_messages()
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::AppendEntries { read_round, .. } => Some(*read_round),
            _ => None,
        })
        .collect();
    assert!(
        !round2.is_empty() && round2.iter().all(|&x| x == 2),
        "{round2:?}"
    );
}

#[test]
fn losing_leadership_fails_every_pending_and_held_read() {
    let mut r = committed_leader();
    r.read_index(1, 0).expect("leader");
    r.take_messages();
    step(&mut r, append(3, 1, 3, (2, 2), vec![], 2));
    assert_eq!((r.role(), r.leader()), (Role::Follower, Some(3)));
    assert_eq!(
        r.take_read_states(),
        vec![ReadState {
            read_id: 1,
            result: Err(NotLeader { leader: Some(3) })
        }]
    );

    let mut r = leader(3, &[1], 1);
    r.read_index(9, 0).expect("leader");
    step(
        &mut r,
        msg(
            2,
            1,
            5,
            MessageBody::RequestVote {
                last_log_index: 0,
                last_log_term: 0,
                leadership_transfer: false,
            },
        ),
    );
    assert_eq!(
        r.take_read_states(),
        vec![ReadState {
            read_id: 9,
            result: Err(NotLeader { leader: None })
        }]
    );
    assert_eq!(r.read_index(10, 0), Err(NotLeader { leader: None }));
}

#[test]
fn single_voter_confirms_reads_at_once_after_its_first_commit() {
    let mut r = node(1, 1, &[], 0);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    r.read_index(1, deadline).expect("leader");
    assert_eq!(r.take_read_states(), vec![]);
    persist_all(&mut r);
    assert_eq!(r.take_read_states(), vec![ok(1, 1)]);
    r.read_index(2, deadline).expect("leader");
    assert_eq!(r.take_read_states(), vec![ok(2, 1)]);
    assert_eq!(r.take_messages(), vec![]);
}

#[test]
fn followers_refuse_proposals_naming_the_leader_and_reads_without_a_leader() {
    let mut r = node(2, 3, &[], 1);
    assert_eq!(r.read_index(1, 0), Err(NotLeader { leader: None }));
    step(&mut r, append(1, 2, 1, (0, 0), vec![], 0));
    assert_eq!(r.propose(vec![1], 0), Err(NotLeader { leader: Some(1) }));
}
