//! `member list|add|promote|remove` on the node: the leader lists its latest
//! configuration, or proposes one single-server change and answers once it is
//! committed and applied. Runs on the client's connection thread, like a write.

use super::client_ops::{deadline, redirect_locked, shutting_down};
use super::completion::Completion;
use super::core_state::CoreState;
use super::pending::WriteOutcome;
use super::shared::Shared;
use crate::net::{ClientResponse, MemberInfo};
use crate::raft::{ChangeRefused, MembershipChange, Role};

/// The leader's latest configuration, or a redirect.
pub fn list(shared: &Shared) -> ClientResponse {
    let core = shared.lock_core();
    if core.raft.role() != Role::Leader {
        return redirect_locked(shared, &core, core.raft.leader());
    }
    members(shared, &core)
}

/// Every member of the latest configuration, ascending by id.
fn members(shared: &Shared, core: &CoreState) -> ClientResponse {
    let m = core.raft.membership();
    let mut list: Vec<MemberInfo> = m
        .voters
        .iter()
        .map(|&id| (id, true))
        .chain(m.learners.iter().map(|&id| (id, false)))
        .map(|(id, voter)| {
            let own = (id == shared.config.id).then(|| shared.advertised_addr.clone());
            let addr = super::members::addr_of(core, &shared.config.peers, id)
                .or(own)
                .unwrap_or_default();
            MemberInfo { id, voter, addr }
        })
        .collect();
    list.sort_by_key(|m| m.id);
    ClientResponse::Members(list)
}

/// True if `change` is already in force and committed: a retry of a change whose
/// answer was lost succeeds instead of being refused (a leader removing itself
/// steps down and stops as its removal commits, so its client often retries). An id
/// that was used and is no longer a member counts as removed.
fn already_done(core: &CoreState, change: &MembershipChange) -> bool {
    let committed = core.raft.committed_membership();
    if core.raft.membership() != committed {
        return false;
    }
    match change {
        MembershipChange::AddLearner { id, address } => {
            committed.contains(*id) && committed.addresses.get(id) == Some(address)
        }
        MembershipChange::Promote { id } => committed.is_voter(*id),
        MembershipChange::Remove { id } => *id <= committed.max_id && !committed.contains(*id),
    }
}

/// Proposes `change` on the leader and waits until it is applied.
pub fn change(shared: &Shared, change: MembershipChange) -> ClientResponse {
    let done = Completion::new();
    let (position, wakeups) = {
        let mut core = shared.lock_core();
        if core.shutdown {
            return shutting_down(false);
        }
        if core.raft.role() == Role::Leader && already_done(&core, &change) {
            return members(shared, &core);
        }
        let now = shared.now_ms();
        let position = match core.raft.propose_membership(change, now) {
            Ok(position) => position,
            Err(ChangeRefused::NotLeader(nl)) => return redirect_locked(shared, &core, nl.leader),
            Err(ChangeRefused::NoCommitInTerm) => {
                return ClientResponse::Unavailable {
                    reason: ChangeRefused::NoCommitInTerm.to_string(),
                    outcome_unknown: false,
                }
            }
            Err(refused) => {
                return ClientResponse::MemberRefused {
                    reason: refused.to_string(),
                }
            }
        };
        core.pending.add_write(position, done.clone());
        (position, shared.dispatch_deferred(&mut core))
    };
    wakeups.deliver(shared);
    match done.wait_until(deadline(shared)) {
        Some(WriteOutcome::Committed) => members(shared, &shared.lock_core()),
        Some(WriteOutcome::Overwritten) => ClientResponse::Unavailable {
            reason: "leadership changed before the change committed; it was not made".into(),
            outcome_unknown: false,
        },
        Some(WriteOutcome::Shutdown) => shutting_down(true),
        Some(_) => ClientResponse::Unavailable {
            reason: "leadership changed before the change committed; another member may \
                     still commit it"
                .into(),
            outcome_unknown: true,
        },
        None => {
            shared.lock_core().pending.forget_write(position);
            ClientResponse::Unavailable {
                reason: format!(
                    "the change was not committed within {} ms (no quorum?); it may or may \
                     not be made",
                    shared.config.request_timeout_ms
                ),
                outcome_unknown: true,
            }
        }
    }
}
