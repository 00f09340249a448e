//! Thesis §4: configurations in the log, learners, single-server changes and the
//! rules that keep them safe (one at a time, only after an own-term commit).

use std::collections::BTreeMap;

use super::*;

/// Leader 1 of voters `1..=n` in term 1, its no-op (index 1) committed with n2's ack.
fn committed_leader(n: u64) -> Raft {
    let mut r = leader(n, &[], 0);
    persist_all(&mut r);
    step(&mut r, ack(2, 1, 1, 0));
    assert_eq!(r.commit_index(), 1);
    r.take_messages();
    r
}

fn add(id: NodeId) -> MembershipChange {
    MembershipChange::AddLearner {
        id,
        address: format!("127.0.0.1:{}", 7000 + id),
    }
}

fn membership_entry(term: Term, index: Index, m: Membership) -> Entry {
    Entry {
        term,
        index,
        payload: Payload::Membership(m),
    }
}

#[test]
fn a_change_waits_for_a_commit_of_the_leaders_own_term() {
    let mut r = leader(3, &[], 0);
    let refused = r.propose_membership(add(4), 0);
    assert_eq!(refused, Err(ChangeRefused::NoCommitInTerm));
    assert_eq!(r.membership(), &Membership::bootstrap([1, 2, 3]));
}

#[test]
fn a_learner_is_added_at_once_and_replicated_to_but_not_counted() {
    let mut r = committed_leader(3);
    let pos = r.propose_membership(add(4), 0).expect("accepted");
    assert_eq!(pos, LogPosition { term: 1, index: 2 });
    assert!(r.membership().learners.contains(&4));
    assert_eq!(r.status().match_index, vec![(2, 1), (3, 0), (4, 0)]);
    let sent: Vec<NodeId> = r.take_messages().iter().map(|m| m.to).collect();
    assert!(sent.contains(&4), "the learner gets the log: {sent:?}");
    persist_all(&mut r);
    // The learner's ack alone is no majority of the voters {1, 2, 3}.
    step(&mut r, ack(4, 1, 2, 0));
    assert_eq!(r.commit_index(), 1);
    step(&mut r, ack(3, 1, 2, 0));
    assert_eq!(r.commit_index(), 2);
}

#[test]
fn one_change_at_a_time() {
    let mut r = committed_leader(3);
    r.propose_membership(add(4), 0).expect("accepted");
    let refused = r.propose_membership(add(5), 0);
    assert_eq!(refused, Err(ChangeRefused::ChangeInProgress(2)));
}

#[test]
fn ids_are_never_reused_and_a_learner_behind_is_not_promoted() {
    let mut r = committed_leader(3);
    assert_eq!(
        r.propose_membership(add(3), 0),
        Err(ChangeRefused::AlreadyMember(3))
    );
    r.propose_membership(add(4), 0).expect("accepted");
    persist_all(&mut r);
    step(&mut r, ack(2, 1, 2, 0));
    let promote = MembershipChange::Promote { id: 4 };
    let behind = r.propose_membership(promote.clone(), 0);
    let expected = ChangeRefused::LearnerBehind {
        id: 4,
        matched: 0,
        last: 2,
    };
    assert_eq!(behind, Err(expected));
    step(&mut r, ack(4, 1, 2, 0));
    r.propose_membership(promote, 0).expect("caught up");
    persist_all(&mut r);
    step(&mut r, ack(2, 1, 3, 0));
    step(&mut r, ack(4, 1, 3, 0));
    let remove = MembershipChange::Remove { id: 4 };
    r.propose_membership(remove, 0).expect("removed");
    persist_all(&mut r);
    step(&mut r, ack(2, 1, 4, 0));
    step(&mut r, ack(3, 1, 4, 0));
    assert_eq!(r.commit_index(), 4);
    let again = r.propose_membership(add(4), 0);
    assert_eq!(again, Err(ChangeRefused::IdUsed { id: 4, max_id: 4 }));
}

#[test]
fn a_removal_that_leaves_no_live_quorum_is_refused() {
    let mut r = committed_leader(3);
    // n3 has not been heard from for an election timeout; n2 is removed: {1, 3}
    // would need both, and n3 is not live.
    let later = 1_000;
    r.step(ack(2, 1, 1, 0), later - 1);
    let refused = r.propose_membership(MembershipChange::Remove { id: 2 }, later);
    assert_eq!(
        refused,
        Err(ChangeRefused::QuorumAtRisk { live: 1, quorum: 2 })
    );
}

#[test]
fn a_truncated_configuration_falls_back_to_the_previous_one() {
    let mut r = node(2, 3, &[1], 1);
    let grown = Membership::bootstrap([1, 2, 3])
        .apply(&add(4))
        .expect("valid");
    step(
        &mut r,
        append(
            1,
            2,
            1,
            (1, 1),
            vec![membership_entry(1, 2, grown.clone())],
            1,
        ),
    );
    assert_eq!(
        r.membership(),
        &grown,
        "in force as soon as it is in the log"
    );
    // A leader of term 2 overwrites index 2.
    step(&mut r, append(3, 2, 2, (1, 1), vec![ent(2, 2)], 1));
    assert_eq!(r.membership(), &Membership::bootstrap([1, 2, 3]));
}

#[test]
fn a_learner_never_campaigns() {
    let cfg = Config {
        voters: Vec::new(),
        ..config(4, 3)
    };
    let mut r = node_with(cfg, &[], 0);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    assert_eq!(r.role(), Role::Follower);
    assert_eq!(r.term(), 0);
    assert!(r.take_messages().is_empty());
    assert!(persist_all(&mut r).is_empty());
}

#[test]
fn a_removed_leader_steps_down_once_its_removal_commits() {
    let mut r = committed_leader(3);
    r.propose_membership(MembershipChange::Remove { id: 1 }, 0)
        .expect("accepted");
    persist_all(&mut r);
    // The new configuration {2, 3} counts only n2 and n3; the leader no longer.
    step(&mut r, ack(2, 1, 2, 0));
    assert_eq!(r.commit_index(), 1);
    assert_eq!(r.role(), Role::Leader);
    step(&mut r, ack(3, 1, 2, 0));
    assert_eq!(r.commit_index(), 2);
    assert_eq!(r.role(), Role::Follower);
    let deadline = r.next_tick_ms();
    r.tick(deadline);
    assert_eq!(r.role(), Role::Follower, "a removed member never campaigns");
}

/// Members 1..=5 that deliver messages only among the `up` ones, persisting every
/// batch at once; no member ticks unless told to.
struct Net {
    nodes: BTreeMap<NodeId, Raft>,
    now: u64,
}

impl Net {
    /// Voters 1..=4; member 5 starts outside the configuration.
    fn new(bug: Option<InjectedBug>) -> Net {
        let nodes = (1..=5)
            .map(|id| {
                let voters = if id == 5 {
                    Vec::new()
                } else {
                    vec![1, 2, 3, 4]
                };
                let cfg = Config {
                    voters,
                    check_quorum: false,
                    injected_bug: bug,
                    ..config(id, 4)
                };
                (id, Raft::new(cfg, InitialState::default(), id, 0))
            })
            .collect();
        Net { nodes, now: 0 }
    }

    fn node(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).expect("member")
    }

    /// Delivers among `up` until nothing more is sent.
    fn pump(&mut self, up: &[NodeId]) {
        self.pump_some(up, |_| true)
    }

    /// Delivers the messages `keep` lets through among `up` until nothing is sent.
    fn pump_some(&mut self, up: &[NodeId], keep: fn(&Message) -> bool) {
        loop {
            let mut out = Vec::new();
            for &id in up {
                let r = self.node(id);
                out.extend(persist_all(r));
                out.extend(r.take_messages());
            }
            if out.is_empty() {
                return;
            }
            let now = self.now;
            for m in out.into_iter().filter(|m| up.contains(&m.to) && keep(m)) {
                self.node(m.to).step(m, now);
            }
        }
    }

    /// Lets `id` time out (until it leads), talking only to `up`.
    fn elect(&mut self, id: NodeId, up: &[NodeId], keep: fn(&Message) -> bool) {
        for _ in 0..3 {
            self.now = self.now.max(self.node(id).next_tick_ms());
            let now = self.now;
            self.node(id).tick(now);
            self.pump_some(up, keep);
            if self.node(id).role() == Role::Leader {
                return;
            }
        }
        panic!("n{id} did not win among {up:?}");
    }

    /// Leader `id` sends its heartbeats (which carry its commit index) to `up`.
    fn heartbeat(&mut self, id: NodeId, up: &[NodeId]) {
        self.now += 50;
        let now = self.now;
        self.node(id).tick(now);
        self.pump(up);
    }
}

/// The 2015 single-server bug (Ongaro, raft-dev): n1 leads {1,2,3,4}, adds n5 and
/// appends its promotion alone. n2 is elected by {2,3,4} and at once appends the
/// removal of n1, committed by {2,3} under {2,3,4}. n1, whose log says {1,2,3,4,5},
/// is elected by {1,4,5} and overwrites the committed removal. Returns whether the
/// new leader n1 holds the entry n2 committed, once everyone is in touch again.
fn run_2015_scenario(bug: Option<InjectedBug>) -> Result<bool, ChangeRefused> {
    let all = [1, 2, 3, 4, 5];
    let mut net = Net::new(bug);
    net.elect(1, &all, |_| true);
    net.node(1).propose_membership(add(5), 0)?;
    net.pump(&all);
    net.heartbeat(1, &all);
    let promote = MembershipChange::Promote { id: 5 };
    net.node(1).propose_membership(promote, 0)?;
    // Its no-op reaches n3 only, not a majority of {1,2,3,4}.
    let not_appends_to_n4 =
        |m: &Message| !(m.to == 4 && matches!(m.body, MessageBody::AppendEntries { .. }));
    net.elect(2, &[2, 3, 4], not_appends_to_n4);
    net.node(2)
        .propose_membership(MembershipChange::Remove { id: 1 }, 0)?;
    net.pump(&[2, 3]);
    let committed = net.node(2).commit_index();
    assert!(committed >= 4, "n2 committed the removal under {{2,3,4}}");
    let term = net.node(2).term();
    net.elect(1, &[1, 4, 5], |_| true);
    for _ in 0..5 {
        net.heartbeat(1, &all);
    }
    // n1 now leads with its own entry at that index, and has committed it.
    let leader = net.node(1);
    assert!(leader.commit_index() >= committed);
    let there = leader.entries_from(committed).first().map(|e| e.term);
    Ok(there == Some(term))
}

#[test]
fn without_the_own_term_rule_a_committed_change_is_lost() {
    let lost = run_2015_scenario(Some(InjectedBug::SkipOwnTermRule));
    assert_eq!(lost, Ok(false), "the committed removal was overwritten");
}

#[test]
fn the_own_term_rule_refuses_the_2015_change() {
    let refused = run_2015_scenario(None);
    assert_eq!(refused, Err(ChangeRefused::NoCommitInTerm));
}

#[test]
fn a_vote_request_while_the_leader_is_in_touch_is_ignored() {
    // n3 was removed but never learned it; it keeps campaigning (thesis §4.2.3).
    let mut r = node(2, 3, &[1], 1);
    step(&mut r, append(1, 2, 1, (1, 1), vec![], 1));
    persist_all(&mut r);
    r.take_messages();
    let campaign = msg(
        3,
        2,
        5,
        MessageBody::RequestVote {
            last_log_index: 9,
            last_log_term: 4,
            leadership_transfer: false,
        },
    );
    r.step(campaign.clone(), 99); // within the minimum election timeout (100)
    assert_eq!(
        r.term(),
        1,
        "the leader is in touch: the request is ignored"
    );
    assert_eq!(r.leader(), Some(1));
    r.step(campaign, 100);
    assert_eq!(r.term(), 5, "after the lease, a higher term is followed");
}

#[test]
fn a_read_waiting_for_a_removed_voter_is_confirmed_once_the_leader_alone_is_a_quorum() {
    // Membership sweep seed 3089: reads recorded while n2 voted waited for n2's
    // acknowledgement; n2 was cut off and removed, and with no peer left to answer,
    // nothing ever confirmed them.
    let mut r = committed_leader(2);
    r.read_index(7, 0).expect("leader");
    let heartbeats = r.take_messages();
    assert!(!heartbeats.is_empty(), "a round was opened");
    assert!(r.take_read_states().is_empty(), "n2 must confirm first");
    r.propose_membership(MembershipChange::Remove { id: 2 }, 0)
        .expect("n1 alone is live and a quorum of {1}");
    persist_all(&mut r);
    assert_eq!(r.commit_index(), 2, "the removal commits with n1 alone");
    let states = r.take_read_states();
    assert_eq!(
        states,
        vec![ReadState {
            read_id: 7,
            result: Ok(1)
        }]
    );
}
