//! What a node does with one client request: answer it at once (status, a stale read,
//! a refusal), or propose a write or register a linearizable read and leave the answer
//! to the connection's writer thread, which builds it once the request completes or
//! times out (`finish`, `expire`). `start` runs on the connection's reader thread.

use std::time::{Duration, Instant};

use super::completion::Completion;
use super::conn_queue::{ConnQueue, Entry, Wait};
use super::core_state::CoreState;
use super::pending::{ReadOutcome, WriteOutcome};
use super::shared::Shared;
use crate::kv::{self, KvErrorKind, Request};
use crate::net::{ClientRequest, ClientResponse, StatusReport};
use crate::raft::{NodeId, Role};
use crate::sync::atomic::Ordering;
use crate::sync::Arc;

/// Most log entries a leader holds beyond its commit index before it refuses new
/// writes (like etcd's `MaxUncommittedEntriesSize`).
pub const MAX_UNCOMMITTED_ENTRIES: u64 = 8192;

/// Where a request that must wait is registered: its connection's queue, the tag it
/// goes under there, and the client's id for it.
pub struct Slot<'a> {
    /// The connection's in-flight table.
    pub queue: &'a Arc<ConnQueue>,
    /// The request's tag in `queue` (grows with every request of the connection).
    pub tag: u64,
    /// The client's id for the request.
    pub id: u64,
    /// The kind of request, for the metrics.
    pub op: crate::metrics::ClientOp,
    /// When it was read, for the latency metric.
    pub started: Instant,
}

impl Slot<'_> {
    /// A completion that, once filled, queues this request for the writer.
    fn completion<T>(&self) -> Completion<T> {
        let (queue, tag) = (Arc::clone(self.queue), self.tag);
        Completion::with_hook(move || queue.ready(tag))
    }

    /// Registers the request in the queue (call with `core` held, before its
    /// completion goes into `PendingRequests`); false if the connection is closing.
    fn register(&self, shared: &Shared, wait: Wait) -> bool {
        let entry = Entry {
            op: self.op,
            started: self.started,
            id: self.id,
            deadline: deadline(shared),
            wait,
        };
        self.queue.register(self.tag, entry)
    }
}

/// Starts one request: returns the answer to send now, or `None` if the request was
/// registered in `slot`'s queue (or dropped because its connection is closing).
pub fn start(shared: &Shared, request: ClientRequest, slot: &Slot) -> Option<ClientResponse> {
    match request {
        ClientRequest::Write(request) => start_write(shared, request, slot),
        ClientRequest::Get { .. } if shared.lock_core().integrity.self_corrupt => {
            Some(ClientResponse::Unavailable {
                reason: "this member's state diverged from the cluster's (alarm CORRUPT); \
                         it serves no reads: ask another member"
                    .into(),
                outcome_unknown: false,
            })
        }
        ClientRequest::Get { key, stale: true } => Some(ClientResponse::Value(
            shared.lock_kv().get(&key).map(str::to_string),
        )),
        ClientRequest::Get { key, stale: false } => start_read(shared, key, slot),
        ClientRequest::Status => Some(ClientResponse::Status(status_report(shared))),
        ClientRequest::Members => Some(super::member_ops::list(shared)),
        ClientRequest::ChangeMembers(change) => Some(super::member_ops::change(shared, change)),
        ClientRequest::TransferLeader { target } => {
            Some(super::handoff::transfer_request(shared, target))
        }
    }
}

/// When a request that starts now must be answered.
pub(super) fn deadline(shared: &Shared) -> Instant {
    Instant::now() + Duration::from_millis(shared.config.request_timeout_ms)
}

/// A redirect to the leader this node knows of, with the address it reaches it at.
/// Takes the core lock: call without it (else [`redirect_locked`]).
pub(super) fn redirect(shared: &Shared, leader: Option<NodeId>) -> ClientResponse {
    redirect_locked(shared, &shared.lock_core(), leader)
}

/// [`redirect`] with the core lock held.
pub(super) fn redirect_locked(
    shared: &Shared,
    core: &CoreState,
    leader: Option<NodeId>,
) -> ClientResponse {
    let leader = leader.filter(|&id| id != shared.config.id);
    let leader_addr = leader.and_then(|id| super::members::addr_of(core, &shared.config.peers, id));
    ClientResponse::NotLeader {
        leader_id: leader,
        leader_addr,
    }
}

/// The answer while the node shuts down.
pub(super) fn shutting_down(outcome_unknown: bool) -> ClientResponse {
    ClientResponse::Unavailable {
        reason: "the node is shutting down".into(),
        outcome_unknown,
    }
}

/// The refusal of a request of `len` bytes, over the limit.
pub fn too_large(len: u64) -> ClientResponse {
    ClientResponse::TooLarge {
        len,
        max: kv::MAX_REQUEST_BYTES,
    }
}

/// Proposes a write on the leader and registers it until it is applied; a follower
/// forwards it to the leader instead (`forward.rs`) and registers it under the
/// forward's number. A request over the size limit is refused first, on any member:
/// once proposed, an oversized entry would be stored and replicated only to be
/// rejected by every state machine.
fn start_write(shared: &Shared, request: Request, slot: &Slot) -> Option<ClientResponse> {
    let payload = kv::encode_request(&request);
    if payload.len() as u64 > kv::MAX_REQUEST_BYTES {
        return Some(too_large(payload.len() as u64));
    }
    let done = slot.completion();
    let wakeups = {
        let mut core = shared.lock_core();
        if core.shutdown {
            return Some(shutting_down(false));
        }
        // Registered in this same hold of `core`, so nothing can complete the request
        // before it is known.
        if core.raft.role() == Role::Leader {
            let position = match propose_write(shared, &mut core, &request, payload) {
                Ok(position) => position,
                Err(answer) => return Some(*answer),
            };
            let wait = Wait::Write {
                position,
                done: done.clone(),
            };
            if slot.register(shared, wait) {
                core.pending.add_write(position, done);
            }
        } else {
            let id = match super::forward::forward(shared, &mut core, payload) {
                Ok(id) => id,
                Err(answer) => return Some(*answer),
            };
            let wait = Wait::Forward {
                id,
                done: done.clone(),
            };
            if slot.register(shared, wait) {
                core.pending.add_forward(id, done);
            }
        }
        shared.dispatch_deferred(&mut core)
    };
    wakeups.deliver(shared);
    None
}

/// Leader, under `core`: the checks a local write gets (backpressure, quota), then
/// the proposal; `Err` is the answer to send instead.
fn propose_write(
    shared: &Shared,
    core: &mut CoreState,
    request: &Request,
    payload: Vec<u8>,
) -> Result<crate::raft::LogPosition, Box<ClientResponse>> {
    let uncommitted = core.raft.last_position().index - core.raft.commit_index();
    if uncommitted >= MAX_UNCOMMITTED_ENTRIES {
        // Backpressure: a leader cut off from its quorum would otherwise grow its log
        // without bound while every write times out.
        return Err(Box::new(ClientResponse::Unavailable {
            reason: format!("{uncommitted} writes are waiting to commit; try again later"),
            outcome_unknown: false,
        }));
    }
    if let Some(refusal) = over_quota(shared, request) {
        return Err(Box::new(refusal));
    }
    let now = shared.now_ms();
    core.raft
        .propose(payload, now)
        .map_err(|not_leader| Box::new(redirect_locked(shared, core, not_leader.leader)))
}

/// The answer to a write whose outcome is decided, on the leader or (forwarded) on
/// a follower.
pub(super) fn written(outcome: WriteOutcome) -> ClientResponse {
    match outcome {
        WriteOutcome::Applied(Ok(result)) => ClientResponse::Written(result),
        WriteOutcome::Applied(Err(err))
            if matches!(err.kind(), KvErrorKind::SessionExpired { .. }) =>
        {
            ClientResponse::SessionExpired {
                message: err.to_string(),
            }
        }
        WriteOutcome::Applied(Err(err)) => ClientResponse::Error {
            message: format!("the write was committed but rejected by the state machine: {err}"),
        },
        WriteOutcome::Overwritten => ClientResponse::Unavailable {
            reason: "leadership changed before the write committed; it was not applied".into(),
            outcome_unknown: false,
        },
        WriteOutcome::Displaced => ClientResponse::Unavailable {
            reason: "leadership changed before the write committed; another member may \
                     still commit it"
                .into(),
            outcome_unknown: true,
        },
        WriteOutcome::Shutdown => shutting_down(true),
        WriteOutcome::Committed => ClientResponse::Error {
            message: "the write was committed as an entry with no result".into(),
        },
        WriteOutcome::Refused {
            reason,
            retry: true,
        } => ClientResponse::Unavailable {
            reason: format!("the leader did not take the forwarded write: {reason}"),
            outcome_unknown: false,
        },
        WriteOutcome::Refused {
            reason,
            retry: false,
        } => ClientResponse::Error { message: reason },
        WriteOutcome::Unknown(reason) => ClientResponse::Unavailable {
            reason,
            outcome_unknown: true,
        },
    }
}

/// The answer to a write that did not complete in time.
fn write_timed_out(shared: &Shared) -> ClientResponse {
    ClientResponse::Unavailable {
        reason: format!(
            "the write was not committed within {} ms (no quorum?); it may or may not be applied",
            shared.config.request_timeout_ms
        ),
        outcome_unknown: true,
    }
}

/// The answer to a forwarded write that this member did not apply in time.
fn forward_timed_out(shared: &Shared) -> ClientResponse {
    ClientResponse::Unavailable {
        reason: format!(
            "the forwarded write was not applied on this member within {} ms; \
             it may or may not be applied",
            shared.config.request_timeout_ms
        ),
        outcome_unknown: true,
    }
}

/// The answer to a linearizable read that could not be confirmed in time.
fn read_timed_out(shared: &Shared) -> ClientResponse {
    ClientResponse::Unavailable {
        reason: format!(
            "leadership could not be confirmed within {} ms (no quorum?)",
            shared.config.request_timeout_ms
        ),
        outcome_unknown: false,
    }
}

/// Writer thread: the answer to a registered request that completed.
pub fn finish(shared: &Shared, wait: Wait) -> ClientResponse {
    match wait {
        Wait::Write { done, .. } => match done.try_take() {
            Some(outcome) => written(outcome),
            // Unreachable: the hook runs only once the value is in.
            None => write_timed_out(shared),
        },
        Wait::Forward { done, .. } => match done.try_take() {
            Some(outcome) => written(outcome),
            None => forward_timed_out(shared),
        },
        Wait::Read { key, done, .. } => match done.try_take() {
            Some(ReadOutcome::Ready) => {
                ClientResponse::Value(shared.lock_kv().get(&key).map(str::to_string))
            }
            Some(ReadOutcome::NotLeader(leader)) => redirect(shared, leader),
            Some(ReadOutcome::Shutdown) => shutting_down(false),
            None => read_timed_out(shared),
        },
    }
}

/// Writer thread: forgets registered requests in `PendingRequests` (they timed out,
/// or their client is gone), under one hold of `core`.
pub fn forget(shared: &Shared, entries: &[Entry]) {
    if entries.is_empty() {
        return;
    }
    let mut core = shared.lock_core();
    for entry in entries {
        match &entry.wait {
            Wait::Write { position, .. } => core.pending.forget_write(*position),
            Wait::Forward { id, .. } => core.pending.forget_forward(*id),
            Wait::Read { read_id, .. } => core.pending.forget_read(*read_id),
        }
    }
}

/// Writer thread: the answer to a registered request whose deadline passed (after
/// `forget`).
pub fn timed_out(shared: &Shared, wait: &Wait) -> ClientResponse {
    match wait {
        Wait::Write { .. } => write_timed_out(shared),
        Wait::Forward { .. } => forward_timed_out(shared),
        Wait::Read { .. } => read_timed_out(shared),
    }
}

/// The refusal of a write that would grow the data once it reached `--quota-bytes`
/// (deletes pass, and so do puts and swaps that store no more bytes than they
/// replace). Called on the leader with the core lock held: takes the KV lock after it
/// (the lock order).
pub(super) fn over_quota(shared: &Shared, request: &Request) -> Option<ClientResponse> {
    let (key, value) = match &request.command {
        kv::Command::Put { key, value } => (key, value),
        kv::Command::Cas { key, new, .. } => (key, new),
        kv::Command::Delete { .. } | kv::Command::Check => return None,
    };
    let store = shared.lock_kv();
    let held = store.data_bytes();
    let quota = shared.config.quota_bytes;
    let replaced = store.get(key).map_or(0, |old| key.len() + old.len());
    if held < quota || key.len() + value.len() <= replaced {
        return None;
    }
    Some(ClientResponse::Error {
        message: format!(
            "quota exceeded (alarm NOSPACE): the store holds {held} bytes of keys and values, \
             --quota-bytes is {quota}; delete keys or restart the members with a larger \
             --quota-bytes"
        ),
    })
}

/// ReadIndex (thesis §6.4): confirm leadership with a majority and wait until the
/// state machine has applied the commit index recorded for the read (the writer then
/// reads locally, `finish`). Registers the read.
fn start_read(shared: &Shared, key: String, slot: &Slot) -> Option<ClientResponse> {
    let done = slot.completion();
    let wakeups = {
        let mut core = shared.lock_core();
        if core.shutdown {
            return Some(shutting_down(false));
        }
        let read_id = core.pending.next_read_id();
        let now = shared.now_ms();
        if let Err(not_leader) = core.raft.read_index(read_id, now) {
            return Some(redirect_locked(shared, &core, not_leader.leader));
        }
        let wait = Wait::Read {
            read_id,
            key,
            done: done.clone(),
        };
        if slot.register(shared, wait) {
            core.pending.add_read(read_id, done);
        }
        shared.dispatch_deferred(&mut core)
    };
    wakeups.deliver(shared);
    None
}

/// This node's view of the cluster, for `raftkv client status`. A pre-candidate
/// (thesis §9.6) reports "follower": it has started no election, its term and vote
/// are a follower's, and `role` stays leader|follower|candidate (the status keys
/// scripts parse, listed in README.md).
pub fn status_report(shared: &Shared) -> StatusReport {
    let (status, applied_index, corrupt, leader_addr) = {
        let core = shared.lock_core();
        let corrupt = core.integrity.alarm.clone();
        let status = core.raft.status();
        let leader_addr = status.leader.map(|id| {
            let own = (id == shared.config.id).then(|| shared.advertised_addr.clone());
            super::members::addr_of(&core, &shared.config.peers, id)
                .or(own)
                .unwrap_or_default()
        });
        (status, core.applied_index, corrupt, leader_addr)
    };
    let nospace =
        (shared.lock_kv().data_bytes() >= shared.config.quota_bytes).then(|| "NOSPACE".to_string());
    let alarm = [corrupt, nospace].into_iter().flatten().collect::<Vec<_>>();
    let role = match status.role {
        Role::Leader => "leader",
        Role::Follower | Role::PreCandidate => "follower",
        Role::Candidate => "candidate",
    };
    StatusReport {
        id: status.id,
        role: role.to_string(),
        term: status.term,
        leader: status.leader.zip(leader_addr),
        commit_index: status.commit_index,
        applied_index,
        first_index: status.first_index,
        last_index: status.last_index,
        snapshot_index: status.snapshot_index,
        snapshot_bytes: shared
            .snapshot_bytes
            .load(crate::sync::atomic::Ordering::Relaxed),
        match_index: status.match_index,
        alarm: alarm.join(", "),
        voters: status.voters,
        learners: status.learners,
        client_requests_in_flight: shared.client_requests_in_flight.load(Ordering::Relaxed),
        // File I/O: after the core lock above was released.
        data_bytes: dir_bytes(&shared.config.data_dir, 0),
    }
}

/// Deepest directory level [`dir_bytes`] descends to (the data directory is flat or
/// one level deep; the bound keeps a symlink loop from recursing forever).
const MAX_DIR_DEPTH: u32 = 4;

/// Total size in bytes of the regular files under `dir`, best effort: entries that
/// cannot be read (removed during the walk) count 0. Never follows symlinks.
fn dir_bytes(dir: &std::path::Path, depth: u32) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total: u64 = 0;
    for entry in entries.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let size = if meta.is_dir() && depth < MAX_DIR_DEPTH {
            dir_bytes(&entry.path(), depth + 1)
        } else if meta.is_file() {
            meta.len()
        } else {
            0
        };
        total = total.saturating_add(size);
    }
    total
}
