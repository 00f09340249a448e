//! Client-level helpers for the named scenarios, after the MIT 6.5840 test harness
//! (`one`, `checkOneLeader`, `checkNoLeader`).

use raftkv::raft::{Index, LogPosition, NodeId, Role};

use super::cluster::Cluster;
use super::history::Fate;
use super::run::settled_leader;

impl Cluster {
    /// Runs until every running member follows one leader; returns it.
    pub fn expect_settled_leader(&mut self, timeout_ms: u64) -> NodeId {
        let found = self.run_until(timeout_ms, |c| settled_leader(c).is_some());
        assert!(
            found,
            "no leader followed by every running member within {timeout_ms}ms"
        );
        settled_leader(self).unwrap_or_default()
    }

    /// Runs until a member of `group` leads a term above `above`; returns it.
    pub fn expect_leader_in(&mut self, group: &[NodeId], above: u64, timeout_ms: u64) -> NodeId {
        let leads = |c: &Cluster, id: NodeId| {
            c.member(id)
                .raft
                .as_ref()
                .is_some_and(|r| r.role() == Role::Leader && r.term() > above)
        };
        let found = self.run_until(timeout_ms, |c| group.iter().any(|&id| leads(c, id)));
        assert!(
            found,
            "no leader among {group:?} in a term above {above} within {timeout_ms}ms"
        );
        group
            .iter()
            .copied()
            .find(|&id| leads(self, id))
            .unwrap_or_default()
    }

    /// Number of running members that applied the proposal at `pos` made as proposal
    /// number `number` (0 if another entry committed there).
    pub fn applied_count(&self, number: usize, pos: LogPosition) -> usize {
        let proposal = self.history.proposals()[number];
        let committed = self.checker.committed().get(pos.index as usize - 1);
        let ours = committed.is_some_and(|c| c.slot.term == pos.term && c.slot.key == proposal.key);
        if !ours {
            return 0;
        }
        self.members
            .iter()
            .filter(|m| m.is_up() && m.applied >= pos.index)
            .count()
    }

    /// Submits a fresh command to the current leader (again, if leadership moves)
    /// until `expected` members applied it; returns its index. Panics after
    /// `timeout_ms`.
    pub fn one(&mut self, expected: usize, timeout_ms: u64) -> Index {
        let deadline_ms = self.now_ms + timeout_ms;
        while self.now_ms < deadline_ms {
            if let Some(leader) = self.leader() {
                if let Ok(pos) = self.propose_new(leader, 8) {
                    let number = self.history.proposals().len() - 1;
                    let wait_ms = 2_000.min(deadline_ms.saturating_sub(self.now_ms));
                    if self.run_until(wait_ms, |c| c.applied_count(number, pos) >= expected) {
                        return pos.index;
                    }
                    continue;
                }
            }
            self.run_for(50);
        }
        panic!("one(): no command applied by {expected} members within {timeout_ms}ms");
    }

    /// Proposes `count` fresh commands at `id`, which must accept them; returns their
    /// proposal numbers.
    pub fn propose_many(&mut self, id: NodeId, count: usize) -> Vec<usize> {
        let mut numbers = Vec::with_capacity(count);
        for _ in 0..count {
            let result = self.propose_new(id, 8);
            assert!(result.is_ok(), "n{id} refused a proposal: {result:?}");
            numbers.push(self.history.proposals().len() - 1);
        }
        numbers
    }

    /// The fate of proposal `number`.
    pub fn fate(&self, number: usize) -> Fate {
        self.history.proposals()[number].fate
    }

    /// The current term of every running member.
    pub fn terms(&self) -> Vec<(NodeId, u64)> {
        self.up()
            .into_iter()
            .map(|id| (id, self.raft(id).term()))
            .collect()
    }

    /// Links only `center` with each of `spokes`; nothing else can talk.
    pub fn star(&mut self, center: NodeId, spokes: &[NodeId]) {
        self.net.star(center, spokes);
        let cuts = self.net.describe_cuts();
        self.note(format_args!("STAR n{center} with {spokes:?}: cut {cuts}"));
    }

    /// Links only `center` with each of `spokes` and runs until `center` leads a term
    /// above every term seen so far; returns that term.
    pub fn elect(&mut self, center: NodeId, spokes: &[NodeId], timeout_ms: u64) -> u64 {
        self.star(center, spokes);
        let above = self.terms().iter().map(|&(_, t)| t).max().unwrap_or(0);
        self.expect_leader_in(&[center], above.saturating_sub(1), timeout_ms);
        self.raft(center).term()
    }

    /// The leader `leader`'s view of `peer`'s match index.
    pub fn match_index(&self, leader: NodeId, peer: NodeId) -> Index {
        let status = self.raft(leader).status();
        status
            .match_index
            .iter()
            .find(|&&(id, _)| id == peer)
            .map_or(0, |&(_, m)| m)
    }
}
