//! Writes that reach a follower: forwarded to the leader over the peer connections
//! (`raft/forward.rs`), and answered from this member's own state machine once it
//! applies the position the leader reported.
//!
//! Follower: [`write`] runs on the client's connection thread. Under the core lock it
//! hands the command to Raft, which sends it to the leader, and registers the waiter
//! under the forward's number ([`PendingRequests::add_forward`](super::pending)). The
//! leader's answer, stepped on a peer connection thread, is moved to its next stage by
//! [`Shared::dispatch`](super::shared::Shared::dispatch): parked at its position like a
//! leader's own write (the applier completes it), or failed. No new thread, lock or
//! wait: the connection thread waits on its `Completion` with the request deadline.
//!
//! Leader: [`serve_forwarded`] runs inside `dispatch`, under the core lock, and gives a
//! forwarded write the checks a local one gets (size, backpressure, quota), proposes
//! it and answers the follower. It holds no waiter: the follower's client waits there.

use super::client_ops::{self, MAX_UNCOMMITTED_ENTRIES};
use super::completion::Completion;
use super::core_state::CoreState;
use super::shared::Shared;
use crate::kv;
use crate::net::ClientResponse;
use crate::raft::{ForwardAnswer, ForwardRefused, MAX_REFUSAL_BYTES};

/// Forwards an encoded write (size already checked) to the leader and waits until
/// this member has applied it, or its outcome is known to be lost or unknown.
pub fn write(shared: &Shared, payload: Vec<u8>) -> ClientResponse {
    let done = Completion::new();
    let (id, wakeups) = {
        let mut core = shared.lock_core();
        if core.shutdown {
            return client_ops::shutting_down(false);
        }
        let id = match core.raft.forward(payload, shared.now_ms()) {
            Ok(id) => id,
            Err(ForwardRefused::NoLeader) => {
                return ClientResponse::Unavailable {
                    reason: "this member knows no leader to forward the write to \
                             (an election is under way, or it is cut off); nothing was \
                             applied, try again"
                        .into(),
                    outcome_unknown: false,
                }
            }
            Err(ForwardRefused::TooMany) => {
                return ClientResponse::Unavailable {
                    reason: format!(
                        "{} forwarded writes already wait for the leader; nothing was \
                         applied, try again later",
                        crate::raft::MAX_FORWARDED_PROPOSALS
                    ),
                    outcome_unknown: false,
                }
            }
        };
        core.pending.add_forward(id, done.clone());
        (id, shared.dispatch_deferred(&mut core))
    };
    wakeups.deliver(shared);
    match done.wait_until(client_ops::deadline(shared)) {
        Some(outcome) => client_ops::written(outcome),
        None => {
            shared.lock_core().pending.forget_forward(id);
            ClientResponse::Unavailable {
                reason: format!(
                    "the forwarded write was not applied on this member within {} ms; \
                     it may or may not be applied",
                    shared.config.request_timeout_ms
                ),
                outcome_unknown: true,
            }
        }
    }
}

/// Leader: checks, proposes and answers the writes followers forwarded since the last
/// call. Called by `dispatch` with the core lock held (takes `kv` after it, for the
/// quota, as a local write does).
pub fn serve_forwarded(shared: &Shared, core: &mut CoreState) {
    for p in core.raft.take_forwarded_proposals() {
        let answer = match refusal(shared, core, &p.data) {
            Some(answer) => answer,
            None => match core.raft.propose(p.data, shared.now_ms()) {
                Ok(position) => ForwardAnswer::Appended(position),
                Err(_) => ForwardAnswer::NotLeader,
            },
        };
        core.raft.answer_forwarded(p.from, p.id, answer);
    }
}

/// Why a forwarded write must not be proposed, if it must not: the checks
/// `client_ops::write` makes on a local write.
fn refusal(shared: &Shared, core: &CoreState, data: &[u8]) -> Option<ForwardAnswer> {
    let refused = |reason: String, retry: bool| {
        let mut reason = reason;
        if reason.len() > MAX_REFUSAL_BYTES {
            let mut end = MAX_REFUSAL_BYTES;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Some(ForwardAnswer::Refused { reason, retry })
    };
    if data.len() as u64 > kv::MAX_REQUEST_BYTES {
        let max = kv::MAX_REQUEST_BYTES;
        return refused(
            format!("the write is {} bytes, over {max}", data.len()),
            false,
        );
    }
    let uncommitted = core.raft.last_position().index - core.raft.commit_index();
    if uncommitted >= MAX_UNCOMMITTED_ENTRIES {
        let reason = format!("{uncommitted} writes are waiting to commit; try again later");
        return refused(reason, true);
    }
    let request = match kv::decode_request(data) {
        Ok(request) => request,
        Err(err) => return refused(format!("the forwarded write is malformed: {err}"), false),
    };
    match client_ops::over_quota(shared, &request) {
        Some(ClientResponse::Error { message }) => refused(message, false),
        Some(_) => refused("refused by the leader".into(), false),
        None => None,
    }
}
