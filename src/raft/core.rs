//! The `Raft` state machine: its fields, its inputs and outputs, and the dispatch of
//! incoming messages. Policy lives in the sibling files: `election.rs`,
//! `replication.rs`, `read_index.rs`, `persist.rs`; the log in `log.rs`.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::fault::{PeerFaults, MAX_TERM};
use super::follower_read::ForwardedReads;
use super::forward::Forwards;
use super::log::RaftLog;
use super::persist::PersistQueue;
use super::progress::Progress;
use super::read_index::{ReadIndexes, ReadRef};
use super::snapshot::{Incoming, SnapshotChunk};
use super::{
    Config, Entry, HardState, Index, LogPosition, Membership, Message, MessageBody, NodeId,
    Payload, Term,
};

/// What a member recovered from stable storage when it starts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialState {
    /// Term and vote as last persisted.
    pub hard_state: HardState,
    /// The last position covered by the snapshot (the log base); index 0 if none.
    pub log_base: LogPosition,
    /// Entries after the base, consecutive from `log_base.index + 1`.
    pub entries: Vec<Entry>,
    /// The configuration as of `log_base` (stored with the snapshot); `None` for the
    /// bootstrap one, `Config::voters`.
    pub membership: Option<Membership>,
}

/// The three roles of §5.1, and the pre-candidate of thesis §9.6.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Answers leaders and candidates.
    Follower,
    /// Asking for votes.
    Candidate,
    /// Takes proposals and replicates them.
    Leader,
    /// Its election timer fired and it asks for pre-votes (thesis §9.6) before
    /// campaigning; its term and vote are still those it had as a follower.
    PreCandidate,
}

/// A proposal or read was refused because this member is not the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotLeader {
    /// The leader this member knows of in its current term, if any.
    pub leader: Option<NodeId>,
}

/// Something to make durable, and the messages that must wait for it.
///
/// Contract: persist `entries` (first removing any stored entries at or after
/// `entries[0].index`) and `hard_state`, then call [`Raft::on_persisted`] with
/// [`PersistBatch::token`], then send `messages`. Batches must be persisted in the order
/// they were taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistBatch {
    /// The new hard state, if it changed since the last batch.
    pub hard_state: Option<HardState>,
    /// Entries to append; may start at or before the stored last index (a truncation).
    pub entries: Vec<Entry>,
    /// Messages that may be sent only once this batch is durable.
    pub messages: Vec<Message>,
    /// Chunks of a snapshot being received, in order, to write to a temporary file
    /// (not necessarily synced: the file only counts once the final chunk is written,
    /// the file synced and checked, and installed); a chunk at offset 0 starts the file
    /// over. If [`PersistBatch::snapshot_to_install`] names a snapshot, after this batch
    /// the runtime checks and installs the file, then calls
    /// [`Raft::snapshot_installed`] or [`Raft::snapshot_rejected`].
    pub snapshot_chunks: Vec<SnapshotChunk>,
    /// Identifies the batch to [`Raft::on_persisted`].
    pub token: PersistToken,
}

impl PersistBatch {
    /// The snapshot whose transfer this batch completes: the last chunk's, if it is
    /// final. A batch can hold a completed transfer followed by a newer one from
    /// offset 0 (the leader moved to a newer snapshot before the first was
    /// installed); the newer one's first chunk started the file over, so only the
    /// batch's last transfer is still in the file, and only it may be installed.
    pub fn snapshot_to_install(&self) -> Option<LogPosition> {
        self.snapshot_chunks
            .last()
            .filter(|chunk| chunk.done)
            .map(|chunk| chunk.last)
    }
}

/// Proof handed back to [`Raft::on_persisted`] that a batch is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersistToken {
    /// Sequence number of the batch.
    pub seq: u64,
    /// The last log position the batch wrote (or the log's last position when it wrote
    /// no entries).
    pub last: LogPosition,
}

/// The answer to a [`Raft::read_index`] request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The caller's id for the read.
    pub read_id: u64,
    /// `Ok(index)`: serve the read once the state machine has applied `index`.
    /// `Err`: leadership was lost before it could be confirmed.
    pub result: Result<Index, NotLeader>,
}

/// A snapshot of a member's progress, for `status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// This member.
    pub id: NodeId,
    /// Its role.
    pub role: Role,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of in this term.
    pub leader: Option<NodeId>,
    /// Highest index known committed.
    pub commit_index: Index,
    /// Highest index handed out by [`Raft::take_committed`].
    pub applied_index: Index,
    /// First index held in the log (log base + 1); at or below the snapshot's index
    /// + 1, lower when entries before the snapshot are kept for lagging followers.
    pub first_index: Index,
    /// Last index in the log (durable or not).
    pub last_index: Index,
    /// The latest snapshot's last index.
    pub snapshot_index: Index,
    /// On a leader: each other member's match index, by id.
    pub match_index: Vec<(NodeId, Index)>,
    /// The voters of the latest configuration, ascending.
    pub voters: Vec<NodeId>,
    /// The learners of the latest configuration, ascending.
    pub learners: Vec<NodeId>,
}

/// One Raft member. See the module documentation for the input/output contract.
///
/// Durability contract: a message returned inside a [`PersistBatch`] must not be sent
/// before that batch's hard state and entries are on stable storage.
pub struct Raft {
    /// Tuning and membership.
    pub(super) config: Config,
    /// Source of randomized election timeouts (§5.2); seeded, so runs reproduce.
    pub(super) rng: SmallRng,
    /// The latest time the caller reported.
    pub(super) now_ms: u64,
    /// Latest term this member has seen (Figure 2, persistent).
    pub(super) current_term: Term,
    /// Candidate voted for in `current_term` (Figure 2, persistent).
    /// Invariant: a candidate or leader voted for itself.
    pub(super) voted_for: Option<NodeId>,
    /// Follower, candidate or leader.
    pub(super) role: Role,
    /// The leader of `current_term`, once known.
    /// Invariant: `leader == Some(id)` exactly when `role == Leader`.
    pub(super) leader: Option<NodeId>,
    /// The log and its durable boundary.
    pub(super) log: RaftLog,
    /// The latest snapshot storage holds: what InstallSnapshot sends. The log may keep
    /// entries before it (see [`Raft::compact_keeping`]). Invariant:
    /// `log.base().index <= snapshot.index <= last_applied`.
    pub(super) snapshot: LogPosition,
    /// Highest index known committed (Figure 2, volatile).
    /// Invariant: `last_applied <= commit_index <= log.last_index()`.
    pub(super) commit_index: Index,
    /// Highest index handed out by `take_committed`.
    pub(super) last_applied: Index,
    /// A follower or (pre-)candidate campaigns when `now_ms` reaches this.
    pub(super) election_deadline_ms: u64,
    /// When `leader` was last heard from (a valid AppendEntries or InstallSnapshot);
    /// meaningful only while `leader` is set. Drives the pre-vote leader lease.
    pub(super) leader_heard_ms: u64,
    /// Candidate or pre-candidate: the answers received in this round (granted or
    /// not), self included.
    pub(super) votes: BTreeMap<NodeId, bool>,
    /// Leader: one record per other voter. Empty otherwise.
    pub(super) progress: BTreeMap<NodeId, Progress>,
    /// Leader: ReadIndex requests and rounds.
    pub(super) reads: ReadIndexes,
    /// Follower: reads waiting for a read index from the leader.
    pub(super) forwarded: ForwardedReads,
    /// Forwarded writes: a follower's waiting for answers, a leader's to propose.
    pub(super) forwards: Forwards,
    /// Messages that may be sent at once.
    pub(super) messages: Vec<Message>,
    /// Batches for storage and the messages waiting for them.
    pub(super) persist: PersistQueue,
    /// Follower: the snapshot transfer being received, if any (volatile: a restart
    /// starts any transfer over).
    pub(super) incoming: Option<Incoming>,
    /// Follower: snapshots whose final chunk was accepted and that the runtime may
    /// install; until it reports, no entry that conflicts with one is committed.
    /// Invariant: at most `MAX_INSTALLING`, oldest first.
    pub(super) installing: Vec<LogPosition>,
    /// The configuration of each snapshot in `installing` (what its InstallSnapshot
    /// carried), for the log base once it is installed.
    pub(super) installing_memberships: Vec<(LogPosition, Membership)>,
    /// Messages from peers that no correct peer sends, for `take_peer_faults`.
    pub(super) faults: PeerFaults,
    /// State digest checks to attach and those received.
    pub(super) digests: super::digest_check::DigestChecks,
    /// Leader: the leadership transfer in progress (`transfer.rs`); proposals wait.
    pub(super) transfer: Option<super::transfer::Transfer>,
}

impl Raft {
    /// Starts a member as a follower from recovered state. `seed` drives the randomized
    /// election timeouts; `now_ms` is the caller's clock.
    pub fn new(config: Config, initial: InitialState, seed: u64, now_ms: u64) -> Raft {
        assert!(
            config.voters.is_empty() || config.voters.contains(&config.id),
            "id {} not among voters {:?}",
            config.id,
            config.voters
        );
        assert!(
            config.election_timeout_min_ms < config.election_timeout_max_ms,
            "empty election timeout range [{}, {})",
            config.election_timeout_min_ms,
            config.election_timeout_max_ms
        );
        assert!(
            config.max_inflight_appends >= 1,
            "max_inflight_appends must be at least 1"
        );
        assert!(
            config.max_entries_per_append >= 1,
            "max_entries_per_append must be at least 1"
        );
        let base = initial.log_base;
        // Its own stream, so the election timeouts are those the seed always gave.
        let first_batch = SmallRng::seed_from_u64(seed ^ 0x5eed_f0a2_d5ea_d5ed).gen();
        let forwarded = ForwardedReads::new(first_batch);
        let first_forward = SmallRng::seed_from_u64(seed ^ 0xf0a2_d5ea_d5ed_5eed).gen();
        let mut raft = Raft {
            rng: SmallRng::seed_from_u64(seed),
            forwarded,
            forwards: Forwards::new(first_forward),
            now_ms,
            current_term: initial.hard_state.current_term,
            voted_for: initial.hard_state.voted_for,
            role: Role::Follower,
            leader: None,
            log: RaftLog::recovered(
                base,
                initial.entries,
                initial
                    .membership
                    .unwrap_or_else(|| Membership::bootstrap(config.voters.iter().copied())),
            ),
            snapshot: base,
            commit_index: base.index,
            last_applied: base.index,
            election_deadline_ms: now_ms,
            leader_heard_ms: now_ms,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            reads: ReadIndexes::default(),
            messages: Vec::new(),
            persist: PersistQueue::new(initial.hard_state),
            incoming: None,
            installing: Vec::new(),
            installing_memberships: Vec::new(),
            faults: PeerFaults::default(),
            digests: Default::default(),
            transfer: None,
            config,
        };
        raft.reset_election_deadline();
        raft.check_invariants();
        raft
    }

    /// Picks a fresh randomized election deadline (§5.2) from `now_ms`.
    pub(super) fn reset_election_deadline(&mut self) {
        let timeout = self
            .rng
            .gen_range(self.config.election_timeout_min_ms..self.config.election_timeout_max_ms);
        self.election_deadline_ms = self.now_ms + timeout;
    }

    /// Moves the clock forward (never back: the caller's clock is monotonic, but two
    /// threads may report slightly out of order).
    pub(super) fn observe_time(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// A majority of the voters of the latest configuration.
    pub(super) fn quorum(&self) -> usize {
        self.membership().quorum()
    }

    /// The members a leader replicates to: every other member of the latest or the
    /// committed configuration, learners included.
    pub(super) fn peers(&self) -> Vec<NodeId> {
        self.replication_targets().into_iter().collect()
    }

    /// Advances time: starts an election when the election deadline passes, sends
    /// heartbeats that are due.
    pub fn tick(&mut self, now_ms: u64) {
        self.observe_time(now_ms);
        match self.role {
            Role::Leader => {
                if self.lost_quorum() {
                    // Check-quorum: stop serving; a majority may have a new leader.
                    self.become_follower(self.current_term, None);
                    return;
                }
                self.expire_transfer();
                self.tick_heartbeats()
            }
            Role::Follower | Role::Candidate | Role::PreCandidate => {
                if self.now_ms >= self.election_deadline_ms {
                    if self.may_campaign() {
                        self.election_timeout_unless_withdrawn();
                    } else {
                        // Learners and members known removed never campaign.
                        self.reset_election_deadline();
                    }
                }
            }
        }
        self.settle_forwarded_reads();
        self.settle_forwards();
    }

    /// The earliest time at which [`Raft::tick`] has something to do.
    pub fn next_tick_ms(&self) -> u64 {
        match self.role {
            Role::Leader => self
                .next_leader_tick_ms()
                .min(self.check_quorum_deadline_ms())
                .min(self.transfer_deadline_ms()),
            Role::Follower | Role::Candidate | Role::PreCandidate => self.election_deadline_ms,
        }
    }

    /// Handles a message from a peer. Messages addressed to another member, from a
    /// removed member, or asking for a vote while a leader is in touch are dropped
    /// (see `Raft::ignores`); an id never seen is heard, as it may have been added by
    /// an entry this member has not received yet. A message no correct peer sends is
    /// dropped and reported (see [`Raft::take_peer_faults`]).
    pub fn step(&mut self, msg: Message, now_ms: u64) {
        self.step_message(msg, now_ms);
        self.settle_forwarded_reads();
        self.settle_forwards();
    }

    /// [`Raft::step`], before forwarded reads are settled.
    fn step_message(&mut self, msg: Message, now_ms: u64) {
        self.observe_time(now_ms);
        if msg.to != self.config.id || msg.from == self.config.id || self.ignores(&msg) {
            return;
        }
        if msg.term > MAX_TERM {
            let what = format!("a term above {MAX_TERM}");
            self.peer_fault(msg.from, msg.term, what);
            return;
        }
        if self.step_pre_vote(&msg) {
            return;
        }
        if msg.term > self.current_term {
            // §5.1: a higher term makes us a follower of it. Only an AppendEntries
            // names the leader.
            let leader = matches!(
                msg.body,
                MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. }
            )
            .then_some(msg.from);
            self.become_follower(msg.term, leader);
        }
        if msg.term < self.current_term {
            self.reject_stale(msg);
            return;
        }
        self.note_digest_report(&msg);
        match msg.body {
            MessageBody::RequestVote {
                last_log_index,
                last_log_term,
                ..
            } => {
                let last = LogPosition {
                    term: last_log_term,
                    index: last_log_index,
                };
                self.handle_request_vote(msg.from, last);
            }
            MessageBody::RequestVoteResponse { vote_granted } => {
                self.handle_request_vote_response(msg.from, vote_granted)
            }
            MessageBody::AppendEntries { .. } => self.handle_append_entries(msg),
            MessageBody::AppendEntriesResponse {
                success,
                match_index,
                conflict,
                read_round,
                ..
            } => self.handle_append_entries_response(
                msg.from,
                success,
                match_index,
                conflict,
                read_round,
            ),
            MessageBody::InstallSnapshot { .. } => self.handle_install_snapshot(msg),
            MessageBody::InstallSnapshotResponse {
                last,
                next_offset,
                done,
            } => self.handle_install_snapshot_response(msg.from, last, next_offset, done),
            MessageBody::PreVote { .. } => {} // answered by `step_pre_vote`
            // Its term, if newer, was adopted above; in our own term it says nothing.
            MessageBody::StaleTerm => {}
            MessageBody::PreVoteResponse { vote_granted } => {
                self.handle_pre_vote_response(msg.from, vote_granted)
            }
            MessageBody::ReadIndexRequest { batch } => {
                self.handle_read_index_request(msg.from, batch)
            }
            MessageBody::ReadIndexResponse { batch, read_index } => {
                self.handle_read_index_response(msg.from, batch, read_index)
            }
            MessageBody::TimeoutNow => self.handle_timeout_now(msg.from),
            MessageBody::ForwardProposal { id, data } => {
                self.handle_forward_proposal(msg.from, id, data)
            }
            MessageBody::ForwardProposalResponse { id, answer } => {
                self.handle_forward_response(msg.from, id, answer)
            }
        }
    }

    /// Answers a request from an older term with a [`MessageBody::StaleTerm`] notice
    /// carrying our term, so the sender steps down (§5.1). The notice echoes nothing of
    /// the request: the sender may have restarted and be in our term by now, and must
    /// not take an answer to its old message for one to its new ones. Responses from
    /// older terms are ignored.
    fn reject_stale(&mut self, msg: Message) {
        match msg.body {
            MessageBody::RequestVote { .. }
            | MessageBody::AppendEntries { .. }
            | MessageBody::InstallSnapshot { .. } => {
                let reply = self.message_to(msg.from, MessageBody::StaleTerm);
                // Carries our term, which must be durable first.
                self.send_durable(reply);
            }
            MessageBody::RequestVoteResponse { .. }
            | MessageBody::AppendEntriesResponse { .. }
            | MessageBody::InstallSnapshotResponse { .. }
            | MessageBody::PreVote { .. }
            | MessageBody::PreVoteResponse { .. }
            | MessageBody::StaleTerm
            | MessageBody::ReadIndexRequest { .. }
            | MessageBody::ReadIndexResponse { .. }
            | MessageBody::TimeoutNow
            | MessageBody::ForwardProposalResponse { .. } => {}
            // The sender learns the newer term and fails the write as unknown.
            MessageBody::ForwardProposal { .. } => {}
        }
    }

    /// A message from this member in its current term.
    pub(super) fn message_to(&self, to: NodeId, body: MessageBody) -> Message {
        Message {
            from: self.config.id,
            to,
            term: self.current_term,
            body,
        }
    }

    /// Appends a command on the leader; returns where it will be if it commits.
    /// Refused, naming no leader, while a leadership transfer is in progress.
    pub fn propose(&mut self, data: Vec<u8>, now_ms: u64) -> Result<LogPosition, NotLeader> {
        self.observe_time(now_ms);
        if self.role != Role::Leader || self.transfer.is_some() {
            let leader = self.leader.filter(|_| self.transfer.is_none());
            return Err(NotLeader { leader });
        }
        Ok(self.append_and_replicate(Payload::Command(data)))
    }

    /// Asks for a linearizable read (ReadIndex, thesis §6.4). The answer comes later
    /// through [`Raft::take_read_states`]. A follower that knows the leader asks it
    /// for a read index (`follower_read.rs`) unless too many reads wait already;
    /// anyone else refuses.
    pub fn read_index(&mut self, read_id: u64, now_ms: u64) -> Result<(), NotLeader> {
        self.observe_time(now_ms);
        match (self.role, self.leader) {
            (Role::Leader, _) => self.start_read(ReadRef::Local(read_id)),
            (Role::Follower, Some(_)) => self.forward_read(read_id)?,
            _ => {
                return Err(NotLeader {
                    leader: self.leader,
                })
            }
        }
        Ok(())
    }

    /// Messages that may be sent at once. Heartbeats of a newly opened ReadIndex round
    /// are generated here, so every read recorded since the last call shares one round;
    /// so is a follower's batch of reads for the leader.
    pub fn take_messages(&mut self) -> Vec<Message> {
        self.answer_remote_reads();
        self.flush_forwarded_reads();
        self.flush_forward_commits();
        self.flush_read_round();
        std::mem::take(&mut self.messages)
    }

    /// True if [`Raft::take_persist_batch`] would return a batch.
    pub fn has_persist_work(&self) -> bool {
        self.persist_work()
    }

    /// The next batch to make durable, if any. Several may be outstanding; a writer
    /// that takes the next batch only once the previous is durable (as a single
    /// writer thread does) gets group commit for free: whatever arrives during one
    /// fsync goes into the next batch.
    pub fn take_persist_batch(&mut self) -> Option<PersistBatch> {
        self.cut_persist_batch()
    }

    /// Reports a batch durable.
    pub fn on_persisted(&mut self, token: PersistToken, now_ms: u64) {
        self.observe_time(now_ms);
        self.persisted(token);
    }

    /// True if committed entries wait to be taken.
    pub fn has_committed(&self) -> bool {
        self.last_applied < self.commit_index
    }

    /// Up to `max` committed entries not yet taken, in index order.
    pub fn take_committed(&mut self, max: usize) -> Vec<Entry> {
        if !self.has_committed() || max == 0 {
            return Vec::new();
        }
        let out = self.log.slice(self.last_applied + 1, self.commit_index)[..]
            .iter()
            .take(max)
            .cloned()
            .collect::<Vec<_>>();
        self.last_applied += out.len() as Index;
        out
    }

    /// Reads whose fate is now known.
    pub fn take_read_states(&mut self) -> Vec<ReadState> {
        std::mem::take(&mut self.reads.ready)
    }

    /// The current role, term, indexes and progress.
    pub fn status(&self) -> Status {
        Status {
            id: self.config.id,
            role: self.role,
            term: self.current_term,
            leader: self.leader,
            commit_index: self.commit_index,
            applied_index: self.last_applied,
            first_index: self.log.base().index + 1,
            last_index: self.log.last_index(),
            snapshot_index: self.snapshot.index,
            match_index: self
                .progress
                .iter()
                .map(|(&id, pr)| (id, pr.match_index))
                .collect(),
            voters: self.membership().voters.iter().copied().collect(),
            learners: self.membership().learners.iter().copied().collect(),
        }
    }

    /// This member's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The current term.
    pub fn term(&self) -> Term {
        self.current_term
    }

    /// The vote cast in the current term, if any.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }

    /// The leader known in the current term, if any.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }

    /// Highest index known committed.
    pub fn commit_index(&self) -> Index {
        self.commit_index
    }

    /// The log base: the position just before the first entry held (index 0 if
    /// none). The latest snapshot covers it, and possibly later entries too.
    pub fn log_base(&self) -> LogPosition {
        self.log.base()
    }

    /// The latest snapshot's last position (index 0 if none).
    pub fn snapshot_position(&self) -> LogPosition {
        self.snapshot
    }

    /// The last position in the log, durable or not.
    pub fn last_position(&self) -> LogPosition {
        self.log.last_position()
    }

    /// Highest log index confirmed durable by storage.
    pub fn durable_index(&self) -> Index {
        self.log.durable_index()
    }

    /// Entries from `from` (greater than the base index) to the end of the log; empty if
    /// `from` is past the end.
    pub fn entries_from(&self, from: Index) -> &[Entry] {
        self.log.entries_from(from)
    }
}
