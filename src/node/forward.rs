//! Writes that reach a follower: forwarded to the leader over the peer connections
//! (`raft/forward.rs`), and answered from this member's own state machine once it
//! applies the position the leader reported.
//!
//! Follower: [`forward`] runs on the client connection's reader thread, under the core
//! lock: it hands the command to Raft, which sends it to the leader, and the reader
//! registers the waiter under the forward's number, in its connection's queue and in
//! [`PendingRequests::add_forward`](super::pending). The leader's answer, stepped on a
//! peer connection thread, is moved to its next stage by
//! [`Shared::dispatch`](super::shared::Shared::dispatch): parked at its position like a
//! leader's own write (the applier completes it), or failed. No new thread, lock or
//! wait: the connection's writer answers once the completion is filled, or at the
//! request's deadline.
//!
//! Leader: [`serve_forwarded`] runs inside `dispatch`, under the core lock, and gives a
//! forwarded write the checks a local one gets (size, backpressure, quota), proposes
//! it and answers the follower. It holds no waiter: the follower's client waits there.

use super::client_ops::{self, MAX_UNCOMMITTED_ENTRIES};
use super::core_state::CoreState;
use super::shared::Shared;
use crate::kv;
use crate::net::ClientResponse;
use crate::raft::{ForwardAnswer, ForwardRefused, MAX_REFUSAL_BYTES};

/// Follower, under `core`: hands an encoded write (size already checked) to Raft,
/// which sends it to the leader; returns the forward's number, under which the caller
/// registers its waiter, or the answer to send instead.
pub fn forward(
    shared: &Shared,
    core: &mut CoreState,
    payload: Vec<u8>,
) -> Result<u64, Box<ClientResponse>> {
    if core.integrity.self_corrupt {
        // A forwarded write is answered from this member's state, which diverged:
        // send the client to the leader instead, as before forwarding existed.
        let leader = core.raft.leader();
        return Err(Box::new(client_ops::redirect_locked(shared, core, leader)));
    }
    // Forwarded rather than redirected, so clients that cannot follow a redirect (a
    // load balancer, a health check) can write through any member.
    let refusal = match core.raft.forward(payload, shared.now_ms()) {
        Ok(id) => return Ok(id),
        Err(ForwardRefused::NoLeader) => ClientResponse::Unavailable {
            reason: "this member knows no leader to forward the write to (an election is \
                     under way, or it is cut off); nothing was applied, try again"
                .into(),
            outcome_unknown: false,
        },
        Err(ForwardRefused::TooMany) => ClientResponse::Unavailable {
            reason: format!(
                "{} forwarded writes already wait for the leader; nothing was applied, \
                 try again later",
                crate::raft::MAX_FORWARDED_PROPOSALS
            ),
            outcome_unknown: false,
        },
    };
    Err(Box::new(refusal))
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
