//! The client session table: per client, the last applied sequence number and its result.
//!
//! Policy (identical on every member, because it depends only on the applied log):
//! - a request with `seq` greater than the client's last applied `seq` is applied and
//!   its result saved; gaps are fine, because a client moves to a new `seq` after a
//!   write whose outcome stayed unknown;
//! - a request from a client without a session opens one only if its `seq` is 1 (a
//!   client's first write). A higher `seq` from an unknown client means its session
//!   was evicted (or the request is a delayed leftover of one): it is refused as
//!   expired, because applying it could apply it twice or out of order (Raft thesis
//!   §6.3). The client then reports the outcome as unknown and opens a new session;
//! - `seq` equal to the last one is a retry: the saved result is returned, nothing is
//!   applied again;
//! - `seq` below the last one is a delayed duplicate of an answered request: refused
//!   as stale, nothing applied;
//! - the table is bounded twice: at most `max_sessions` sessions, and at most
//!   `max_bytes` of sessions as counted by [`session_bytes`] (a saved `CasMismatch`
//!   holds the whole current value). Going over either bound evicts the sessions
//!   whose last use (the log index of their last request, applied or retried) is
//!   oldest; the session just used is never evicted, so one session larger than
//!   `max_bytes` alone is still kept.
//!
//! What remains: a delayed duplicate of a client's *first* write (seq 1) that arrives
//! after its session was evicted opens a new session and is applied again, since a
//! first write is what opens a session. Sessions are evicted only after
//! `max_sessions` other clients wrote, or `max_bytes` of newer results were saved.

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
    /// From a client without a session and not its first write: refuse it.
    Expired,
}

/// Bytes a session is charged besides its saved value: its key, fields and the
/// tree's bookkeeping, rounded up.
pub(super) const SESSION_OVERHEAD_BYTES: u64 = 64;

/// What one session counts against the byte bound: the overhead plus the value a
/// saved `CasMismatch` holds.
pub(super) fn session_bytes(session: &Session) -> u64 {
    let value = match &session.result {
        CommandResult::CasMismatch {
            current: Some(value),
        } => value.len() as u64,
        _ => 0,
    };
    SESSION_OVERHEAD_BYTES.saturating_add(value)
}

/// Sessions by client, with an index ordering them by last use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SessionTable {
    /// Most sessions kept; at least 1.
    max_sessions: usize,
    /// Most bytes of sessions kept (see [`session_bytes`]), unless a single session
    /// is larger by itself.
    max_bytes: u64,
    /// Sum of [`session_bytes`] over `sessions`. Invariant: `<= max_bytes` unless
    /// there is exactly one session.
    bytes: u64,
    /// client_id -> session. Invariant: `sessions.len() <= max_sessions`.
    sessions: BTreeMap<u64, Session>,
    /// last_index -> client_id, one entry per session (log indexes are unique, so no
    /// two sessions share a last_index). Invariant: mirrors `sessions` exactly.
    by_last_use: BTreeMap<u64, u64>,
}

impl SessionTable {
    /// An empty table holding at most `max_sessions` sessions and `max_bytes` bytes.
    pub fn new(max_sessions: usize, max_bytes: u64) -> SessionTable {
        assert!(max_sessions >= 1, "max_sessions must be at least 1");
        SessionTable {
            max_sessions,
            max_bytes,
            bytes: 0,
            sessions: BTreeMap::new(),
            by_last_use: BTreeMap::new(),
        }
    }

    /// Rebuilds a table from a snapshot's sessions; `None` if two share a last_index
    /// or they break either bound.
    pub fn from_sessions(
        max_sessions: usize,
        max_bytes: u64,
        sessions: BTreeMap<u64, Session>,
    ) -> Option<SessionTable> {
        if max_sessions == 0 || sessions.len() > max_sessions {
            return None;
        }
        let mut by_last_use = BTreeMap::new();
        let mut bytes: u64 = 0;
        for (&client_id, session) in &sessions {
            if by_last_use.insert(session.last_index, client_id).is_some() {
                return None;
            }
            bytes = bytes.saturating_add(session_bytes(session));
        }
        if bytes > max_bytes && sessions.len() > 1 {
            return None;
        }
        Some(SessionTable {
            max_sessions,
            max_bytes,
            bytes,
            sessions,
            by_last_use,
        })
    }

    /// The cap.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Bytes of sessions kept, as counted by [`session_bytes`].
    pub fn bytes(&self) -> u64 {
        self.bytes
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
            None if seq == 1 => Check::Fresh,
            None => Check::Expired,
            Some(s) if seq > s.last_seq => Check::Fresh,
            Some(s) if seq == s.last_seq => Check::Duplicate(s.result.clone()),
            Some(s) => Check::Stale {
                last_seq: s.last_seq,
            },
        }
    }

    /// Records that the client's request at log `index` was applied (`seq`, `result`)
    /// or retried (same `seq` and saved result), evicting the least recently used
    /// sessions while either bound is exceeded.
    pub fn record(&mut self, client_id: u64, seq: u64, result: CommandResult, index: u64) {
        assert!(
            index > self.newest_use(),
            "session use at index {index} not after newest use {}",
            self.newest_use()
        );
        if let Some(old) = self.sessions.remove(&client_id) {
            assert!(seq >= old.last_seq, "seq {seq} < last {}", old.last_seq);
            self.by_last_use.remove(&old.last_index);
            self.bytes -= session_bytes(&old);
        }
        let session = Session {
            last_seq: seq,
            result,
            last_index: index,
        };
        self.bytes = self.bytes.saturating_add(session_bytes(&session));
        self.sessions.insert(client_id, session);
        self.by_last_use.insert(index, client_id);
        // The new session has the newest last use, so it is evicted last: never, as
        // eviction stops at one session.
        while self.sessions.len() > 1
            && (self.sessions.len() > self.max_sessions || self.bytes > self.max_bytes)
        {
            self.evict_oldest();
        }
        assert_eq!(self.sessions.len(), self.by_last_use.len());
        assert!(self.sessions.len() <= self.max_sessions);
        assert!(self.sessions.contains_key(&client_id));
    }

    fn evict_oldest(&mut self) {
        if let Some((_, client_id)) = self.by_last_use.pop_first() {
            let evicted = self.sessions.remove(&client_id);
            let Some(evicted) = evicted else {
                panic!("LRU index names unknown client {client_id}");
            };
            self.bytes -= session_bytes(&evicted);
        }
    }
}
