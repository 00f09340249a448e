//! Writes sent to a follower: it forwards them to the leader (as etcd forwards
//! `MsgProp`), and learns where the leader appended each one.
//!
//! Follower side: [`Raft::forward`] sends a [`MessageBody::ForwardProposal`] to the
//! leader it follows and remembers it under a number of its own. At most
//! [`MAX_FORWARDED_PROPOSALS`] wait for the leader's answer; more are refused at once.
//! The answer ([`ForwardAnswer`]) says where the leader appended the write, or that it
//! did not (it was no longer leader, or its runtime refused the write): either way the
//! runtime collects it with [`Raft::take_forward_outcomes`].
//!
//! The follower answers its client from its OWN state machine, once it applies the
//! position the leader reported: the runtime parks the write at that (index, term)
//! exactly as a leader parks its own proposal. Matching by position rather than by
//! the session (client id, sequence) keeps one path for both: an entry of another term
//! applied at the index proves the write was never applied (log matching: only one
//! entry per index is ever committed), which a session match cannot tell, and the
//! applier needs no second table keyed by sessions. Its one gap — the follower
//! applied the position before the answer arrived (the answer was delayed behind the
//! commit) — is reported as outcome unknown, never as success or failure.
//!
//! Failure: a forwarded write belongs to the leader and term it was sent to. If the
//! follower stops following that leader in that term, or no answer comes within
//! [`FORWARD_TIMEOUT_ELECTIONS`] maximum election timeouts, its outcome is unknown
//! (the leader may have appended it): it is never sent again, so a write is
//! appended at most once per forward.
//!
//! Leader side: a forwarded write is not appended by the core. It is handed to the
//! runtime ([`Raft::take_forwarded_proposals`]), which applies the checks it applies
//! to its own clients' writes (size, backpressure, quota), proposes it, and answers
//! with [`Raft::answer_forwarded`]. At most [`MAX_PROPOSALS_FROM_FOLLOWERS`] wait for
//! the runtime; more are refused (the follower's client may retry).
//!
//! Forward numbers start at a random value in each incarnation, so an answer to a
//! forward of an earlier incarnation is never taken for the answer to a new one.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::fault::MAX_INDEX;
use super::{Index, LogPosition, MessageBody, NodeId, Role, Term};

/// Most forwarded writes a follower keeps waiting for the leader's answer.
pub const MAX_FORWARDED_PROPOSALS: usize = 1024;
/// Most forwarded writes a leader keeps until its runtime takes them.
pub const MAX_PROPOSALS_FROM_FOLLOWERS: usize = 4096;
/// A forward unanswered for this many maximum election timeouts has an unknown
/// outcome (the answer was lost, or the leader is stalled).
pub const FORWARD_TIMEOUT_ELECTIONS: u64 = 4;
/// Longest refusal reason a leader sends back; a longer one is a peer fault.
pub const MAX_REFUSAL_BYTES: usize = 1024;
/// Forward numbers a leader remembers per follower in its term, to take a forward
/// delivered twice (a transport that retransmits) only once.
pub const MAX_REMEMBERED_FORWARDS: usize = 1024;

/// The leader's answer to a forwarded write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardAnswer {
    /// Appended at this position: applied if and when the entry there has this term.
    Appended(LogPosition),
    /// Not appended: the receiver was not the leader.
    NotLeader,
    /// Not appended: the leader's runtime refused it (`retry`: a later try may work,
    /// as when too many writes wait to commit; otherwise it never will, as over quota).
    Refused {
        /// Why, for the client.
        reason: String,
        /// True if trying again later may succeed.
        retry: bool,
    },
}

/// Why [`Raft::forward`] did not send a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardRefused {
    /// This member follows no leader (or is not a follower).
    NoLeader,
    /// [`MAX_FORWARDED_PROPOSALS`] already wait for an answer.
    TooMany,
}

/// How a forwarded write ended, as far as this member's core can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardOutcome {
    /// The number [`Raft::forward`] returned.
    pub id: u64,
    /// The leader's answer; `None` if the outcome is unknown (leadership changed, or
    /// no answer came in time).
    pub answer: Option<ForwardAnswer>,
}

/// A write a follower forwarded, for the leader's runtime to propose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardedProposal {
    /// The follower.
    pub from: NodeId,
    /// The follower's number for it, to echo in the answer.
    pub id: u64,
    /// The command, as the follower's client sent it.
    pub data: Vec<u8>,
}

/// A forward waiting for the leader's answer.
#[derive(Debug)]
struct Sent {
    leader: NodeId,
    term: Term,
    sent_ms: u64,
}

/// Both sides' bookkeeping of forwarded writes.
#[derive(Debug)]
pub(super) struct Forwards {
    /// Follower: forwards waiting for an answer, by number.
    sent: BTreeMap<u64, Sent>,
    /// Follower: outcomes not yet taken by the runtime.
    outcomes: Vec<ForwardOutcome>,
    /// The number of the next forward.
    next_id: u64,
    /// Leader: forwarded writes not yet taken by the runtime.
    received: Vec<ForwardedProposal>,
    /// Leader: per follower, the latest forward numbers taken in this term (at most
    /// [`MAX_REMEMBERED_FORWARDS`], oldest first), so a duplicate is not appended.
    seen: BTreeMap<NodeId, (VecDeque<u64>, HashSet<u64>)>,
    /// Leader: per follower, the highest index of a write it forwarded, appended and
    /// not yet known committed: once it is, the follower is told at once.
    commit_waits: BTreeMap<NodeId, Index>,
}

impl Forwards {
    /// Empty, numbering forwards from `first_id` (random per incarnation).
    pub(super) fn new(first_id: u64) -> Forwards {
        Forwards {
            sent: BTreeMap::new(),
            outcomes: Vec::new(),
            next_id: first_id,
            received: Vec::new(),
            seen: BTreeMap::new(),
            commit_waits: BTreeMap::new(),
        }
    }

    /// Leader: remembers forward `id` of `from`; false if it was seen already.
    fn first_sight(&mut self, from: NodeId, id: u64) -> bool {
        let (order, set) = self.seen.entry(from).or_default();
        if !set.insert(id) {
            return false;
        }
        order.push_back(id);
        if order.len() > MAX_REMEMBERED_FORWARDS {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }

    /// A new leader: numbers seen in an earlier term cannot come again (their
    /// messages carry that term and are refused).
    pub(super) fn new_term(&mut self) {
        self.seen.clear();
        self.commit_waits.clear();
    }

    /// Checks the bounds, and that only a leader holds forwarded writes to propose.
    pub(super) fn check_invariants(&self, leader: bool) {
        assert!(
            self.sent.len() <= MAX_FORWARDED_PROPOSALS,
            "{} forwarded writes wait for an answer",
            self.sent.len()
        );
        assert!(
            self.received.len() <= MAX_PROPOSALS_FROM_FOLLOWERS,
            "{} forwarded writes wait to be proposed",
            self.received.len()
        );
        assert!(
            leader || self.received.is_empty(),
            "a member that does not lead holds {} forwarded writes to propose",
            self.received.len()
        );
        assert!(
            !leader || self.sent.is_empty(),
            "a leader waits for answers to {} forwarded writes",
            self.sent.len()
        );
    }
}

impl super::core::Raft {
    /// Follower (a learner too): forwards `data` to the leader it follows; returns the
    /// number its outcome will carry ([`Raft::take_forward_outcomes`]).
    pub fn forward(&mut self, data: Vec<u8>, now_ms: u64) -> Result<u64, ForwardRefused> {
        self.observe_time(now_ms);
        let Some(leader) = self.leader.filter(|_| self.role == Role::Follower) else {
            return Err(ForwardRefused::NoLeader);
        };
        if self.forwards.sent.len() >= MAX_FORWARDED_PROPOSALS {
            return Err(ForwardRefused::TooMany);
        }
        let id = self.forwards.next_id;
        self.forwards.next_id = id.wrapping_add(1);
        let sent = Sent {
            leader,
            term: self.current_term,
            sent_ms: self.now_ms,
        };
        self.forwards.sent.insert(id, sent);
        let msg = self.message_to(leader, MessageBody::ForwardProposal { id, data });
        // It carries our term, which may have just been adopted: it leaves once the
        // term is durable (`send_after_term_durable`).
        self.send_after_term_durable(msg);
        Ok(id)
    }

    /// Outcomes of forwarded writes decided since the last call.
    pub fn take_forward_outcomes(&mut self) -> Vec<ForwardOutcome> {
        std::mem::take(&mut self.forwards.outcomes)
    }

    /// Leader: forwarded writes for the runtime to check, propose, and answer with
    /// [`Raft::answer_forwarded`].
    pub fn take_forwarded_proposals(&mut self) -> Vec<ForwardedProposal> {
        std::mem::take(&mut self.forwards.received)
    }

    /// Answers a forwarded write taken from [`Raft::take_forwarded_proposals`]. A
    /// member no longer leader answers [`ForwardAnswer::NotLeader`] whatever it is
    /// given: it appended nothing for it.
    pub fn answer_forwarded(&mut self, to: NodeId, id: u64, answer: ForwardAnswer) {
        let answer = if self.role == Role::Leader {
            answer
        } else {
            ForwardAnswer::NotLeader
        };
        if let ForwardAnswer::Appended(pos) = answer {
            let wait = self.forwards.commit_waits.entry(to).or_default();
            *wait = (*wait).max(pos.index);
        }
        self.answer_forward(to, id, answer);
    }

    fn answer_forward(&mut self, to: NodeId, id: u64, answer: ForwardAnswer) {
        let msg = self.message_to(to, MessageBody::ForwardProposalResponse { id, answer });
        // A leader's term is durable (it persisted its vote before it could win);
        // anyone else may have just adopted the request's term.
        if self.role == Role::Leader {
            self.messages.push(msg);
        } else {
            self.send_after_term_durable(msg);
        }
    }

    /// A follower's forwarded write arrived.
    pub(super) fn handle_forward_proposal(&mut self, from: NodeId, id: u64, data: Vec<u8>) {
        if self.role != Role::Leader {
            self.answer_forward(from, id, ForwardAnswer::NotLeader);
        } else if !self.forwards.first_sight(from, id) {
            // Delivered twice: the first copy is (or was) proposed and answered.
        } else if self.forwards.received.len() >= MAX_PROPOSALS_FROM_FOLLOWERS {
            let reason = format!(
                "the leader has {MAX_PROPOSALS_FROM_FOLLOWERS} forwarded writes to propose; \
                 try again later"
            );
            let answer = ForwardAnswer::Refused {
                reason,
                retry: true,
            };
            self.answer_forward(from, id, answer);
        } else {
            let p = ForwardedProposal { from, id, data };
            self.forwards.received.push(p);
        }
    }

    /// Follower: the leader's answer to a forward. An answer to no forward waiting
    /// (an earlier incarnation's, a duplicate, one already decided unknown) is ignored.
    pub(super) fn handle_forward_response(&mut self, from: NodeId, id: u64, answer: ForwardAnswer) {
        let term = self.current_term;
        let matches = self
            .forwards
            .sent
            .get(&id)
            .is_some_and(|s| s.leader == from && s.term == term);
        if !matches {
            return;
        }
        let impossible = match &answer {
            ForwardAnswer::Appended(pos) if pos.index > MAX_INDEX || pos.index == 0 => {
                Some(format!("a forwarded write appended at index {}", pos.index))
            }
            ForwardAnswer::Appended(pos) if pos.term != term => Some(format!(
                "a forwarded write appended in term {} while leading term {term}",
                pos.term
            )),
            ForwardAnswer::Refused { reason, .. } if reason.len() > MAX_REFUSAL_BYTES => {
                Some(format!(
                    "a refusal of {} bytes (at most {MAX_REFUSAL_BYTES})",
                    reason.len()
                ))
            }
            _ => None,
        };
        if let Some(what) = impossible {
            self.peer_fault(from, term, what);
            return;
        }
        self.forwards.sent.remove(&id);
        let answer = Some(answer);
        self.forwards.outcomes.push(ForwardOutcome { id, answer });
    }

    /// Decides as unknown every forward whose leader or term this member no longer
    /// follows, or that waited too long; called after every input.
    pub(super) fn settle_forwards(&mut self) {
        if self.forwards.sent.is_empty() {
            return;
        }
        let following = match self.role {
            Role::Follower => self.leader.map(|l| (l, self.current_term)),
            Role::Leader | Role::Candidate | Role::PreCandidate => None,
        };
        let timeout = self
            .config
            .election_timeout_max_ms
            .saturating_mul(FORWARD_TIMEOUT_ELECTIONS);
        let now = self.now_ms;
        let alive = |s: &Sent| {
            following == Some((s.leader, s.term)) && now.saturating_sub(s.sent_ms) < timeout
        };
        let (keep, lost): (BTreeMap<_, _>, BTreeMap<_, _>) =
            std::mem::take(&mut self.forwards.sent)
                .into_iter()
                .partition(|(_, s)| alive(s));
        self.forwards.sent = keep;
        let unknown = lost
            .into_keys()
            .map(|id| ForwardOutcome { id, answer: None });
        self.forwards.outcomes.extend(unknown);
    }

    /// Leader: a follower whose forwarded write is now committed, and that holds it,
    /// is told at once (a heartbeat carries the commit index), since it answers its client only once it
    /// applies the write; otherwise it would learn of the commit with the next
    /// heartbeat, up to a heartbeat interval later when nothing else is written.
    /// Called from `take_messages`.
    pub(super) fn flush_forward_commits(&mut self) {
        if self.role != Role::Leader || self.forwards.commit_waits.is_empty() {
            return;
        }
        let commit = self.commit_index;
        // A heartbeat goes at the follower's match index, and a follower commits at
        // most what it is known to hold: wait until it holds the write too.
        let holds = |peer: &NodeId, index: Index| {
            self.progress
                .get(peer)
                .is_some_and(|pr| pr.match_index >= index)
        };
        let due: Vec<NodeId> = self
            .forwards
            .commit_waits
            .iter()
            .filter(|&(peer, &index)| index <= commit && holds(peer, index))
            .map(|(&peer, _)| peer)
            .collect();
        for peer in due {
            self.forwards.commit_waits.remove(&peer);
            self.send_heartbeat(peer);
        }
    }

    /// A leader stepped down: forwarded writes its runtime has not taken are answered
    /// "not leader" (nothing was appended for them).
    pub(super) fn refuse_received_forwards(&mut self) {
        for p in std::mem::take(&mut self.forwards.received) {
            self.answer_forward(p.from, p.id, ForwardAnswer::NotLeader);
        }
    }
}
