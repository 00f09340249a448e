//! Snapshot bytes in the simulator: a member's snapshot is its committed log up to
//! the base, encoded; the leader's outgoing chunk requests are filled from it, and a
//! follower decodes what it received and checks it is whole.

use bincode::Options;
use raftkv::raft::{Entry, LogPosition, Message, MessageBody};

use super::storage::DurableStore;

/// The encoded snapshot of `store` at `last` (entries 1..=last.index).
fn encode(store: &DurableStore, last: LogPosition) -> Vec<u8> {
    let upto = &store.entries[..last.index as usize];
    match bincode::DefaultOptions::new().serialize(upto) {
        Ok(bytes) => bytes,
        Err(e) => panic!("encoding a snapshot failed: {e}"),
    }
}

/// Fills the data of an `InstallSnapshot` the core asked for, as the runtime's
/// replicator does. Returns false if the message must be dropped (the store's
/// snapshot is no longer the one asked for). Other messages pass untouched. `cache`
/// keeps the latest encoding (entries up to a snapshot are committed: they never
/// change).
pub fn fill_chunk(
    store: &DurableStore,
    cache: &mut Option<(LogPosition, Vec<u8>)>,
    msg: &mut Message,
    max: usize,
) -> bool {
    let MessageBody::InstallSnapshot {
        last,
        offset,
        data,
        done,
        ..
    } = &mut msg.body
    else {
        return true;
    };
    assert!(data.is_empty(), "the core sent snapshot bytes itself");
    // The runtime keeps the snapshot file a transfer started with open, so an older
    // snapshot than the latest can still be served mid-transfer; below the base the
    // store's entries are the committed log, so any snapshot there can be rebuilt.
    let held = store.entry(last.index).map(|e| e.term) == Some(last.term);
    if last.index > store.base.index || !held || (*offset == 0 && *last != store.base) {
        return false;
    }
    if cache.as_ref().is_none_or(|(at, _)| at != last) {
        *cache = Some((*last, encode(store, *last)));
    }
    let Some((_, bytes)) = cache.as_ref() else {
        unreachable!("filled just above");
    };
    let start = (*offset as usize).min(bytes.len());
    let end = (start + max).min(bytes.len());
    *data = bytes[start..end].to_vec();
    *done = end == bytes.len();
    true
}

/// The entries of a received snapshot at `last`, if it decodes whole and ends at it.
pub fn decode(bytes: &[u8], last: LogPosition) -> Option<Vec<Entry>> {
    let entries: Vec<Entry> = bincode::DefaultOptions::new()
        .with_limit(bytes.len() as u64)
        .deserialize(bytes)
        .ok()?;
    let ends_at = entries.last().map(|e| LogPosition {
        term: e.term,
        index: e.index,
    });
    let consecutive = entries
        .iter()
        .enumerate()
        .all(|(k, e)| e.index == k as u64 + 1);
    (ends_at == Some(last) && consecutive).then_some(entries)
}
