//! What a node does with one client request: propose a write and wait for it to be
//! applied, serve a linearizable read after a ReadIndex round, serve a stale read, or
//! report status. Runs on the client's connection thread.

use std::time::{Duration, Instant};

use super::completion::Completion;
use super::pending::{ReadOutcome, WriteOutcome};
use super::shared::Shared;
use crate::kv::{self, KvErrorKind, Request};
use crate::net::{ClientRequest, ClientResponse, StatusReport};
use crate::raft::{NodeId, Role};

/// Most log entries a leader holds beyond its commit index before it refuses new
/// writes (like etcd's `MaxUncommittedEntriesSize`).
pub const MAX_UNCOMMITTED_ENTRIES: u64 = 8192;

/// Answers one request.
pub fn handle(shared: &Shared, request: ClientRequest) -> ClientResponse {
    match request {
        ClientRequest::Write(request) => write(shared, request),
        ClientRequest::Get { .. } if shared.lock_core().integrity.self_corrupt => {
            ClientResponse::Unavailable {
                reason: "this member's state diverged from the cluster's (alarm CORRUPT); \
                         it serves no reads: ask another member"
                    .into(),
                outcome_unknown: false,
            }
        }
        ClientRequest::Get { key, stale: true } => {
            ClientResponse::Value(shared.lock_kv().get(&key).map(str::to_string))
        }
        ClientRequest::Get { key, stale: false } => linearizable_get(shared, &key),
        ClientRequest::Status => ClientResponse::Status(status_report(shared)),
    }
}

/// When a request that starts now must be answered.
pub(super) fn deadline(shared: &Shared) -> Instant {
    Instant::now() + Duration::from_millis(shared.config.request_timeout_ms)
}

/// A redirect to the leader this node knows of, with the address it reaches it at.
fn redirect(shared: &Shared, leader: Option<NodeId>) -> ClientResponse {
    let leader = leader.filter(|&id| id != shared.config.id);
    ClientResponse::NotLeader {
        leader_id: leader,
        leader_addr: leader.and_then(|id| shared.config.peers.get(id as usize - 1).cloned()),
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

/// Proposes a write on the leader and waits until it is applied; a follower forwards
/// it to the leader instead (`forward.rs`). A request over the size limit is refused
/// first, on any member: once proposed, an oversized entry would be stored and
/// replicated only to be rejected by every state machine.
fn write(shared: &Shared, request: Request) -> ClientResponse {
    let payload = kv::encode_request(&request);
    if payload.len() as u64 > kv::MAX_REQUEST_BYTES {
        return too_large(payload.len() as u64);
    }
    let done = Completion::new();
    let (position, wakeups) = {
        let mut core = shared.lock_core();
        if core.shutdown {
            return shutting_down(false);
        }
        if core.raft.role() != Role::Leader && core.integrity.self_corrupt {
            // A forwarded write is answered from this member's state, which diverged:
            // send the client to the leader instead, as before forwarding existed.
            return redirect(shared, core.raft.leader());
        }
        if core.raft.role() != Role::Leader {
            drop(core);
            // Forwarded rather than redirected, so clients that cannot follow a
            // redirect (a load balancer, a health check) can write through any member.
            return super::forward::write(shared, payload);
        }
        let uncommitted = core.raft.last_position().index - core.raft.commit_index();
        if uncommitted >= MAX_UNCOMMITTED_ENTRIES {
            // Backpressure: a leader cut off from its quorum would otherwise grow its log
            // without bound while every write times out.
            return ClientResponse::Unavailable {
                reason: format!("{uncommitted} writes are waiting to commit; try again later"),
                outcome_unknown: false,
            };
        }
        if core.raft.role() == Role::Leader {
            // Only the leader judges: a follower's store may lag behind a delete.
            if let Some(refusal) = over_quota(shared, &request) {
                return refusal;
            }
        }
        let now = shared.now_ms();
        let position = match core.raft.propose(payload, now) {
            Ok(position) => position,
            Err(not_leader) => return redirect(shared, not_leader.leader),
        };
        core.pending.add_write(position, done.clone());
        (position, shared.dispatch_deferred(&mut core))
    };
    wakeups.deliver(shared);
    match done.wait_until(deadline(shared)) {
        Some(outcome) => written(outcome),
        None => {
            shared.lock_core().pending.forget_write(position);
            ClientResponse::Unavailable {
                reason: format!(
                    "the write was not committed within {} ms (no quorum?); it may or may not be applied",
                    shared.config.request_timeout_ms
                ),
                outcome_unknown: true,
            }
        }
    }
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

/// The refusal of a write that sets a value once the data reached `--quota-bytes`
/// (deletes pass: they free space). Called on the leader with the core lock held: takes
/// the KV lock after it (the lock order).
pub(super) fn over_quota(shared: &Shared, request: &Request) -> Option<ClientResponse> {
    if matches!(request.command, kv::Command::Delete { .. }) {
        return None;
    }
    let held = shared.lock_kv().data_bytes();
    let quota = shared.config.quota_bytes;
    (held >= quota).then(|| ClientResponse::Error {
        message: format!(
            "quota exceeded (alarm NOSPACE): the store holds {held} bytes of keys and values, \
             --quota-bytes is {quota}; delete keys or restart the members with a larger \
             --quota-bytes"
        ),
    })
}

/// ReadIndex (thesis §6.4): confirm leadership with a majority, wait until the state
/// machine has applied the commit index recorded for the read, then read locally.
fn linearizable_get(shared: &Shared, key: &str) -> ClientResponse {
    let done = Completion::new();
    let (read_id, wakeups) = {
        let mut core = shared.lock_core();
        if core.shutdown {
            return shutting_down(false);
        }
        let read_id = core.pending.next_read_id();
        let now = shared.now_ms();
        if let Err(not_leader) = core.raft.read_index(read_id, now) {
            return redirect(shared, not_leader.leader);
        }
        core.pending.add_read(read_id, done.clone());
        (read_id, shared.dispatch_deferred(&mut core))
    };
    wakeups.deliver(shared);
    match done.wait_until(deadline(shared)) {
        Some(ReadOutcome::Ready) => {
            ClientResponse::Value(shared.lock_kv().get(key).map(str::to_string))
        }
        Some(ReadOutcome::NotLeader(leader)) => redirect(shared, leader),
        Some(ReadOutcome::Shutdown) => shutting_down(false),
        None => {
            shared.lock_core().pending.forget_read(read_id);
            ClientResponse::Unavailable {
                reason: format!(
                    "leadership could not be confirmed within {} ms (no quorum?)",
                    shared.config.request_timeout_ms
                ),
                outcome_unknown: false,
            }
        }
    }
}

/// This node's view of the cluster, for `raftkv client status`. A pre-candidate
/// (thesis §9.6) reports "follower": it has started no election, its term and vote
/// are a follower's, and `role` stays leader|follower|candidate (the status keys
/// scripts parse, listed in README.md).
pub fn status_report(shared: &Shared) -> StatusReport {
    let (status, applied_index, corrupt) = {
        let core = shared.lock_core();
        let corrupt = core.integrity.alarm.clone();
        (core.raft.status(), core.applied_index, corrupt)
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
        leader: status.leader.map(|id| {
            let addr = shared
                .config
                .peers
                .get(id as usize - 1)
                .cloned()
                .unwrap_or_default();
            (id, addr)
        }),
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
    }
}
