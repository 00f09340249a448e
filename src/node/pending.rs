//! `PendingRequests`: the client requests a node is working on — writes waiting to be
//! applied, linearizable reads waiting for a leadership check or for the applier — and
//! how each one ends. It lives inside `CoreState`, under the Raft mutex; a connection
//! thread registers a request and then waits on its own `Completion`, which the applier,
//! `dispatch` or shutdown fills in.

use std::collections::{BTreeMap, HashMap};

use super::completion::Completion;
use crate::kv::{CommandResult, KvError};
use crate::raft::{ForwardAnswer, ForwardOutcome, Index, LogPosition, NodeId, ReadState, Term};

/// How a client write ended, as seen by the connection thread waiting for it.
#[derive(Debug)]
pub enum WriteOutcome {
    /// The entry was committed and applied; this is the state machine's answer.
    Applied(Result<CommandResult, KvError>),
    /// Another entry was committed at this index: this proposal was never applied.
    Overwritten,
    /// This leader's log lost the entry (a later leader of ours proposed at its index),
    /// but another member may still hold it and commit it: the outcome is unknown.
    Displaced,
    /// The node is shutting down; the write may or may not commit later.
    Shutdown,
    /// The entry, one with no state machine answer (a membership change), was
    /// committed and applied.
    Committed,
    /// A forwarded write the leader did not append (`retry`: a later try may work).
    Refused {
        /// Why, for the client.
        reason: String,
        /// True if trying again later may succeed.
        retry: bool,
    },
    /// A forwarded write whose fate this member cannot learn: why, for the client.
    Unknown(String),
}

/// How a linearizable read's wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Leadership was confirmed and the state machine has applied the read index:
    /// serve the read from the local state machine now.
    Ready,
    /// Leadership was lost before it could be confirmed.
    NotLeader(Option<NodeId>),
    /// The node is shutting down.
    Shutdown,
}

/// A proposal waiting to be applied.
struct PendingWrite {
    /// The term the entry was proposed in; a different term at its index means it was
    /// overwritten.
    term: Term,
    /// Filled in by the applier (or shutdown).
    done: Completion<WriteOutcome>,
    /// The forward number of a write a follower forwarded (`None`: proposed here), so
    /// a waiter that gives up can be found.
    forward: Option<u64>,
}

/// Every request waiting on Raft or the applier.
#[derive(Default)]
pub struct PendingRequests {
    /// Writes waiting to be applied, by log index.
    writes: BTreeMap<Index, PendingWrite>,
    /// Reads waiting for Raft to confirm leadership, by read id.
    reads: HashMap<u64, Completion<ReadOutcome>>,
    /// Reads whose leadership check passed, waiting for the applied index to reach
    /// their read index: by read index, then read id.
    reads_awaiting_apply: BTreeMap<Index, HashMap<u64, Completion<ReadOutcome>>>,
    /// The read index of each read in `reads_awaiting_apply`, by read id, so that a
    /// read whose waiter gave up can be found and dropped.
    parked_at: HashMap<u64, Index>,
    /// Id of the next linearizable read.
    next_read_id: u64,
    /// Writes forwarded to the leader, waiting for its answer, by forward number;
    /// once it names the position they move to `writes`.
    forwards: HashMap<u64, Completion<WriteOutcome>>,
    /// Requests whose outcome is decided but whose waiter is not woken yet: waking is a
    /// futex syscall per waiter, so the thread holding the Raft mutex collects them
    /// here and (through `Shared::dispatch_deferred`) wakes them after releasing it.
    decided: Vec<Decided>,
}

/// A request whose outcome is known, not yet handed to its waiter.
pub enum Decided {
    /// A write and its outcome.
    Write(Completion<WriteOutcome>, WriteOutcome),
    /// A read and its outcome.
    Read(Completion<ReadOutcome>, ReadOutcome),
}

impl Decided {
    /// Hands the outcome to the waiting connection thread.
    pub fn complete(self) {
        match self {
            Decided::Write(done, outcome) => done.complete(outcome),
            Decided::Read(done, outcome) => done.complete(outcome),
        }
    }
}

impl PendingRequests {
    /// Registers the write proposed at `position`; its outcome arrives through `done`.
    pub fn add_write(&mut self, position: LogPosition, done: Completion<WriteOutcome>) {
        self.park_write(position, done, None);
    }

    /// Parks a write at `position`: proposed here, or forwarded under `forward`.
    fn park_write(
        &mut self,
        position: LogPosition,
        done: Completion<WriteOutcome>,
        forward: Option<u64>,
    ) {
        let pending = PendingWrite {
            term: position.term,
            done,
            forward,
        };
        // A waiter left at this index from an earlier term proposed an entry that this
        // log no longer holds (a leader only appends where its log ends). That does not
        // make it dead: a member that still holds it may win a later election and
        // commit it (§5.4.1 only rules out committed entries being lost), so its
        // outcome is unknown — only an applied entry of another term at the index
        // proves it never will be.
        if let Some(old) = self.writes.insert(position.index, pending) {
            old.done.complete(WriteOutcome::Displaced);
        }
    }

    /// The applier applied the entry of `term` at `index` with `result` (`None` for a
    /// no-op): completes the write waiting there, if any.
    pub fn write_applied(
        &mut self,
        index: Index,
        term: Term,
        result: Option<&Result<CommandResult, KvError>>,
    ) {
        let Some(pending) = self.writes.remove(&index) else {
            return;
        };
        let outcome = match result {
            Some(result) if pending.term == term => WriteOutcome::Applied(result.clone()),
            None if pending.term == term => WriteOutcome::Committed,
            _ => WriteOutcome::Overwritten,
        };
        self.decided.push(Decided::Write(pending.done, outcome));
    }

    /// The state machine jumped to `index` by a snapshot from the leader: writes
    /// waiting at or below it will never be answered by the applier, and whether they
    /// were committed is unknown here.
    pub fn supersede_writes(&mut self, index: Index) {
        let later = self.writes.split_off(&(index + 1));
        for (_, pending) in std::mem::replace(&mut self.writes, later) {
            pending.done.complete(WriteOutcome::Displaced);
        }
    }

    /// Forgets a write whose waiter gave up, unless the index now belongs to another.
    pub fn forget_write(&mut self, position: LogPosition) {
        if self
            .writes
            .get(&position.index)
            .is_some_and(|p| p.term == position.term)
        {
            self.writes.remove(&position.index);
        }
    }

    /// Registers a write Raft forwarded to the leader under `id`.
    pub fn add_forward(&mut self, id: u64, done: Completion<WriteOutcome>) {
        self.forwards.insert(id, done);
    }

    /// Forgets a forwarded write whose waiter gave up, whether it still waits for the
    /// leader's answer or is parked at its position (found by a scan: only on a
    /// timeout, over at most one write per connection).
    pub fn forget_forward(&mut self, id: u64) {
        if self.forwards.remove(&id).is_none() {
            self.writes.retain(|_, w| w.forward != Some(id));
        }
    }

    /// Raft decided a forwarded write's fate at the leader: park it at the position the
    /// leader appended it, or end it. A position this member has already applied came
    /// too late to match the entry's result: its outcome is unknown.
    pub fn forward_decided(&mut self, outcome: ForwardOutcome, applied_index: Index) {
        let Some(done) = self.forwards.remove(&outcome.id) else {
            return;
        };
        let ended = match outcome.answer {
            Some(ForwardAnswer::Appended(position)) if position.index > applied_index => {
                self.park_write(position, done, Some(outcome.id));
                return;
            }
            Some(ForwardAnswer::Appended(position)) => WriteOutcome::Unknown(format!(
                "the leader appended the forwarded write at index {}, which this member \
                 applied before it learned so; it may or may not be applied",
                position.index
            )),
            Some(ForwardAnswer::NotLeader) => WriteOutcome::Refused {
                reason: "it had stepped down; nothing was applied, try again".into(),
                retry: true,
            },
            Some(ForwardAnswer::Refused { reason, retry }) => {
                WriteOutcome::Refused { reason, retry }
            }
            None => WriteOutcome::Unknown(
                "leadership changed, or the leader did not answer in time, while the write \
                 was forwarded to it; it may or may not be applied"
                    .into(),
            ),
        };
        self.decided.push(Decided::Write(done, ended));
    }

    /// A fresh read id (not yet registered).
    pub fn next_read_id(&mut self) -> u64 {
        self.next_read_id += 1;
        self.next_read_id
    }

    /// Registers a read that Raft accepted under `read_id`.
    pub fn add_read(&mut self, read_id: u64, done: Completion<ReadOutcome>) {
        self.reads.insert(read_id, done);
    }

    /// Forgets a read whose waiter gave up, whether it still waits for its
    /// leadership check or for the applier.
    pub fn forget_read(&mut self, read_id: u64) {
        if self.reads.remove(&read_id).is_some() {
            return;
        }
        let Some(index) = self.parked_at.remove(&read_id) else {
            return;
        };
        if let Some(parked) = self.reads_awaiting_apply.get_mut(&index) {
            parked.remove(&read_id);
            if parked.is_empty() {
                self.reads_awaiting_apply.remove(&index);
            }
        }
    }

    /// Raft decided a read's leadership check: complete it now, fail it, or park it
    /// until the applier reaches its read index.
    pub fn read_decided(&mut self, state: ReadState, applied_index: Index) {
        let Some(done) = self.reads.remove(&state.read_id) else {
            return;
        };
        match state.result {
            Ok(index) if index <= applied_index => {
                self.decided.push(Decided::Read(done, ReadOutcome::Ready))
            }
            Ok(index) => {
                self.reads_awaiting_apply
                    .entry(index)
                    .or_default()
                    .insert(state.read_id, done);
                self.parked_at.insert(state.read_id, index);
            }
            Err(not_leader) => self.decided.push(Decided::Read(
                done,
                ReadOutcome::NotLeader(not_leader.leader),
            )),
        }
    }

    /// The applier reached `applied_index`: release the reads parked up to it.
    pub fn applied(&mut self, applied_index: Index) {
        let later = self.reads_awaiting_apply.split_off(&(applied_index + 1));
        let ready = std::mem::replace(&mut self.reads_awaiting_apply, later);
        for (read_id, done) in ready.into_values().flatten() {
            self.parked_at.remove(&read_id);
            self.decided.push(Decided::Read(done, ReadOutcome::Ready));
        }
    }

    /// Writes registered and not yet decided or forgotten, forwarded ones included.
    pub fn waiting_writes(&self) -> usize {
        self.writes.len() + self.forwards.len()
    }

    /// Linearizable reads registered and not yet decided or forgotten, parked ones
    /// included.
    pub fn waiting_reads(&self) -> usize {
        self.reads.len()
            + self
                .reads_awaiting_apply
                .values()
                .map(HashMap::len)
                .sum::<usize>()
    }

    /// Takes the requests decided since the last call, for the caller to complete
    /// once it has released the Raft mutex.
    #[must_use = "every decided request must be completed"]
    pub fn take_decided(&mut self) -> Vec<Decided> {
        std::mem::take(&mut self.decided)
    }

    /// Completes every decided request now.
    pub fn wake_decided(&mut self) {
        for decided in self.take_decided() {
            decided.complete();
        }
    }

    /// Fails every waiting request because the node is shutting down.
    pub fn fail_all(&mut self) {
        self.wake_decided();
        for (_, pending) in std::mem::take(&mut self.writes) {
            pending.done.complete(WriteOutcome::Shutdown);
        }
        for (_, done) in self.forwards.drain() {
            done.complete(WriteOutcome::Shutdown);
        }
        for (_, done) in self.reads.drain() {
            done.complete(ReadOutcome::Shutdown);
        }
        self.parked_at.clear();
        for (_, done) in std::mem::take(&mut self.reads_awaiting_apply)
            .into_values()
            .flatten()
        {
            done.complete(ReadOutcome::Shutdown);
        }
    }
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;
    use crate::raft::NotLeader;
    use std::time::Instant;

    fn pos(term: Term, index: Index) -> LogPosition {
        LogPosition { term, index }
    }

    fn outcome<T>(done: &Completion<T>) -> Option<T> {
        done.wait_until(Instant::now())
    }

    #[test]
    fn a_write_gets_the_result_of_its_own_entry() {
        let mut p = PendingRequests::default();
        let done = Completion::new();
        p.add_write(pos(2, 5), done.clone());
        p.write_applied(5, 2, Some(&Ok(CommandResult::Put)));
        p.wake_decided();
        assert!(matches!(
            outcome(&done),
            Some(WriteOutcome::Applied(Ok(CommandResult::Put)))
        ));
    }

    #[test]
    fn another_term_at_the_index_means_overwritten() {
        let mut p = PendingRequests::default();
        let done = Completion::new();
        p.add_write(pos(2, 5), done.clone());
        p.write_applied(5, 3, None);
        p.wake_decided();
        assert!(matches!(outcome(&done), Some(WriteOutcome::Overwritten)));
    }

    #[test]
    fn a_newer_proposal_at_the_same_index_leaves_the_old_one_unknown_not_dead() {
        let mut p = PendingRequests::default();
        let (old, new) = (Completion::new(), Completion::new());
        p.add_write(pos(2, 5), old.clone());
        p.add_write(pos(4, 5), new.clone());
        // Another member may still hold (2, 5) and commit it after a later election.
        assert!(matches!(outcome(&old), Some(WriteOutcome::Displaced)));
        p.forget_write(pos(2, 5)); // the old waiter's give-up must not drop the new one
        p.write_applied(5, 4, Some(&Ok(CommandResult::CasOk)));
        p.wake_decided();
        assert!(matches!(
            outcome(&new),
            Some(WriteOutcome::Applied(Ok(CommandResult::CasOk)))
        ));
    }

    #[test]
    fn reads_wait_for_the_applier_and_fail_on_lost_leadership() {
        let mut p = PendingRequests::default();
        let (early, late, lost) = (Completion::new(), Completion::new(), Completion::new());
        let ids: Vec<u64> = (0..3).map(|_| p.next_read_id()).collect();
        p.add_read(ids[0], early.clone());
        p.add_read(ids[1], late.clone());
        p.add_read(ids[2], lost.clone());
        p.read_decided(
            ReadState {
                read_id: ids[0],
                result: Ok(3),
            },
            3,
        );
        p.read_decided(
            ReadState {
                read_id: ids[1],
                result: Ok(7),
            },
            3,
        );
        let not_leader = NotLeader { leader: Some(2) };
        p.read_decided(
            ReadState {
                read_id: ids[2],
                result: Err(not_leader),
            },
            3,
        );
        p.wake_decided();
        assert_eq!(outcome(&early), Some(ReadOutcome::Ready));
        assert_eq!(
            outcome(&late),
            None,
            "released before the applier reached 7"
        );
        assert_eq!(outcome(&lost), Some(ReadOutcome::NotLeader(Some(2))));
        p.applied(6);
        p.wake_decided();
        assert_eq!(outcome(&late), None);
        p.applied(7);
        p.wake_decided();
        assert_eq!(outcome(&late), Some(ReadOutcome::Ready));
    }

    #[test]
    fn a_read_that_timed_out_is_forgotten_even_when_parked() {
        let mut p = PendingRequests::default();
        let (waiting, parked) = (p.next_read_id(), p.next_read_id());
        p.add_read(waiting, Completion::new());
        p.add_read(parked, Completion::new());
        p.read_decided(
            ReadState {
                read_id: parked,
                result: Ok(9),
            },
            3,
        );
        assert_eq!(p.waiting_reads(), 2);
        // Both waiters gave up: one before leadership was confirmed, one after.
        p.forget_read(waiting);
        p.forget_read(parked);
        assert_eq!(p.waiting_reads(), 0, "a timed-out read is still held");
        p.applied(9);
        assert!(p.take_decided().is_empty());
    }

    #[test]
    fn a_forwarded_write_that_timed_out_is_forgotten_even_when_parked() {
        let mut p = PendingRequests::default();
        let (waiting, parked) = (Completion::new(), Completion::new());
        p.add_forward(7, waiting);
        p.add_forward(8, parked);
        let appended = ForwardAnswer::Appended(pos(2, 5));
        let outcome = ForwardOutcome {
            id: 8,
            answer: Some(appended),
        };
        p.forward_decided(outcome, 3);
        assert_eq!(p.waiting_writes(), 2);
        // Both waiters gave up: one before the leader answered, one after.
        p.forget_forward(7);
        p.forget_forward(8);
        assert_eq!(
            p.waiting_writes(),
            0,
            "a timed-out forwarded write is still held"
        );
    }

    #[test]
    fn shutdown_fails_every_waiter() {
        let mut p = PendingRequests::default();
        let (w, r, parked) = (Completion::new(), Completion::new(), Completion::new());
        p.add_write(pos(1, 1), w.clone());
        let (a, b) = (p.next_read_id(), p.next_read_id());
        p.add_read(a, r.clone());
        p.add_read(b, parked.clone());
        p.read_decided(
            ReadState {
                read_id: b,
                result: Ok(9),
            },
            0,
        );
        p.fail_all();
        assert!(matches!(outcome(&w), Some(WriteOutcome::Shutdown)));
        assert_eq!(outcome(&r), Some(ReadOutcome::Shutdown));
        assert_eq!(outcome(&parked), Some(ReadOutcome::Shutdown));
    }
}
