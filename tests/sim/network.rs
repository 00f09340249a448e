//! The simulated network: per-message loss, duplication and random delay (which also
//! reorders), a small share of long delays (seconds: a message stuck in the socket
//! buffer of a paused process), a link matrix for partitions, including one-way ones,
//! and held links whose messages wait until a scenario releases them.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt;

use raftkv::raft::{Message, MessageBody, NodeId};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// Most messages in flight at once; beyond this the network drops, like a full queue.
pub const MAX_IN_FLIGHT: usize = 20_000;

/// How unreliable the network is. Probabilities are in parts per thousand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetFaults {
    /// Chance a message is lost.
    pub drop_per_mille: u32,
    /// Chance a message is delivered twice (each copy with its own delay).
    pub dup_per_mille: u32,
    /// Shortest delay; at least 1 so that a chain of messages always advances time.
    pub delay_min_ms: u64,
    /// Longest delay (inclusive). A spread larger than the send interval reorders.
    pub delay_max_ms: u64,
    /// Chance a message is held `LONG_DELAY_MS` instead: long past an election
    /// timeout, so a message of a member's previous incarnation, or of a term long
    /// gone, can arrive after a restart and an election.
    pub long_delay_per_mille: u32,
}

/// The range of a long delay.
pub const LONG_DELAY_MS: std::ops::RangeInclusive<u64> = 1_000..=5_000;

impl NetFaults {
    /// A network that loses nothing and delays a little.
    pub const RELIABLE: NetFaults = NetFaults {
        drop_per_mille: 0,
        dup_per_mille: 0,
        delay_min_ms: 1,
        delay_max_ms: 5,
        long_delay_per_mille: 0,
    };
}

/// Counters for the summary line of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetStats {
    /// Messages handed to the network.
    pub sent: u64,
    /// Messages delivered to a running member.
    pub delivered: u64,
    /// Messages lost by chance or because the queue was full.
    pub dropped: u64,
    /// Extra copies created.
    pub duplicated: u64,
    /// Messages stopped by a partition.
    pub cut: u64,
    /// Messages given a long delay.
    pub long_delayed: u64,
}

struct Flight {
    deliver_at_ms: u64,
    /// Tie-breaker that keeps delivery order deterministic.
    seq: u64,
    msg: Message,
}

impl PartialEq for Flight {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Flight {}
impl PartialOrd for Flight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Flight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deliver_at_ms, self.seq).cmp(&(other.deliver_at_ms, other.seq))
    }
}

/// Messages in flight between `members` members (ids 1..=members).
pub struct Network {
    members: usize,
    in_flight: BinaryHeap<Reverse<Flight>>,
    next_seq: u64,
    /// `blocked[(from - 1) * members + (to - 1)]`: messages from `from` to `to` are cut.
    blocked: Vec<bool>,
    /// Same layout: messages from `from` to `to` wait in `held` (a receiver that
    /// stopped reading that connection).
    holding: Vec<bool>,
    /// Messages of held links, in the order they were sent.
    held: Vec<Message>,
    /// The long-delay draws: their own stream, so that every other draw of a seed
    /// stays what it was before long delays existed.
    long_rng: SmallRng,
    /// Current loss, duplication and delay.
    pub faults: NetFaults,
    /// Counters.
    pub stats: NetStats,
}

impl Network {
    /// A fully connected network with the given faults.
    pub fn new(members: usize, faults: NetFaults, seed: u64) -> Network {
        Network {
            members,
            in_flight: BinaryHeap::new(),
            next_seq: 0,
            blocked: vec![false; members * members],
            holding: vec![false; members * members],
            held: Vec::new(),
            long_rng: SmallRng::seed_from_u64(seed ^ 0x10_6de1),
            faults,
            stats: NetStats::default(),
        }
    }

    fn link(&self, from: NodeId, to: NodeId) -> usize {
        assert!(
            (1..=self.members as u64).contains(&from) && (1..=self.members as u64).contains(&to),
            "link {from}->{to} outside 1..={}",
            self.members
        );
        (from as usize - 1) * self.members + (to as usize - 1)
    }

    /// True if messages from `from` to `to` are cut.
    pub fn is_blocked(&self, from: NodeId, to: NodeId) -> bool {
        self.blocked[self.link(from, to)]
    }

    /// Cuts or restores the one-way link `from -> to`.
    pub fn set_blocked(&mut self, from: NodeId, to: NodeId, blocked: bool) {
        let link = self.link(from, to);
        self.blocked[link] = blocked;
    }

    /// Starts or stops holding messages from `from` to `to` (messages already held
    /// stay held until [`Network::take_held`]).
    pub fn set_holding(&mut self, from: NodeId, to: NodeId, holding: bool) {
        let link = self.link(from, to);
        self.holding[link] = holding;
    }

    /// Removes and returns the held messages from `from` to `to`, oldest first: they
    /// already crossed the network, so the caller delivers them directly.
    pub fn take_held(&mut self, from: NodeId, to: NodeId) -> Vec<Message> {
        let (taken, kept) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|m| m.from == from && m.to == to);
        self.held = kept;
        taken
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.blocked.iter_mut().for_each(|b| *b = false);
    }

    /// Cuts every link between members of different groups, in both directions.
    /// Members in no group are cut off from everyone.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        let group_of = |id: NodeId| groups.iter().position(|g| g.contains(&id));
        for from in 1..=self.members as u64 {
            for to in 1..=self.members as u64 {
                let same =
                    from == to || (group_of(from).is_some() && group_of(from) == group_of(to));
                self.set_blocked(from, to, !same);
            }
        }
    }

    /// Only links between `center` and each of `spokes` work: no spoke can win an
    /// election (it reaches one voter), so `center` is the only possible leader.
    pub fn star(&mut self, center: NodeId, spokes: &[NodeId]) {
        self.blocked.iter_mut().for_each(|b| *b = true);
        for &spoke in spokes {
            self.set_blocked(center, spoke, false);
            self.set_blocked(spoke, center, false);
        }
    }

    /// Hands a message to the network at `now_ms`.
    pub fn send(&mut self, msg: Message, now_ms: u64, rng: &mut SmallRng) {
        self.stats.sent += 1;
        if self.is_blocked(msg.from, msg.to) {
            self.stats.cut += 1;
            return;
        }
        if self.holding[self.link(msg.from, msg.to)] {
            self.held.push(msg);
            return;
        }
        if rng.gen_range(0..1000) < self.faults.drop_per_mille {
            self.stats.dropped += 1;
            return;
        }
        if rng.gen_range(0..1000) < self.faults.dup_per_mille {
            self.stats.duplicated += 1;
            self.enqueue(msg.clone(), now_ms, rng);
        }
        self.enqueue(msg, now_ms, rng);
    }

    fn enqueue(&mut self, msg: Message, now_ms: u64, rng: &mut SmallRng) {
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            self.stats.dropped += 1;
            return;
        }
        let mut delay_ms = rng.gen_range(self.faults.delay_min_ms..=self.faults.delay_max_ms);
        let long = self.faults.long_delay_per_mille;
        if long > 0 && self.long_rng.gen_range(0..1000) < long {
            self.stats.long_delayed += 1;
            delay_ms = self.long_rng.gen_range(LONG_DELAY_MS);
        }
        assert!(
            delay_ms >= 1,
            "zero network delay would let time stand still"
        );
        self.in_flight.push(Reverse(Flight {
            deliver_at_ms: now_ms + delay_ms,
            seq: self.next_seq,
            msg,
        }));
        self.next_seq += 1;
    }

    /// When the next message is due, if any is in flight.
    pub fn next_due_ms(&self) -> Option<u64> {
        self.in_flight.peek().map(|f| f.0.deliver_at_ms)
    }

    /// The next message due at or before `now_ms` whose link is open. Messages whose
    /// link was cut while they were in flight are discarded on the way.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Message> {
        while self.next_due_ms().is_some_and(|at| at <= now_ms) {
            let Reverse(flight) = self.in_flight.pop()?;
            if self.is_blocked(flight.msg.from, flight.msg.to) {
                self.stats.cut += 1;
                continue;
            }
            self.stats.delivered += 1;
            return Some(flight.msg);
        }
        None
    }

    /// The partition as text: the cut links, or "none".
    pub fn describe_cuts(&self) -> String {
        let mut cuts = Vec::new();
        for from in 1..=self.members as u64 {
            for to in 1..=self.members as u64 {
                if self.is_blocked(from, to) {
                    cuts.push(format!("{from}->{to}"));
                }
            }
        }
        if cuts.is_empty() {
            "none".to_string()
        } else {
            cuts.join(" ")
        }
    }
}

/// A one-line rendering of a message for the trace.
pub struct Brief<'a>(pub &'a Message);

impl fmt::Display for Brief<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(f, "{}->{} t{} ", m.from, m.to, m.term)?;
        match &m.body {
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                leadership_transfer,
            } => {
                let why = if *leadership_transfer { " transfer" } else { "" };
                write!(f, "RequestVote last=({last_log_term},{last_log_index}){why}")
            }
            MessageBody::RequestVoteResponse { vote_granted } => {
                write!(f, "VoteResponse granted={vote_granted}")
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                read_round,
                ..
            } => write!(
                f,
                "Append prev=({prev_log_term},{prev_log_index}) n={} commit={leader_commit} round={read_round}",
                entries.len()
            ),
            MessageBody::AppendEntriesResponse {
                success,
                match_index,
                conflict,
                read_round,
                ..
            } => write!(
                f,
                "AppendResponse ok={success} match={match_index} conflict={conflict:?} round={read_round}"
            ),
            MessageBody::InstallSnapshot {
                last,
                offset,
                data,
                done,
                ..
            } => write!(
                f,
                "Snapshot last=({},{}) offset={offset} n={} done={done}",
                last.term,
                last.index,
                data.len()
            ),
            MessageBody::InstallSnapshotResponse {
                last,
                next_offset,
                done,
            } => write!(
                f,
                "SnapshotResponse last=({},{}) next={next_offset} done={done}",
                last.term, last.index
            ),
            MessageBody::PreVote { last_log_index, last_log_term } => {
                write!(f, "PreVote last=({last_log_term},{last_log_index})")
            }
            MessageBody::PreVoteResponse { vote_granted } => {
                write!(f, "PreVoteResponse granted={vote_granted}")
            }
            MessageBody::StaleTerm => write!(f, "StaleTerm"),
            MessageBody::TimeoutNow => write!(f, "TimeoutNow"),
            MessageBody::ReadIndexRequest { batch } => write!(f, "ReadIndexRequest {batch}"),
            MessageBody::ReadIndexResponse { batch, read_index } => {
                write!(f, "ReadIndexResponse {batch} at {read_index}")
            }
            MessageBody::ForwardProposal { id, data } => {
                write!(f, "ForwardProposal {id} ({} bytes)", data.len())
            }
            MessageBody::ForwardProposalResponse { id, answer } => {
                write!(f, "ForwardProposalResponse {id} {answer:?}")
            }
        }
    }
}
