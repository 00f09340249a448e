//! Messages no correct peer sends (issue 13, major 5): each is dropped without an
//! acknowledgement, reported as a peer fault naming the sender, and leaves this
//! member's state as it was. Never a panic.

use super::*;

/// Everything `r` would send now or after persisting.
fn sent(r: &mut Raft) -> Vec<Message> {
    let mut out = r.take_messages();
    out.extend(persist_all(r));
    out
}

/// Asserts exactly one fault, from `peer`, whose text contains `needle`.
fn assert_fault(r: &mut Raft, peer: NodeId, needle: &str) {
    let faults = r.take_peer_faults();
    assert_eq!(faults.faults.len(), 1, "{faults:?}");
    let fault = &faults.faults[0];
    assert_eq!(fault.peer, peer);
    assert!(
        fault.to_string().contains(needle) && fault.to_string().contains(&format!("n{peer}")),
        "{fault}"
    );
}

/// Follower 2 of term 2 whose log [1, 1, 2] is committed through 3, following 1.
fn committed_follower() -> Raft {
    let mut r = node(2, 3, &[1, 1, 2], 2);
    step(&mut r, append(1, 2, 2, (2, 3), vec![], 3));
    assert_eq!(r.commit_index(), 3);
    sent(&mut r);
    r
}

#[test]
fn an_entry_that_conflicts_with_a_committed_one_is_dropped_and_reported() {
    let mut r = committed_follower();
    step(&mut r, append(1, 2, 3, (1, 2), vec![ent(3, 3)], 3));
    assert_eq!(sent(&mut r), vec![], "acknowledged");
    assert_fault(&mut r, 1, "conflicts with the committed entry");
    assert_eq!(r.last_position(), LogPosition { term: 2, index: 3 });
    assert_eq!(r.commit_index(), 3);
}

#[test]
fn a_second_leader_in_the_term_is_dropped_and_reported() {
    // We lead term 2; 2 claims to lead it too.
    let mut r = leader(3, &[1], 1);
    step(&mut r, append(2, 1, 2, (1, 1), vec![], 1));
    assert_eq!(r.role(), Role::Leader);
    assert_eq!(r.take_messages(), vec![], "answered");
    assert_fault(&mut r, 2, "which n1 leads");
    // We follow 1 in term 2; 3 claims to lead it too.
    let mut f = committed_follower();
    step(&mut f, append(3, 2, 2, (2, 3), vec![ent(2, 4)], 4));
    assert_eq!(sent(&mut f), vec![]);
    assert_fault(&mut f, 3, "which n1 leads");
    assert_eq!((f.leader(), f.last_position().index), (Some(1), 3));
}

#[test]
fn a_snapshot_from_a_second_leader_is_dropped_and_reported() {
    let mut r = leader(3, &[1], 1);
    let chunk = MessageBody::InstallSnapshot {
        last: LogPosition { term: 1, index: 1 },
        membership: Membership::bootstrap([1, 2, 3]),
        offset: 0,
        data: vec![1],
        done: true,
    };
    step(&mut r, msg(3, 1, 2, chunk));
    assert_eq!(r.role(), Role::Leader);
    assert_eq!(sent(&mut r).len(), 0);
    assert_fault(&mut r, 3, "which n1 leads");
}

#[test]
fn an_append_that_disagrees_with_the_committed_base_is_not_acknowledged() {
    let mut r = node(2, 3, &[1, 1, 1, 1], 1);
    step(&mut r, append(1, 2, 1, (1, 4), vec![], 4));
    r.take_committed(10);
    r.compact(LogPosition { term: 1, index: 4 });
    sent(&mut r);
    // prev (1, 2) below the base; its entry at the base index 4 has term 2.
    step(
        &mut r,
        append(1, 2, 2, (1, 2), vec![ent(1, 3), ent(2, 4)], 4),
    );
    assert_eq!(sent(&mut r), vec![], "a malformed append was acknowledged");
    assert_fault(&mut r, 1, "committed entry there has term 1");
    assert_eq!(r.last_position(), LogPosition { term: 1, index: 4 });
}

#[test]
fn indexes_and_terms_near_u64_max_are_dropped_and_reported() {
    let mut r = committed_follower();
    let huge = append(1, 2, 2, (2, u64::MAX), vec![ent(2, 0)], u64::MAX);
    step(&mut r, huge);
    assert_eq!(sent(&mut r), vec![]);
    assert_fault(&mut r, 1, "prev index");
    let wraps = append(1, 2, 2, (2, MAX_INDEX), vec![ent(2, MAX_INDEX + 1)], 0);
    step(&mut r, wraps);
    assert_eq!(sent(&mut r), vec![]);
    assert_fault(&mut r, 1, "after index");
    step(&mut r, append(1, 2, u64::MAX, (2, 3), vec![], 3));
    assert_eq!(sent(&mut r), vec![]);
    assert_fault(&mut r, 1, "term above");
    assert_eq!(r.term(), 2);
    let far = MessageBody::InstallSnapshot {
        last: LogPosition { term: 2, index: 10 },
        membership: Membership::bootstrap([1, 2, 3]),
        offset: u64::MAX,
        data: vec![1],
        done: false,
    };
    step(&mut r, msg(1, 2, 2, far));
    assert_eq!(sent(&mut r), vec![]);
    assert_fault(&mut r, 1, "past u64");
    assert_eq!((r.last_position().index, r.commit_index()), (3, 3));
}

#[test]
fn a_snapshot_that_conflicts_with_committed_entries_is_not_acknowledged() {
    let mut r = committed_follower();
    let chunk = MessageBody::InstallSnapshot {
        last: LogPosition { term: 1, index: 3 },
        membership: Membership::bootstrap([1, 2, 3]),
        offset: 0,
        data: vec![],
        done: true,
    };
    step(&mut r, msg(1, 2, 2, chunk));
    assert_eq!(sent(&mut r), vec![], "answered done");
    assert_fault(&mut r, 1, "committed entry there has term Some(2)");
}

#[test]
fn an_answer_claiming_entries_the_leader_never_had_is_reported() {
    let mut r = leader(3, &[1], 1);
    persist_all(&mut r);
    step(&mut r, ack(2, 2, 99, 0));
    assert_eq!(r.status().match_index, vec![(2, 0), (3, 0)]);
    assert_fault(&mut r, 2, "past this leader's last index");
}

#[test]
fn faults_beyond_the_bound_are_counted_not_kept() {
    let mut r = committed_follower();
    for _ in 0..MAX_PEER_FAULTS + 5 {
        step(&mut r, append(3, 2, 2, (2, 3), vec![], 3));
    }
    let faults = r.take_peer_faults();
    assert_eq!((faults.faults.len(), faults.dropped), (MAX_PEER_FAULTS, 5));
    assert!(r.take_peer_faults().is_empty());
}

#[test]
fn entries_that_conflict_with_a_snapshot_being_installed_are_not_committed() {
    let mut r = node(2, 3, &[], 2);
    let last = LogPosition { term: 1, index: 4 };
    let chunk = MessageBody::InstallSnapshot {
        last,
        membership: Membership::bootstrap([1, 2, 3]),
        offset: 0,
        data: b"all".to_vec(),
        done: true,
    };
    step(&mut r, msg(1, 2, 2, chunk));
    let batch = r.take_persist_batch().expect("the final chunk");
    assert_eq!(batch.snapshot_to_install(), Some(last));
    r.on_persisted(batch.token, 0);
    // Before the runtime installs it, the same leader commits another term at 4.
    let entries = vec![ent(1, 1), ent(1, 2), ent(1, 3), ent(2, 4)];
    step(&mut r, append(1, 2, 2, (0, 0), entries, 4));
    assert_eq!(sent(&mut r), vec![], "acknowledged");
    assert_fault(&mut r, 1, "being installed");
    assert_eq!(r.commit_index(), 0);
    // The install goes through (it used to assert: a conflict with a committed entry).
    assert!(r.snapshot_installed(last, 0));
    assert_eq!(r.commit_index(), 4);
}
