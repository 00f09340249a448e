//! Persist batches: their contents, ordering of dependent messages, `on_persisted`.

use super::*;

#[test]
fn confirmation_of_a_replaced_entry_does_not_make_its_replacement_durable() {
    let mut r = node(2, 3, &[], 1);
    step(
        &mut r,
        append(1, 2, 1, (0, 0), vec![ent(1, 1), ent(1, 2)], 0),
    );
    let first = r.take_persist_batch().expect("entries 1..2");
    assert_eq!(first.messages, vec![ack(2, 1, 2, 0)]);
    // A new leader replaces entry 2 before storage has confirmed the first batch.
    step(&mut r, append(3, 2, 2, (1, 1), vec![ent(2, 2)], 0));
    let second = r.take_persist_batch().expect("the replacement");
    assert_eq!(second.entries, vec![ent(2, 2)]);
    assert_eq!(second.messages, vec![msg(2, 3, 2, ack(2, 2, 2, 0).body)]);
    r.on_persisted(first.token, 0);
    // Entry (1, 2) is gone, so the confirmation is ignored (etcd's stableTo check).
    // Conservative: entry 1 is durable too, but only the next confirmation says so.
    assert_eq!(r.durable_index(), 0);
    r.on_persisted(second.token, 0);
    assert_eq!(r.durable_index(), 2);
    r.check_invariants();
}

#[test]
fn a_writer_that_waits_for_each_write_gets_one_batch_for_everything_since() {
    let mut r = node(2, 3, &[], 1);
    step(&mut r, append(1, 2, 1, (0, 0), vec![ent(1, 1)], 0));
    let first = r.take_persist_batch().expect("entry 1");
    step(&mut r, append(1, 2, 1, (1, 1), vec![ent(1, 2)], 0));
    step(
        &mut r,
        append(1, 2, 1, (1, 2), vec![ent(1, 3), ent(1, 4)], 0),
    );
    r.on_persisted(first.token, 0);
    let second = r.take_persist_batch().expect("everything since");
    assert_eq!(second.entries, vec![ent(1, 2), ent(1, 3), ent(1, 4)]);
    assert_eq!(second.messages, vec![ack(2, 1, 2, 0), ack(2, 1, 4, 0)]);
    assert_eq!(
        second.token,
        PersistToken {
            seq: 2,
            last: LogPosition { term: 1, index: 4 }
        }
    );
    assert_eq!(r.take_persist_batch(), None);
}

#[test]
fn replies_wait_behind_an_unconfirmed_batch_and_go_out_at_once_when_all_is_durable() {
    let mut r = node(2, 3, &[], 1);
    step(&mut r, append(1, 2, 1, (0, 0), vec![ent(1, 1)], 0));
    let first = r.take_persist_batch().expect("entry 1");
    // A heartbeat while entry 1 is still being written: its ack claims entry 1.
    step(&mut r, append(1, 2, 1, (1, 1), vec![], 1));
    assert_eq!(r.take_messages(), vec![]);
    r.on_persisted(first.token, 0);
    let second = r
        .take_persist_batch()
        .expect("the ack rides a message-only batch");
    assert_eq!((second.hard_state, second.entries.len()), (None, 0));
    assert_eq!(second.messages, vec![ack(2, 1, 1, 0)]);
    assert_eq!(second.token.last, LogPosition { term: 1, index: 1 });
    r.on_persisted(second.token, 0);
    step(&mut r, append(1, 2, 1, (1, 1), vec![], 1));
    assert_eq!(r.take_messages(), vec![ack(2, 1, 1, 0)]);
    assert!(!r.has_persist_work());
}

#[test]
#[should_panic(expected = "batches must be persisted in order")]
fn confirming_batches_out_of_order_is_a_bug() {
    let mut r = node(2, 3, &[], 1);
    step(&mut r, append(1, 2, 1, (0, 0), vec![ent(1, 1)], 0));
    let _first = r.take_persist_batch().expect("entry 1");
    step(&mut r, append(1, 2, 1, (1, 1), vec![ent(1, 2)], 0));
    let second = r.take_persist_batch().expect("entry 2");
    r.on_persisted(second.token, 0);
}

#[test]
fn status_reports_every_field_and_peer_progress_on_a_leader() {
    let mut r = leader(3, &[1], 1);
    persist_all(&mut r);
    step(&mut r, ack(3, 2, 2, 0));
    r.take_committed(1);
    let expected = Status {
        id: 1,
        role: Role::Leader,
        term: 2,
        leader: Some(1),
        commit_index: 2,
        applied_index: 1,
        first_index: 1,
        last_index: 2,
        snapshot_index: 0,
        match_index: vec![(2, 0), (3, 2)],
        voters: vec![1, 2, 3],
        learners: vec![],
    };
    assert_eq!(r.status(), expected);
}

#[test]
fn answers_waiting_for_a_stalled_disk_are_bounded() {
    let mut r = node(2, 3, &[], 1);
    step(&mut r, append(1, 2, 1, (0, 0), vec![ent(1, 1)], 0));
    // The disk stalls on this batch; the leader's heartbeats keep coming.
    let stalled = r.take_persist_batch().expect("entry 1");
    let limit = super::super::persist::MAX_WAITING_MESSAGES;
    for _ in 0..limit + 10 {
        step(&mut r, append(1, 2, 1, (1, 1), vec![], 0));
    }
    assert_eq!(r.dropped_waiting_messages(), 10);
    r.on_persisted(stalled.token, 0);
    let next = r.take_persist_batch().expect("the waiting answers");
    assert_eq!(next.messages.len(), limit);
    assert!(next.messages.iter().all(|m| *m == ack(2, 1, 1, 0)));
}
