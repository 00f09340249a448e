//! Who may open a peer connection to this node: a member of the configuration (see
//! `members::admit_peer`) whose data directory is the one it had when this node last
//! heard from it. Each data directory gets a random incarnation when it is created;
//! the first hello of each member is remembered in the peer book on disk, and a later
//! hello under the same id with another incarnation is refused: that member's disk
//! was wiped or replaced, so it may have forgotten votes it cast and entries it
//! acknowledged, and letting it back could elect two leaders in one term or lose a
//! committed entry. The fix is to remove it and add it again under a new id.
//!
//! Runs on the connection thread during the hello. Takes `core` briefly (released
//! before anything else), then the peer book's lock (a leaf), which is held while the
//! book is rewritten (a small atomic file write, only when a member is first heard
//! from or its address changed); log lines are written with no lock held.

use std::collections::BTreeSet;

use super::shared::Shared;
use crate::raft::NodeId;
use crate::storage::{self, PeerBook, PeerRecord};

/// The peer book and which refusals were already logged.
#[derive(Default)]
pub struct Book {
    /// The records, as on disk.
    pub records: PeerBook,
    /// (member, incarnation) pairs refused and logged: each is logged once.
    logged: BTreeSet<(NodeId, u64)>,
}

impl Book {
    /// The book as loaded from the data directory.
    pub fn new(records: PeerBook) -> Book {
        Book {
            records,
            logged: BTreeSet::new(),
        }
    }
}

/// What checking a hello against the book found.
enum Checked {
    Known,
    Recorded(Result<(), storage::StorageError>),
    Replaced { known: u64, first_time: bool },
}

/// Admits (or refuses, with the reason to send back) a hello from member `peer`.
pub fn admit(shared: &Shared, peer: NodeId, incarnation: u64, addr: &str) -> Result<(), String> {
    {
        let core = shared.lock_core();
        super::members::admit_peer(&core, shared.config.id, peer)?;
    }
    match check(shared, peer, incarnation, addr) {
        Checked::Known => {}
        Checked::Recorded(Ok(())) => shared.log.info(format_args!(
            "first hello from n{peer} (incarnation {incarnation:016x}, at {addr}); remembered"
        )),
        Checked::Recorded(Err(err)) => shared.log.warn(format_args!(
            "cannot remember the incarnation of n{peer} in the peer book: {err}"
        )),
        Checked::Replaced { known, first_time } => {
            if first_time {
                shared.log.error(format_args!(
                    "refusing n{peer}: its data directory was replaced (incarnation \
                     {known:016x} before, {incarnation:016x} now), so it may have forgotten \
                     votes and entries it acknowledged. Remove it (`raftkv client member \
                     remove {peer}`) and add it again under a new id"
                ));
            }
            return Err(format!(
                "n{peer}'s data directory is not the one this cluster knew (incarnation \
                 changed): remove it with `raftkv client member remove {peer}` and add it \
                 again under a new id"
            ));
        }
    }
    shared.lock_core().members.heard_from(peer, addr);
    Ok(())
}

/// Checks and, for a member heard from the first time (or at a new address), records
/// the hello in the book, under the book's lock.
fn check(shared: &Shared, peer: NodeId, incarnation: u64, addr: &str) -> Checked {
    let mut book = shared.peer_book.lock().unwrap_or_else(|p| p.into_inner());
    match book.records.get(&peer) {
        Some(known) if known.incarnation != incarnation => {
            let known = known.incarnation;
            let first_time = book.logged.insert((peer, incarnation));
            Checked::Replaced { known, first_time }
        }
        Some(known) if known.addr == addr => Checked::Known,
        _ => {
            let record = PeerRecord {
                incarnation,
                addr: addr.to_string(),
            };
            book.records.insert(peer, record);
            Checked::Recorded(storage::save_peer_book(
                &shared.config.data_dir,
                &book.records,
            ))
        }
    }
}
