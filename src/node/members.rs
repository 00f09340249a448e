//! The members this node talks to, as the configuration in the log changes: one link
//! (an [`Outbox`] and its replicator thread) per member it sends to, how it reaches
//! each member, which peers' hellos it admits, and noticing that this member was
//! removed.
//!
//! Everything here lives in [`CoreState`] and runs under the Raft mutex, with no I/O:
//! a link is created by the first message Raft addresses to a member (its outbox takes
//! the message at once); the replicator thread for it is started by the timer thread,
//! after releasing the lock ([`Members::take_to_start`]). A link is closed (its outbox
//! closed, so its replicator exits) once its member is removed from the configuration.
//!
//! Addresses, in order of preference: this node's `--peers` entry J for member J (how
//! *this* node reaches it: a proxy, a NAT address), the address the member was added
//! with (the configuration), the address the member gave in its hello (remembered in
//! the peer book: how a member that just joined learns where the others are).

use std::collections::BTreeMap;

use super::core_state::CoreState;
use super::outbox::Outbox;
use crate::raft::{Membership, Message, NodeId, Raft};
use crate::sync::Arc;

/// The words a refusal of a removed member's hello carries; the removed member's
/// replicator recognises them and stops the node.
pub const REMOVED_REFUSAL: &str = "was removed from the cluster";

/// One member this node sends to.
struct Link {
    outbox: Arc<Outbox>,
}

/// A replicator the timer thread is to start: for member `peer`, at `addr`.
pub struct ToStart {
    /// The member.
    pub peer: NodeId,
    /// How to reach it.
    pub addr: String,
    /// Its outbox (already taking messages).
    pub outbox: Arc<Outbox>,
}

/// The links and addresses of the members (under the Raft mutex).
#[derive(Default)]
pub struct Members {
    links: BTreeMap<NodeId, Link>,
    to_start: Vec<ToStart>,
    /// Addresses members gave in their hello (loaded from the peer book).
    heard: BTreeMap<NodeId, String>,
    /// The (latest, committed) configurations links were last checked against.
    synced: Option<(Membership, Membership)>,
    /// Messages dropped because their member's address is unknown, not yet logged.
    pub unroutable: u64,
    /// Set once: this member learned its removal committed.
    pub removed: Option<String>,
    /// This member is not in its latest configuration (its removal may not be
    /// committed yet): its replicators probe the others, who refuse a removed member.
    pub removal_suspected: bool,
}

impl Members {
    /// Starts with the addresses remembered from earlier hellos.
    pub fn new(heard: BTreeMap<NodeId, String>) -> Members {
        Members {
            heard,
            ..Members::default()
        }
    }

    /// The replicators to start (the timer thread takes them).
    pub fn take_to_start(&mut self) -> Vec<ToStart> {
        std::mem::take(&mut self.to_start)
    }

    /// True if replicators wait to be started.
    pub fn has_to_start(&self) -> bool {
        !self.to_start.is_empty()
    }

    /// Every open outbox (shutdown closes them).
    pub fn outboxes(&self) -> Vec<Arc<Outbox>> {
        self.links.values().map(|l| Arc::clone(&l.outbox)).collect()
    }

    /// Notes the address member `id` said it listens at.
    pub fn heard_from(&mut self, id: NodeId, addr: &str) {
        if !addr.is_empty() {
            self.heard.insert(id, addr.to_string());
        }
    }
}

/// True if `id` was a member and the committed configuration no longer has it (nor
/// the latest one): its id is retired.
pub fn is_removed(raft: &Raft, id: NodeId) -> bool {
    let (latest, committed) = (raft.membership(), raft.committed_membership());
    id <= latest.max_id.max(committed.max_id) && !latest.contains(id) && !committed.contains(id)
}

/// How this node reaches member `id`, if it knows (see the module doc).
pub fn addr_of(core: &CoreState, peers: &[String], id: NodeId) -> Option<String> {
    let from_flag = usize::try_from(id)
        .ok()
        .and_then(|j| j.checked_sub(1))
        .and_then(|j| peers.get(j))
        .filter(|a| !a.is_empty());
    let raft = &core.raft;
    from_flag
        .or_else(|| raft.membership().addresses.get(&id))
        .or_else(|| raft.committed_membership().addresses.get(&id))
        .or_else(|| core.members.heard.get(&id))
        .cloned()
}

/// Puts Raft's messages into their members' outboxes, creating the link of a member
/// addressed for the first time (lock order: core, then outbox). Call under the Raft
/// mutex; runs [`sync`] first so links follow the configuration.
pub fn route(core: &mut CoreState, me: NodeId, peers: &[String], messages: Vec<Message>) {
    sync(core, me);
    for message in messages {
        let to = message.to;
        if let Some(link) = core.members.links.get(&to) {
            link.outbox.push([message]);
            continue;
        }
        let addr = match addr_of(core, peers, to) {
            Some(addr) if to != me && !is_removed(&core.raft, to) => addr,
            _ => {
                core.members.unroutable += 1;
                continue;
            }
        };
        let outbox = Arc::new(Outbox::new());
        outbox.push([message]);
        core.members.to_start.push(ToStart {
            peer: to,
            addr,
            outbox: Arc::clone(&outbox),
        });
        core.members.links.insert(to, Link { outbox });
    }
}

/// After a configuration change: closes the links of removed members and notices
/// this member's own removal (once its removal is committed). Cheap when nothing
/// changed (two comparisons).
pub fn sync(core: &mut CoreState, me: NodeId) {
    let latest = core.raft.membership();
    let committed = core.raft.committed_membership();
    if core
        .members
        .synced
        .as_ref()
        .is_some_and(|(l, c)| l == latest && c == committed)
    {
        return;
    }
    let (latest, committed) = (latest.clone(), committed.clone());
    let gone: Vec<NodeId> = core
        .members
        .links
        .keys()
        .copied()
        .filter(|&id| is_removed(&core.raft, id))
        .collect();
    for id in gone {
        if let Some(link) = core.members.links.remove(&id) {
            // What is queued (the entry removing it, most likely) still goes out.
            link.outbox.retire();
        }
    }
    core.members.removal_suspected = me <= latest.max_id && !latest.contains(me);
    if core.members.removed.is_none() && me <= committed.max_id && !committed.contains(me) {
        core.members.removed = Some(format!(
            "the committed configuration (voters {:?}, learners {:?}) no longer lists n{me}",
            committed.voters, committed.learners
        ));
    }
    core.members.synced = Some((latest, committed));
}

/// Decides whether to admit a hello from peer `id` (under the Raft mutex). `Err` is
/// the refusal sent back: a removed member is told so (it stops when it hears it);
/// an id the configuration does not know is refused until it does.
pub fn admit_peer(core: &CoreState, me: NodeId, id: NodeId) -> Result<(), String> {
    let raft = &core.raft;
    if id == 0 || id == me {
        return Err(format!("peer id {id} is not another member"));
    }
    if is_removed(raft, id) {
        return Err(format!(
            "n{id} {REMOVED_REFUSAL}: its id is retired (stop it; to serve again it must \
             be added under a new id with an empty data directory)"
        ));
    }
    let (latest, committed) = (raft.membership(), raft.committed_membership());
    let no_configuration = latest.max_id == 0 && committed.max_id == 0;
    if no_configuration || latest.contains(id) || committed.contains(id) {
        return Ok(());
    }
    Err(format!(
        "n{id} is not a member of the configuration n{me} knows (voters {:?}, learners \
         {:?}); add it with `raftkv client member add`",
        latest.voters, latest.learners
    ))
}

#[cfg(all(test, not(shuttle)))]
mod tests {
    use super::*;
    use crate::raft::{Config, InitialState};

    /// Member 1 of a cluster whose configuration (as of its snapshot, so committed)
    /// is `voters` and `learners` with `addresses`, ids up to `max_id` used.
    fn core(voters: &[NodeId], learners: &[NodeId], max_id: NodeId) -> CoreState {
        let membership = Membership {
            voters: voters.iter().copied().collect(),
            learners: learners.iter().copied().collect(),
            addresses: [(4, "10.0.0.4:1".to_string())].into_iter().collect(),
            max_id,
        };
        let initial = InitialState {
            membership: Some(membership),
            ..InitialState::default()
        };
        let raft = Raft::new(Config::new(1, voters.to_vec()), initial, 7, 0);
        CoreState::new(raft, 0)
    }

    #[test]
    fn a_removed_member_is_refused_saying_so_and_an_unknown_one_until_added() {
        let core = core(&[1, 3], &[4], 4);
        assert_eq!(admit_peer(&core, 1, 3), Ok(()));
        assert_eq!(admit_peer(&core, 1, 4), Ok(()), "a learner");
        let removed = admit_peer(&core, 1, 2).expect_err("n2 was removed");
        assert!(removed.contains(REMOVED_REFUSAL), "{removed}");
        let unknown = admit_peer(&core, 1, 5).expect_err("n5 was never added");
        assert!(unknown.contains("member add"), "{unknown}");
        assert!(!unknown.contains(REMOVED_REFUSAL), "{unknown}");
        assert!(admit_peer(&core, 1, 1).is_err(), "itself");
    }

    #[test]
    fn a_member_with_no_configuration_admits_any_peer() {
        let raft = Raft::new(Config::new(9, Vec::new()), InitialState::default(), 7, 0);
        let core = CoreState::new(raft, 0);
        assert_eq!(admit_peer(&core, 9, 2), Ok(()));
        assert!(!is_removed(&core.raft, 2));
    }

    #[test]
    fn addresses_come_from_peers_then_the_configuration_then_hellos() {
        let mut core = core(&[1, 3], &[4, 5], 5);
        let peers = vec![":1".to_string(), ":2".to_string(), "proxy:3".to_string()];
        core.members.heard_from(3, "10.0.0.3:1");
        core.members.heard_from(4, "10.0.0.44:1");
        core.members.heard_from(5, "10.0.0.5:1");
        assert_eq!(addr_of(&core, &peers, 3).as_deref(), Some("proxy:3"));
        assert_eq!(addr_of(&core, &peers, 4).as_deref(), Some("10.0.0.4:1"));
        assert_eq!(addr_of(&core, &peers, 5).as_deref(), Some("10.0.0.5:1"));
        assert_eq!(addr_of(&core, &peers, 6), None);
    }

    #[test]
    fn routing_creates_a_link_once_and_never_for_a_removed_member() {
        let mut core = core(&[1, 3], &[4], 4);
        let to = |to| Message {
            from: 1,
            to,
            term: 1,
            body: crate::raft::MessageBody::RequestVoteResponse { vote_granted: true },
        };
        route(&mut core, 1, &[], vec![to(4), to(4), to(2)]);
        let started = core.members.take_to_start();
        assert_eq!(started.len(), 1, "one link for n4, none for the removed n2");
        assert_eq!(
            (started[0].peer, started[0].addr.as_str()),
            (4, "10.0.0.4:1")
        );
        assert_eq!(core.members.unroutable, 1);
    }

    #[test]
    fn a_member_notices_its_committed_removal_and_suspects_an_uncommitted_one() {
        let membership = Membership::bootstrap([1, 3]);
        let initial = InitialState {
            membership: Some(Membership {
                max_id: 3,
                ..membership
            }),
            ..InitialState::default()
        };
        let raft = Raft::new(Config::new(2, Vec::new()), initial, 7, 0);
        let mut core = CoreState::new(raft, 0);
        sync(&mut core, 2);
        assert!(core.members.removal_suspected);
        let why = core
            .members
            .removed
            .clone()
            .expect("n2 knows it was removed");
        assert!(why.contains("no longer lists n2"), "{why}");
        // Member 3 of the same configuration is not removed.
        let mut other = self::core(&[1, 3], &[], 3);
        sync(&mut other, 3);
        assert!(other.members.removed.is_none() && !other.members.removal_suspected);
    }
}
