//! The client session table: per client, the last applied sequence number and its result.
//!
//! Policy (identical on every member, because it depends only on the applied log):
//! - a request with `seq` greater than the client's last applied `seq` (or from a client
//!   without a session) is applied and its result saved; gaps are fine, because a
//!   client moves to a new `seq` after a write whose outcome stayed unknown;
//! - `seq` equal to the last one is a retry: the saved result is returned, nothing is
//!   applied again;
//! - `seq` below the last one is a delayed duplicate of an answered request: refused
//!   as stale, nothing applied;
//! - at most `max_sessions` sessions are kept; opening one more evicts the session
//!   whose last use (the log index of its last request, applied or retried) is oldest.
//!   A retry arriving after its session was evicted would be applied again: the cap
//!   bounds memory at the price of exactly-once for clients idle that long.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::command::CommandResult;

/// What the table knows of one client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Session {
    /// The last sequence number applied for the client.
    pub last_seq: u64,
    /// The result of that request, returned again to a retry.
    pub result: CommandResult,
    /// Log index of the client's last request (applied or retried): the LRU clock.
    pub last_index: u64,
}

/// How a request relates to its client's session.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// Not seen before: apply it.
    Fresh,
    /// A retry of the last applied request: answer with this saved result.
    Duplicate(CommandResult),
    /// Older than the last applied request: refuse it.
    Stale {
        /// The client's last applied sequence number.
        last_seq: u64,
    },
}

/// Sessions by client, with an index ordering them by last use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SessionTable {
    /// Most sessions kept; at least 1.
    max_sessions: usize,
    /// client_id -> session. Invariant: `sessions.len() <= max_sessions`.
    sessions: BTreeMap<u64, Session>,
    /// last_index -> client_id, one entry per session (log indexes are unique, so no
    /// two sessions share a last_index). Invariant: mirrors `sessions` exactly.
    by_last_use: BTreeMap<u64, u64>,
}

impl SessionTable {
    /// An empty table holding at most `max_sessions` sessions.
    pub fn new(max_sessions: usize) -> SessionTable {
        assert!(max_sessions >= 1, "max_sessions must be at least 1");
        SessionTable {
            max_sessions,
            sessions: BTreeMap::new(),
            by_last_use: BTreeMap::new(),
        }
    }

    /// Rebuilds a table from a snapshot's sessions; `None` if two share a last_index
    /// or there are more than `max_sessions`.
    pub fn from_sessions(
        max_sessions: usize,
        sessions: BTreeMap<u64, Session>,
    ) -> Option<SessionTable> {
        if max_sessions == 0 || sessions.len() > max_sessions {
            return None;
        }
        let mut by_last_use = BTreeMap::new();
        for (&client_id, session) in &sessions {
            if by_last_use.insert(session.last_index, client_id).is_some() {
                return None;
            }
        }
        Some(SessionTable {
            max_sessions,
            sessions,
            by_last_use,
        })
    }

    /// The cap.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// The sessions by client id.
    pub fn sessions(&self) -> &BTreeMap<u64, Session> {
        &self.sessions
    }

    /// The highest last_index of any session (0 if none).
    pub fn newest_use(&self) -> u64 {
        self.by_last_use.keys().next_back().copied().unwrap_or(0)
    }

    /// Classifies a request without changing anything.
    pub fn check(&self, client_id: u64, seq: u64) -> Check {
        match self.sessions.get(&client_id) {
            None => Check::Fresh,
            Some(s) if seq > s.last_seq => Check::Fresh,
            Some(s) if seq == s.last_seq => Check::Duplicate(s.result.clone()),
            Some(s) => Check::Stale {
                last_seq: s.last_seq,
            },
        }
    }

    /// Records that the client's request at log `index` was applied (`seq`, `result`)
    /// or retried (same `seq` and saved result), evicting the least recently used
    /// session if a new one does not fit.
    pub fn record(&mut self, client_id: u64, seq: u64, result: CommandResult, index: u64) {
        assert!(
            index > self.newest_use(),
            "session use at index {index} not after newest use {}",
            self.newest_use()
        );
        if let Some(old) = self.sessions.remove(&client_id) {
            assert!(seq >= old.last_seq, "seq {seq} < last {}", old.last_seq);
            self.by_last_use.remove(&old.last_index);
        } else if self.sessions.len() == self.max_sessions {
            self.evict_oldest();
        }
        let session = Session {
            last_seq: seq,
            result,
            last_index: index,
        };
        self.sessions.insert(client_id, session);
        self.by_last_use.insert(index, client_id);
        assert_eq!(self.sessions.len(), self.by_last_use.len());
        assert!(self.sessions.len() <= self.max_sessions);
    }

    fn evict_oldest(&mut self) {
        if let Some((_, client_id)) = self.by_last_use.pop_first() {
            let evicted = self.sessions.remove(&client_id);
            assert!(
                evicted.is_some(),
                "LRU index names unknown client {client_id}"
            );
        }
    }
}
