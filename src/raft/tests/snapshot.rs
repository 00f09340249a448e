//! Compaction and InstallSnapshot (§7): the leader's chunk requests, the follower's
//! acceptance, installation and answers.

use super::*;

fn pos(term: Term, index: Index) -> LogPosition {
    LogPosition { term, index }
}

fn chunk_request(to: NodeId, term: Term, last: LogPosition, offset: u64) -> Message {
    msg(
        1,
        to,
        term,
        MessageBody::InstallSnapshot {
            last,
            membership: Membership::bootstrap([1, 2, 3]),
            offset,
            data: Vec::new(),
            done: false,
        },
    )
}

fn snapshot_reply(
    from: NodeId,
    to: NodeId,
    term: Term,
    last: LogPosition,
    next: u64,
    done: bool,
) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::InstallSnapshotResponse {
            last,
            next_offset: next,
            done,
        },
    )
}

/// A leader of term 2 over [1,1,1,1] + its no-op at 5, everything committed and
/// applied (with 2's help), compacted through 4.
fn compacted_leader() -> Raft {
    let mut r = leader(3, &[1, 1, 1, 1], 1);
    persist_all(&mut r);
    step(&mut r, ack(2, 2, 5, 0));
    assert_eq!(r.commit_index(), 5);
    assert_eq!(r.take_committed(100).len(), 5);
    r.compact(pos(1, 4));
    r.check_invariants();
    r.take_messages();
    r
}

#[test]
fn compaction_moves_the_base_and_keeps_the_entries_after_it() {
    let r = compacted_leader();
    assert_eq!(r.log_base(), pos(1, 4));
    let status = r.status();
    assert_eq!((status.first_index, status.last_index), (5, 5));
    assert_eq!(status.snapshot_index, 4);
    assert_eq!(r.entries_from(5).len(), 1);
}

#[test]
fn compaction_can_keep_trailing_entries_for_a_follower_a_little_behind() {
    let mut r = leader(3, &[1, 1, 1, 1], 1);
    persist_all(&mut r);
    step(&mut r, ack(2, 2, 5, 0));
    assert_eq!(r.take_committed(100).len(), 5);
    r.compact_keeping(pos(1, 4), 2, u64::MAX);
    r.check_invariants();
    r.take_messages();
    // The snapshot covers 4, the log still holds 3 and 4 before it.
    assert_eq!(r.log_base(), pos(1, 2));
    assert_eq!(r.snapshot_position(), pos(1, 4));
    let status = r.status();
    assert_eq!((status.first_index, status.snapshot_index), (3, 4));
    // Node 3 holds 1..=2: it is sent entries 3..=5, not the snapshot.
    let behind = msg(
        3,
        1,
        2,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 4,
            conflict: Some(ConflictHint {
                term: None,
                first_index: 3,
            }),
            read_round: 0,
            check: None,
        },
    );
    step(&mut r, behind);
    let noop = Entry {
        term: 2,
        index: 5,
        payload: Payload::Noop,
    };
    let expected = append(1, 3, 2, (1, 2), vec![ent(1, 3), ent(1, 4), noop], 5);
    assert_eq!(r.take_messages(), vec![expected]);
    // A later snapshot with no trailing entries moves the base to it; one that is
    // not newer changes nothing.
    r.compact_keeping(pos(1, 3), 0, 0);
    assert_eq!(
        (r.log_base(), r.snapshot_position()),
        (pos(1, 2), pos(1, 4))
    );
    r.compact(pos(1, 4));
    assert_eq!(
        (r.log_base(), r.snapshot_position()),
        (pos(1, 2), pos(1, 4))
    );
}

#[test]
fn trailing_entries_are_capped_by_bytes() {
    let mut r = leader(3, &[1, 1, 1, 1], 1);
    persist_all(&mut r);
    step(&mut r, ack(2, 2, 5, 0));
    assert_eq!(r.take_committed(100).len(), 5);
    // Each entry counts 24 + 2 bytes: a cap of 60 keeps two of the four asked for.
    r.compact_keeping(pos(1, 4), 4, 60);
    r.check_invariants();
    assert_eq!(r.log_base(), pos(1, 2));
    assert_eq!(r.snapshot_position(), pos(1, 4));
}

#[test]
fn a_follower_that_needs_compacted_entries_is_sent_the_snapshot_in_chunks() {
    let mut r = compacted_leader();
    // Node 3 has nothing: its rejection sends the leader below the base.
    step(&mut r, reject_from_empty(3, 2, 4));
    assert_eq!(r.take_messages(), vec![chunk_request(3, 2, pos(1, 4), 0)]);
    // One chunk in flight: a heartbeat tick sends nothing more.
    step(&mut r, snapshot_reply(3, 1, 2, pos(1, 4), 10, false));
    assert_eq!(r.take_messages(), vec![chunk_request(3, 2, pos(1, 4), 10)]);
    // A stale answer about another snapshot is ignored.
    step(&mut r, snapshot_reply(3, 1, 2, pos(1, 3), 99, false));
    assert_eq!(r.take_messages(), vec![]);
    // Installed: replication resumes after the snapshot.
    step(&mut r, snapshot_reply(3, 1, 2, pos(1, 4), 0, true));
    assert_eq!(
        r.take_messages(),
        vec![append(
            1,
            3,
            2,
            (1, 4),
            vec![Entry {
                term: 2,
                index: 5,
                payload: Payload::Noop
            }],
            5
        )]
    );
    assert_eq!(r.status().match_index, vec![(2, 5), (3, 4)]);
}

#[test]
fn a_lost_chunk_is_asked_for_again() {
    let mut r = compacted_leader();
    step(&mut r, reject_from_empty(3, 2, 4));
    r.take_messages();
    let later = r.now_ms + 120; // past the retransmit timeout, within check-quorum
    r.tick(later);
    r.check_invariants();
    assert!(
        r.take_messages()
            .contains(&chunk_request(3, 2, pos(1, 4), 0)),
        "no retransmission of the chunk"
    );
}

fn chunk(last: LogPosition, offset: u64, data: &[u8], done: bool) -> Message {
    msg(
        1,
        2,
        3,
        MessageBody::InstallSnapshot {
            last,
            membership: Membership::bootstrap([1, 2, 3]),
            offset,
            data: data.to_vec(),
            done,
        },
    )
}

#[test]
fn a_follower_writes_chunks_in_order_and_answers_after_each_is_written() {
    let mut r = node(2, 3, &[1, 1], 3);
    let last = pos(3, 10);
    step(&mut r, chunk(last, 0, b"abc", false));
    assert_eq!(r.take_messages(), vec![], "the answer waits for the write");
    let batch = r.take_persist_batch().expect("a batch with the chunk");
    assert_eq!(
        batch.snapshot_chunks,
        vec![SnapshotChunk {
            last,
            offset: 0,
            data: b"abc".to_vec(),
            done: false
        }]
    );
    assert_eq!(
        batch.messages,
        vec![snapshot_reply(2, 1, 3, last, 3, false)]
    );
    r.on_persisted(batch.token, 0);
    // Out of order: told where to resume, nothing written.
    step(&mut r, chunk(last, 7, b"zz", false));
    assert_eq!(
        r.take_messages(),
        vec![snapshot_reply(2, 1, 3, last, 3, false)]
    );
    assert!(r.take_persist_batch().is_none());
    // The final chunk: written, but answered only once installed.
    step(&mut r, chunk(last, 3, b"def", true));
    let batch = r
        .take_persist_batch()
        .expect("a batch with the final chunk");
    assert_eq!(batch.snapshot_chunks.len(), 1);
    assert!(batch.messages.is_empty());
    r.on_persisted(batch.token, 0);
    assert!(
        r.snapshot_installed(last, 0),
        "the state machine must be replaced"
    );
    r.check_invariants();
    assert_eq!(r.log_base(), last);
    assert_eq!((r.commit_index(), r.status().applied_index), (10, 10));
    assert_eq!(
        r.status().last_index,
        10,
        "a log that did not hold the snapshot is discarded"
    );
    assert_eq!(
        r.take_messages(),
        vec![snapshot_reply(2, 1, 3, last, 0, true)]
    );
}

#[test]
fn a_snapshot_the_follower_already_committed_is_answered_done_at_once() {
    let mut r = node(2, 3, &[1, 1, 1], 1);
    step(&mut r, append(1, 2, 1, (1, 3), vec![], 3));
    persist_all(&mut r);
    r.take_messages();
    step(
        &mut r,
        msg(
            1,
            2,
            1,
            MessageBody::InstallSnapshot {
                last: pos(1, 2),
                membership: Membership::bootstrap([1, 2, 3]),
                offset: 0,
                data: b"x".to_vec(),
                done: true,
            },
        ),
    );
    assert_eq!(
        r.take_messages(),
        vec![snapshot_reply(2, 1, 1, pos(1, 2), 0, true)]
    );
    assert!(r.take_persist_batch().is_none(), "nothing to write");
}

#[test]
fn an_installed_snapshot_the_log_holds_keeps_the_entries_after_it() {
    let mut r = node(2, 3, &[1, 1, 1, 1], 1);
    step(&mut r, chunk_for_term(1, pos(1, 2)));
    let batch = r.take_persist_batch().expect("batch");
    r.on_persisted(batch.token, 0);
    assert!(r.snapshot_installed(pos(1, 2), 0));
    r.check_invariants();
    assert_eq!(r.log_base(), pos(1, 2));
    assert_eq!(r.status().last_index, 4);
}

fn chunk_for_term(term: Term, last: LogPosition) -> Message {
    msg(
        1,
        2,
        term,
        MessageBody::InstallSnapshot {
            last,
            membership: Membership::bootstrap([1, 2, 3]),
            offset: 0,
            data: b"all".to_vec(),
            done: true,
        },
    )
}

#[test]
fn a_rejected_transfer_starts_over() {
    let mut r = node(2, 3, &[], 2);
    let last = pos(2, 5);
    step(&mut r, chunk_for_term(2, last));
    let batch = r.take_persist_batch().expect("batch");
    r.on_persisted(batch.token, 0);
    r.snapshot_rejected(last);
    assert_eq!(r.incoming_snapshot(), None);
    let mut again = chunk_for_term(2, last);
    if let MessageBody::InstallSnapshot { offset, .. } = &mut again.body {
        *offset = 3;
    }
    step(&mut r, again);
    assert_eq!(
        r.take_messages(),
        vec![snapshot_reply(2, 1, 2, last, 0, false)]
    );
}

#[test]
fn an_append_below_the_base_is_matched_from_the_base() {
    let mut r = node(2, 3, &[1, 1, 1], 1);
    step(&mut r, chunk_for_term(1, pos(1, 3)));
    let batch = r.take_persist_batch().expect("batch");
    r.on_persisted(batch.token, 0);
    r.snapshot_installed(pos(1, 3), 0);
    persist_all(&mut r);
    r.take_messages();
    // prev 1 is below the base 3: entries 2..=3 are skipped, 4 is appended.
    step(
        &mut r,
        append(1, 2, 1, (1, 1), vec![ent(1, 2), ent(1, 3), ent(1, 4)], 3),
    );
    let released = persist_all(&mut r);
    assert_eq!(released, vec![ack(2, 1, 4, 0)]);
    assert_eq!(r.status().last_index, 4);
}

/// Seen under the nemesis (3 nodes, --snapshot-entries 500): a follower accepted the
/// whole snapshot at 5502 and then, before its writer took the batch, the first and
/// final chunk of a newer one at 7502. Both landed in one batch; the runtime wrote
/// them in order (the second starting `snapshot.recv` over) and then tried to install
/// the *first* completed transfer, found 7502 in the file and rejected it, which left
/// Raft waiting forever for 7502 to be installed (a retry of 7502 is ignored as
/// "installing it already"). Only the batch's last transfer may be installed.
#[test]
fn a_batch_with_two_completed_transfers_installs_the_last() {
    let mut r = node(2, 3, &[], 3);
    let (older, newer) = (pos(3, 5), pos(3, 7));
    step(&mut r, chunk(older, 0, b"old", true));
    step(&mut r, chunk(newer, 0, b"new", true));
    let batch = r.take_persist_batch().expect("a batch with both transfers");
    assert_eq!(batch.snapshot_chunks.len(), 2);
    assert_eq!(batch.snapshot_to_install(), Some(newer));
    r.on_persisted(batch.token, 0);
    assert!(r.snapshot_installed(newer, 0));
    r.check_invariants();
    assert_eq!(r.log_base(), newer);
    assert_eq!(
        r.take_messages(),
        vec![snapshot_reply(2, 1, 3, newer, 0, true)],
        "the leader learns the newer snapshot is in"
    );
}

#[test]
fn a_batch_that_starts_a_newer_transfer_installs_nothing() {
    let mut r = node(2, 3, &[], 3);
    step(&mut r, chunk(pos(3, 5), 0, b"old", true));
    step(&mut r, chunk(pos(3, 7), 0, b"ne", false));
    let batch = r.take_persist_batch().expect("a batch with both chunks");
    assert_eq!(batch.snapshot_to_install(), None);
    assert_eq!(r.incoming_snapshot(), Some((pos(3, 7), 2)));
}

/// The cross-batch form of the case above: the writer installs 5 while a batch with
/// the first chunk of 7 waits. The transfer of 7 must survive the install of 5 (it
/// used to be dropped, and the leader told to start over at offset 0).
#[test]
fn installing_a_snapshot_keeps_a_newer_transfer_in_progress() {
    let mut r = node(2, 3, &[], 3);
    let (older, newer) = (pos(3, 5), pos(3, 7));
    step(&mut r, chunk(older, 0, b"old", true));
    let first = r.take_persist_batch().expect("the older transfer");
    step(&mut r, chunk(newer, 0, b"ne", false));
    let second = r
        .take_persist_batch()
        .expect("the newer transfer's first chunk");
    r.on_persisted(first.token, 0);
    assert!(r.snapshot_installed(older, 0));
    assert_eq!(r.incoming_snapshot(), Some((newer, 2)));
    r.on_persisted(second.token, 0);
    r.take_messages();
    step(&mut r, chunk(newer, 2, b"w", true));
    let last = r.take_persist_batch().expect("the final chunk is accepted");
    assert_eq!(last.snapshot_to_install(), Some(newer));
    r.on_persisted(last.token, 0);
    assert!(r.snapshot_installed(newer, 0));
    r.check_invariants();
    assert_eq!(
        r.take_messages(),
        vec![snapshot_reply(2, 1, 3, newer, 0, true)]
    );
}

/// Follower 2 in term 2 that accepted the final chunk of the snapshot (1, 4) from 1.
fn follower_installing() -> Raft {
    let mut r = node(2, 3, &[], 1);
    step(&mut r, chunk_for_term(2, pos(1, 4)));
    let batch = r.take_persist_batch().expect("the chunk");
    assert_eq!(batch.snapshot_to_install(), Some(pos(1, 4)));
    r.on_persisted(batch.token, 0);
    r
}

#[test]
fn the_done_answer_goes_to_the_leader_that_now_sends_the_snapshot() {
    let mut r = follower_installing();
    // Leader 3 of term 3 sends a chunk of the same snapshot while it is installed.
    let mut again = chunk_for_term(3, pos(1, 4));
    again.from = 3;
    step(&mut r, again);
    persist_all(&mut r);
    r.take_messages();
    r.snapshot_installed(pos(1, 4), 0);
    let done = snapshot_reply(2, 3, 3, pos(1, 4), 0, true);
    let mut sent = r.take_messages();
    sent.extend(persist_all(&mut r));
    assert_eq!(sent, vec![done]);
}

#[test]
fn the_done_answer_goes_to_the_current_leader_not_the_old_one() {
    let mut r = follower_installing();
    // Leader 3 of term 3 is heard from (a heartbeat) before the install finishes.
    step(
        &mut r,
        msg(3, 2, 3, append(3, 2, 3, (0, 0), vec![], 0).body),
    );
    persist_all(&mut r);
    r.take_messages();
    r.snapshot_installed(pos(1, 4), 0);
    let mut sent = r.take_messages();
    sent.extend(persist_all(&mut r));
    assert_eq!(sent, vec![snapshot_reply(2, 3, 3, pos(1, 4), 0, true)]);
}

#[test]
fn a_duplicate_answer_does_not_resend_the_chunk_in_flight() {
    let mut r = compacted_leader();
    step(&mut r, reject_from_empty(3, 2, 4));
    assert_eq!(r.take_messages(), vec![chunk_request(3, 2, pos(1, 4), 0)]);
    let answer = snapshot_reply(3, 1, 2, pos(1, 4), 10, false);
    step(&mut r, answer.clone());
    assert_eq!(r.take_messages(), vec![chunk_request(3, 2, pos(1, 4), 10)]);
    // The network duplicated the answer: the chunk it asks for is already in
    // flight. Resending it would start a second chunk/answer exchange, and each
    // further duplicate another (seed 1445 of the sweep: millions of messages).
    step(&mut r, answer);
    assert_eq!(r.take_messages(), vec![]);
    // The in-flight chunk's own answer moves the transfer on.
    step(&mut r, snapshot_reply(3, 1, 2, pos(1, 4), 20, false));
    assert_eq!(r.take_messages(), vec![chunk_request(3, 2, pos(1, 4), 20)]);
}
