//! Check-quorum (thesis §6.2): a leader that hears from no majority for the longest
//! election timeout (200 ms in the test config) steps down.

use super::*;

/// The read that was pending when the leader stepped down, failed with no leader known.
fn failed(read_id: u64) -> ReadState {
    ReadState {
        read_id,
        result: Err(NotLeader { leader: None }),
    }
}

#[test]
fn a_leader_that_hears_from_nobody_steps_down_after_the_election_timeout() {
    let mut r = leader(3, &[1], 1);
    let elected = r.now_ms;
    assert_eq!(r.next_tick_ms(), elected + 50, "heartbeats come first");
    r.tick(elected + 199);
    assert_eq!(r.role(), Role::Leader, "still within the timeout");
    r.read_index(9, elected + 199).expect("leader");
    r.take_messages();
    r.tick(elected + 200);
    r.check_invariants();
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(r.term(), 2, "stepping down does not change the term");
    assert_eq!(r.leader(), None);
    assert_eq!(
        r.take_messages(),
        vec![],
        "a deposed leader sends no heartbeats"
    );
    assert_eq!(r.take_read_states(), vec![failed(9)]);
    assert_eq!(
        r.propose(vec![1], elected + 200),
        Err(NotLeader { leader: None })
    );
}

#[test]
fn one_follower_of_three_keeps_the_leader_in_office() {
    let mut r = leader(3, &[1], 1);
    let elected = r.now_ms;
    persist_all(&mut r);
    r.step(ack(2, 2, 2, 0), elected + 150);
    r.tick(elected + 349);
    assert_eq!(r.role(), Role::Leader, "heard from 2 at +150");
    // The check-quorum deadline is when node 2's answer grows too old, unless a
    // heartbeat is due earlier.
    assert!(r.next_tick_ms() <= elected + 350);
    r.tick(elected + 350);
    assert_eq!(r.role(), Role::Follower, "nothing heard since +150");
}

#[test]
fn in_five_two_followers_are_needed() {
    let mut r = leader(5, &[1], 1);
    let elected = r.now_ms;
    persist_all(&mut r);
    r.step(ack(2, 2, 2, 0), elected + 100);
    r.step(ack(3, 2, 2, 0), elected + 150);
    r.step(ack(2, 2, 2, 0), elected + 250);
    // Heard: 2 at +250, 3 at +150, 4 and 5 at the election: the 2nd freshest is +150.
    r.tick(elected + 349);
    assert_eq!(r.role(), Role::Leader);
    r.tick(elected + 350);
    assert_eq!(r.role(), Role::Follower);
}

#[test]
fn a_rejection_counts_as_hearing_from_the_follower() {
    let mut r = leader(3, &[1], 1);
    let elected = r.now_ms;
    let body = MessageBody::AppendEntriesResponse {
        success: false,
        match_index: 1,
        conflict: None,
        read_round: 0,
        check: None,
    };
    r.step(msg(3, 1, 2, body), elected + 180);
    r.tick(elected + 379);
    assert_eq!(r.role(), Role::Leader);
}

#[test]
fn with_check_quorum_off_an_isolated_leader_stays() {
    let mut cfg = config(1, 3);
    cfg.check_quorum = false;
    let initial = InitialState {
        hard_state: HardState {
            current_term: 1,
            voted_for: None,
        },
        log_base: LogPosition::default(),
        entries: log_of(&[1]),
        membership: None,
    };
    let mut r = Raft::new(cfg, initial, 7, 0);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    persist_all(&mut r);
    let vote = MessageBody::RequestVoteResponse { vote_granted: true };
    r.step(msg(2, 1, 2, vote), deadline);
    assert_eq!(r.role(), Role::Leader);
    r.tick(deadline + 10_000);
    assert_eq!(r.role(), Role::Leader);
}

#[test]
fn a_single_voter_never_steps_down() {
    let mut r = node(1, 1, &[], 0);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    persist_all(&mut r);
    assert_eq!(r.role(), Role::Leader);
    r.tick(deadline + 10_000);
    assert_eq!(r.role(), Role::Leader);
}
