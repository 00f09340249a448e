//! Leadership hand-off on a node (Raft thesis §3.10): the `transfer-leader` client
//! request, and the transfer a leader makes before it shuts down on Ctrl-C or SIGTERM,
//! so that a planned restart costs the cluster no election timeout.
//!
//! The policy (refusing proposals, catching the target up, `TimeoutNow`, giving up
//! after an election timeout) is the Raft core's; this module only starts a transfer
//! and, before a shutdown, waits for it. That wait is a [`Completion`] kept in
//! [`CoreState::handoff`]: `Shared::dispatch`, which runs after every change to Raft,
//! completes it under the core lock once this member knows another leader (or the
//! transfer was given up), and the shutting-down thread waits on it with a deadline.

use std::time::{Duration, Instant};

use super::client_ops::{redirect, shutting_down};
use super::completion::Completion;
use super::core_state::CoreState;
use super::shared::Shared;
use crate::net::ClientResponse;
use crate::raft::{NodeId, Role, TransferRefused};

/// Answers `ClientRequest::TransferLeader`: starts the transfer on the leader (a
/// follower redirects to it) and answers at once; the client waits for the result.
pub fn transfer_request(shared: &Shared, target: Option<NodeId>) -> ClientResponse {
    let (started, wakeups) = {
        let mut core = shared.lock_core();
        if core.shutdown {
            return shutting_down(false);
        }
        let now = shared.now_ms();
        let started = core.raft.transfer_leadership(target, now);
        (started, shared.dispatch_deferred(&mut core))
    };
    wakeups.deliver(shared);
    match started {
        Ok(id) => {
            shared.log.info(format_args!(
                "transferring leadership to n{id} (client request)"
            ));
            ClientResponse::TransferLeader(Ok(id))
        }
        Err(TransferRefused::NotLeader(not_leader)) => redirect(shared, not_leader.leader),
        Err(TransferRefused::AlreadyLeader(id)) => ClientResponse::TransferLeader(Ok(id)),
        Err(refused) => ClientResponse::TransferLeader(Err(refused.to_string())),
    }
}

/// Before a shutdown: if this member leads, hands leadership to the most up-to-date
/// voter and waits until it knows the new leader, for at most the longest election
/// timeout (the core gives the transfer up then anyway). Logs what happened. Does
/// nothing on a follower, after a fatal error, or if there is no other voter.
pub fn before_shutdown(shared: &Shared) {
    if shared
        .fatal
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some()
    {
        return; // the disk failed: stop at once
    }
    let done = Completion::new();
    let (started, wakeups) = {
        let mut core = shared.lock_core();
        if core.shutdown || core.raft.role() != Role::Leader {
            return;
        }
        let now = shared.now_ms();
        let started = core.raft.transfer_leadership(None, now);
        if started.is_ok() {
            core.handoff = Some(done.clone());
        }
        (started, shared.dispatch_deferred(&mut core))
    };
    wakeups.deliver(shared);
    let target = match started {
        Ok(target) => target,
        Err(refused) => {
            let why = format!("no leadership hand-off before shutting down: {refused}");
            shared.log.info(format_args!("{why}"));
            return;
        }
    };
    let bound_ms = shared.config.election_timeout_max_ms;
    shared.log.info(format_args!(
        "handing leadership to n{target} before shutting down (at most {bound_ms} ms)"
    ));
    let deadline = Instant::now() + Duration::from_millis(bound_ms);
    let _ = done.wait_until(deadline);
    let leader = {
        let mut core = shared.lock_core();
        core.handoff = None;
        core.raft.leader()
    };
    match leader {
        Some(id) if id != shared.config.id => shared
            .log
            .info(format_args!("n{id} leads now; shutting down")),
        _ => shared.log.warn(format_args!(
            "the hand-off to n{target} did not complete within {bound_ms} ms; shutting \
             down anyway (the others elect a leader after an election timeout)"
        )),
    }
}

/// Called by `Shared::dispatch` under the core lock: completes the hand-off waiter
/// once this member knows another leader, or leads with the transfer given up.
pub fn settle(core: &mut CoreState, id: NodeId) {
    if core.handoff.is_none() {
        return;
    }
    let moved = core.raft.leader().is_some_and(|l| l != id);
    let given_up = core.raft.role() == Role::Leader && core.raft.transfer_target().is_none();
    if moved || given_up {
        if let Some(done) = core.handoff.take() {
            done.complete(());
        }
    }
}
