//! Reads on a follower (`follower_read.rs`): one batched request to the leader, served
//! at the leader's confirmed index, failed on a change of leader, sent again if lost.

use super::*;
use crate::raft::follower_read::MAX_FORWARDED_READS;

/// Follower 2 of 3 in term 2, following leader 1, with [1, 2] committed.
fn follower() -> Raft {
    let mut r = node(2, 3, &[1, 2], 2);
    step(&mut r, append(1, 2, 2, (2, 2), vec![], 2));
    persist_all(&mut r);
    r.take_messages();
    r
}

/// The batch numbers of the `ReadIndexRequest`s among `messages`, with their targets.
fn requests(messages: &[Message]) -> Vec<(NodeId, u64)> {
    messages
        .iter()
        .filter_map(|m| match m.body {
            MessageBody::ReadIndexRequest { batch } => Some((m.to, batch)),
            _ => None,
        })
        .collect()
}

fn answer(batch: u64, read_index: Index) -> Message {
    msg(
        1,
        2,
        2,
        MessageBody::ReadIndexResponse { batch, read_index },
    )
}

fn ok(read_id: u64, index: Index) -> ReadState {
    ReadState {
        read_id,
        result: Ok(index),
    }
}

#[test]
fn reads_on_a_follower_share_one_request_and_are_served_at_the_leaders_index() {
    let mut r = follower();
    r.read_index(1, 0).expect("follower with a leader");
    r.read_index(2, 0).expect("follower with a leader");
    let sent = requests(&r.take_messages());
    assert_eq!(sent.len(), 1, "one request for both reads: {sent:?}");
    let (to, batch) = sent[0];
    assert_eq!(to, 1);
    // A read arriving while the request is in flight waits for the next one.
    r.read_index(3, 0).expect("follower with a leader");
    assert_eq!(requests(&r.take_messages()), vec![]);
    r.check_invariants();
    step(&mut r, answer(batch.wrapping_add(7), 5));
    assert_eq!(r.take_read_states(), vec![], "an answer to another batch");
    step(&mut r, answer(batch, 5));
    assert_eq!(r.take_read_states(), vec![ok(1, 5), ok(2, 5)]);
    step(&mut r, answer(batch, 5));
    assert_eq!(
        r.take_read_states(),
        vec![],
        "a duplicate answer is ignored"
    );
    let next = requests(&r.take_messages());
    assert_eq!(next.len(), 1);
    assert_ne!(next[0].1, batch, "a new batch number");
}

#[test]
fn the_leader_answers_a_followers_request_only_after_a_majority_round() {
    let mut r = leader(3, &[1], 1);
    persist_all(&mut r);
    step(&mut r, ack(2, 2, 2, 0));
    r.take_messages();
    let request = msg(2, 1, 2, MessageBody::ReadIndexRequest { batch: 40 });
    step(&mut r, request);
    let round = r.take_messages();
    assert!(
        round
            .iter()
            .all(|m| !matches!(m.body, MessageBody::ReadIndexResponse { .. })),
        "no answer before the round is confirmed: {round:?}"
    );
    step(&mut r, ack(3, 2, 2, 1));
    let answers: Vec<Message> = r
        .take_messages()
        .into_iter()
        .filter(|m| matches!(m.body, MessageBody::ReadIndexResponse { .. }))
        .collect();
    let expected = MessageBody::ReadIndexResponse {
        batch: 40,
        read_index: 2,
    };
    assert_eq!(answers, vec![msg(1, 2, 2, expected)]);
    assert_eq!(r.take_read_states(), vec![], "no local read was asked for");
}

#[test]
fn a_change_of_leader_fails_every_forwarded_read() {
    let mut r = follower();
    r.read_index(1, 0).expect("follower with a leader");
    let batch = requests(&r.take_messages())[0].1;
    r.read_index(2, 0).expect("follower with a leader");
    // Leader 3 of term 3: the batch went to leader 1 of term 2.
    step(&mut r, append(3, 2, 3, (2, 2), vec![], 2));
    let failed = ReadState {
        read_id: 0,
        result: Err(NotLeader { leader: Some(3) }),
    };
    let states = r.take_read_states();
    assert_eq!(
        states,
        vec![
            ReadState {
                read_id: 1,
                ..failed
            },
            ReadState {
                read_id: 2,
                ..failed
            }
        ]
    );
    // A late answer from the old leader is of an older term: it changes nothing.
    r.step(answer(batch, 2), 0);
    assert_eq!(r.take_read_states(), vec![]);
    r.check_invariants();
}

#[test]
fn an_election_timeout_fails_forwarded_reads() {
    let mut r = follower();
    r.read_index(1, 0).expect("follower with a leader");
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    assert_eq!(r.role(), Role::Candidate);
    assert_eq!(
        r.take_read_states(),
        vec![ReadState {
            read_id: 1,
            result: Err(NotLeader { leader: None })
        }]
    );
    r.check_invariants();
}

#[test]
fn an_unanswered_request_is_sent_again_under_a_new_number() {
    let mut r = follower();
    r.read_index(1, 0).expect("follower with a leader");
    let first = requests(&r.take_messages())[0].1;
    // The leader keeps us a follower, but the request was lost.
    let later = r.config.election_timeout_max_ms;
    r.step(append(1, 2, 2, (2, 2), vec![], 2), later);
    let again = requests(&r.take_messages());
    assert_eq!(again.len(), 1, "sent again once the timeout passed");
    assert_ne!(again[0].1, first);
    step(&mut r, answer(first, 2));
    assert_eq!(
        r.take_read_states(),
        vec![],
        "the lost batch's number is retired"
    );
    step(&mut r, answer(again[0].1, 2));
    assert_eq!(r.take_read_states(), vec![ok(1, 2)]);
}

#[test]
fn a_follower_refuses_reads_past_its_bound_naming_the_leader() {
    let mut r = follower();
    for read_id in 0..MAX_FORWARDED_READS as u64 {
        r.read_index(read_id, 0).expect("under the bound");
    }
    let over = MAX_FORWARDED_READS as u64;
    assert_eq!(r.read_index(over, 0), Err(NotLeader { leader: Some(1) }));
    // Once the batch in flight is answered, there is room again.
    let batch = requests(&r.take_messages())[0].1;
    step(&mut r, answer(batch, 2));
    assert_eq!(r.take_read_states().len(), MAX_FORWARDED_READS);
    r.read_index(over, 0).expect("room again");
}
