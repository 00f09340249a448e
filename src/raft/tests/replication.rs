//! §5.3 log replication, §5.4.2 commitment, §8 the leader's noop, pipelining.

use super::*;

fn reject(from: NodeId, term: Term, prev: Index, hint: ConflictHint) -> Message {
    let body = MessageBody::AppendEntriesResponse {
        success: false,
        match_index: prev,
        conflict: Some(hint),
        read_round: 0,
        check: None,
    };
    msg(from, 1, term, body)
}

fn noop(term: Term, index: Index) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Noop,
    }
}

#[test]
fn follower_appends_acks_after_persisting_and_commits_what_matches() {
    let mut r = node(2, 3, &[1], 1);
    step(
        &mut r,
        append(1, 2, 1, (1, 1), vec![ent(1, 2), ent(1, 3)], 2),
    );
    assert_eq!(r.leader(), Some(1));
    assert_eq!(r.take_messages(), vec![]);
    assert_eq!(r.commit_index(), 2);
    let batch = r.take_persist_batch().expect("new entries");
    assert_eq!(batch.hard_state, None);
    assert_eq!(batch.entries, vec![ent(1, 2), ent(1, 3)]);
    assert_eq!(batch.messages, vec![ack(2, 1, 3, 0)]);
    assert_eq!(
        batch.token,
        PersistToken {
            seq: 1,
            last: LogPosition { term: 1, index: 3 }
        }
    );
}

#[test]
fn follower_commit_is_bounded_by_the_verified_prefix() {
    let mut r = node(2, 3, &[1, 1, 1], 1);
    // The leader has committed 3, but this message only proves entries up to 1 match.
    step(&mut r, append(1, 2, 1, (1, 1), vec![], 3));
    assert_eq!(r.commit_index(), 1);
    assert_eq!(r.take_messages(), vec![ack(2, 1, 1, 0)]);
}

#[test]
fn conflicting_suffix_is_truncated_and_the_batch_starts_at_the_first_replaced_index() {
    let mut r = node(2, 3, &[1, 1, 2, 2], 2);
    assert_eq!(r.durable_index(), 4);
    step(&mut r, append(1, 2, 3, (1, 2), vec![ent(3, 3)], 2));
    assert_eq!(r.last_position(), LogPosition { term: 3, index: 3 });
    assert_eq!(
        r.durable_index(),
        2,
        "durable index drops to the truncation point - 1"
    );
    let batch = r.take_persist_batch().expect("replacement");
    assert_eq!(
        batch.hard_state,
        Some(HardState {
            current_term: 3,
            voted_for: None
        })
    );
    assert_eq!(batch.entries, vec![ent(3, 3)]);
    assert_eq!(batch.messages, vec![ack(2, 3, 3, 0)]);
}

#[test]
fn stale_duplicate_append_never_truncates_matching_entries() {
    let mut r = node(2, 3, &[1, 1, 1, 1], 1);
    // A delayed copy of an earlier message: its entries match ours, and ours go further.
    step(&mut r, append(1, 2, 1, (1, 1), vec![ent(1, 2)], 0));
    assert_eq!(r.last_position(), LogPosition { term: 1, index: 4 });
    assert!(!r.has_persist_work(), "nothing changed, nothing to persist");
    assert_eq!(r.take_messages(), vec![ack(2, 1, 2, 0)]);
}

#[test]
fn rejection_hint_names_the_conflicting_term_and_its_first_index() {
    let mut r = node(2, 3, &[1, 1, 2, 2, 2], 3);
    step(&mut r, append(1, 2, 3, (3, 5), vec![], 0));
    let hint = ConflictHint {
        term: Some(2),
        first_index: 3,
    };
    assert_eq!(
        r.take_messages(),
        vec![msg(2, 1, 3, reject(2, 3, 5, hint).body)]
    );

    step(&mut r, append(1, 2, 3, (3, 9), vec![], 0));
    let hint = ConflictHint {
        term: None,
        first_index: 6,
    };
    assert_eq!(
        r.take_messages(),
        vec![msg(2, 1, 3, reject(2, 3, 9, hint).body)]
    );
}

#[test]
fn leader_backs_up_a_whole_term_per_rejection() {
    // Leader log [1, 1, 3, 3] + noop(4) at 5; follower 2 holds [1, 1, 2, 2, 2].
    let cases = [
        // Follower's term 2 is unknown to the leader: retry from its first index.
        (
            ConflictHint {
                term: Some(2),
                first_index: 3,
            },
            (1, 2),
            vec![ent(3, 3), ent(3, 4), noop(4, 5)],
        ),
        // The leader has term 1 up to 2: retry just after it.
        (
            ConflictHint {
                term: Some(1),
                first_index: 1,
            },
            (1, 2),
            vec![ent(3, 3), ent(3, 4), noop(4, 5)],
        ),
        // The follower's log is short: retry from its end.
        (
            ConflictHint {
                term: None,
                first_index: 2,
            },
            (1, 1),
            vec![ent(1, 2), ent(3, 3), ent(3, 4)],
        ),
    ];
    for (hint, prev, entries) in cases {
        let mut r = leader(3, &[1, 1, 3, 3], 3);
        step(&mut r, reject(2, 4, 4, hint));
        assert_eq!(
            r.take_messages(),
            vec![append(1, 2, 4, prev, entries, 0)],
            "hint {hint:?}"
        );
        // A duplicate of the same rejection is stale now.
        step(&mut r, reject(2, 4, 4, hint));
        assert_eq!(r.take_messages(), vec![], "hint {hint:?}");
    }
}

#[test]
fn figure_8_leader_never_commits_an_old_term_entry_by_counting_replicas() {
    // Entry 2 is from term 2; the leader of term 4 finds it on every member.
    let mut r = leader(3, &[1, 2], 3);
    assert_eq!(r.entries_from(3), &[noop(4, 3)]);
    step(&mut r, ack(2, 4, 2, 0));
    step(&mut r, ack(3, 4, 2, 0));
    assert_eq!(
        r.commit_index(),
        0,
        "§5.4.2: replicas of a term-2 entry do not commit it"
    );
    persist_all(&mut r);
    assert_eq!(r.commit_index(), 0);
    // The noop of term 4 on a majority commits it, and entry 2 with it.
    step(&mut r, ack(2, 4, 3, 0));
    assert_eq!(r.commit_index(), 3);
    assert_eq!(r.take_committed(2), vec![ent(1, 1), ent(2, 2)]);
    assert_eq!(r.take_committed(2), vec![noop(4, 3)]);
    assert!(!r.has_committed());
}

#[test]
fn leader_counts_itself_only_up_to_its_durable_index() {
    let mut r = leader(3, &[], 0);
    step(&mut r, ack(2, 1, 1, 0));
    assert_eq!(
        r.commit_index(),
        0,
        "one follower and a non-durable leader are not a majority"
    );
    let batch = r.take_persist_batch().expect("the noop");
    assert_eq!(batch.entries, vec![noop(1, 1)]);
    r.on_persisted(batch.token, 0);
    assert_eq!(r.commit_index(), 1);
}

#[test]
fn heartbeat_prev_is_the_match_index_and_unanswered_probes_are_resent() {
    let mut r = leader(3, &[], 0);
    persist_all(&mut r);
    step(&mut r, ack(2, 1, 1, 0));
    assert_eq!(r.commit_index(), 1);
    let t = r.next_tick_ms();
    r.tick(t - 1);
    assert_eq!(r.take_messages(), vec![]);
    r.tick(t);
    // Peer 2 has everything: a heartbeat at its match index. Peer 3 never answered
    // the noop probe: it is sent again.
    let expected = vec![
        append(1, 2, 1, (1, 1), vec![], 1),
        append(1, 3, 1, (0, 0), vec![noop(1, 1)], 1),
    ];
    assert_eq!(r.take_messages(), expected);
    assert_eq!(r.next_tick_ms(), t + 50);
}

#[test]
fn inflight_window_bounds_pipelining_and_acks_release_the_rest() {
    let mut r = leader(3, &[], 0);
    step(&mut r, ack(2, 1, 1, 0)); // peer 2 now replicates; peer 3 still probes
    r.take_messages();
    for k in 0..3u8 {
        r.propose(vec![k], 0).expect("leader");
    }
    let e = |index: Index, k: u8| Entry {
        term: 1,
        index,
        payload: Payload::Command(vec![k]),
    };
    // Two in flight to peer 2 (the window), none to peer 3 (its probe is unanswered).
    let expected = vec![
        append(1, 2, 1, (1, 1), vec![e(2, 0)], 0),
        append(1, 2, 1, (1, 2), vec![e(3, 1)], 0),
    ];
    assert_eq!(r.take_messages(), expected);
    step(&mut r, ack(2, 1, 2, 0));
    assert_eq!(
        r.take_messages(),
        vec![append(1, 2, 1, (1, 3), vec![e(4, 2)], 0)]
    );
    // Peer 3 answers its probe, which commits the noop (two followers hold it):
    // everything it lacks goes out, at most 3 entries per message.
    step(&mut r, ack(3, 1, 1, 0));
    let expected = vec![append(1, 3, 1, (1, 1), vec![e(2, 0), e(3, 1), e(4, 2)], 1)];
    assert_eq!(r.take_messages(), expected);
}

#[test]
fn appends_are_bounded_by_bytes_but_carry_at_least_one_entry() {
    let mut r = leader(3, &[], 0);
    r.config.max_bytes_per_append = 60; // 24 bytes of overhead + payload per entry
    for k in 0..3u8 {
        r.propose(vec![k; 20], 0).expect("leader");
    }
    r.take_messages();
    step(&mut r, ack(2, 1, 1, 0));
    let sizes: Vec<usize> = r
        .take_messages()
        .into_iter()
        .map(|m| match m.body {
            MessageBody::AppendEntries { entries, .. } => entries.len(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(
        sizes,
        vec![1, 1],
        "44-byte entries, 60-byte limit, window of 2"
    );
}

#[test]
fn lost_pipelined_appends_are_resent_after_two_silent_intervals() {
    let mut r = leader(3, &[], 0);
    step(&mut r, ack(2, 1, 1, 0));
    step(&mut r, ack(3, 1, 1, 0));
    let t0 = r.now_ms;
    r.propose(b"a".to_vec(), t0).expect("leader");
    r.take_messages(); // lost
    r.tick(t0 + 50);
    // Acks may still be on their way: only heartbeats (the noop is committed: 1).
    let heartbeats = vec![
        append(1, 2, 1, (1, 1), vec![], 1),
        append(1, 3, 1, (1, 1), vec![], 1),
    ];
    assert_eq!(r.take_messages(), heartbeats);
    r.tick(t0 + 100);
    let a = Entry {
        term: 1,
        index: 2,
        payload: Payload::Command(b"a".to_vec()),
    };
    let resent = vec![
        append(1, 2, 1, (1, 1), vec![a.clone()], 1),
        append(1, 3, 1, (1, 1), vec![a], 1),
    ];
    assert_eq!(r.take_messages(), resent);
    r.check_invariants();
}

#[test]
fn responses_claiming_entries_the_leader_never_had_are_dropped() {
    let mut r = leader(3, &[], 0);
    step(&mut r, ack(2, 1, 9, 0));
    let hint = ConflictHint {
        term: None,
        first_index: 1,
    };
    step(&mut r, reject(3, 1, 9, hint));
    assert_eq!(r.status().match_index, vec![(2, 0), (3, 0)]);
    assert_eq!(r.take_messages(), vec![]);
}

#[test]
fn a_heartbeat_ack_does_not_answer_the_probe_in_flight() {
    // Leader of term 2 over [1]: its no-op (2, 2) is in flight to 2 and 3 as a probe.
    let mut r = leader(3, &[1], 1);
    persist_all(&mut r);
    // 2 answers a heartbeat at its match index 0: not the probe.
    step(&mut r, ack(2, 2, 0, 0));
    let resent: Vec<Message> = r
        .take_messages()
        .into_iter()
        .filter(|m| matches!(&m.body, MessageBody::AppendEntries { entries, .. } if !entries.is_empty()))
        .collect();
    assert_eq!(resent, vec![], "a heartbeat ack resent the probe");
    // The probe's own answer moves it to replicate.
    step(&mut r, ack(2, 2, 2, 0));
    assert_eq!(r.status().match_index, vec![(2, 2), (3, 0)]);
}
