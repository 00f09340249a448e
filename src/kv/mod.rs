//! The replicated state machine: a string map plus a client session table.
//!
//! Every member applies the same committed log entries in the same order and must reach
//! the same state, so nothing here reads a clock, a random number or a hash order that
//! could differ between members. `kv` uses nothing else of this crate: it owns its
//! command types, and Raft carries them as opaque bytes ([`encode_request`]).
//!
//! Exactly-once: a client tags each write with `(client_id, seq)` and keeps the pair
//! across retries. The session table remembers, per client, the last sequence number
//! applied and its result, so a retried write that was already applied returns the
//! saved result instead of being applied twice (Raft thesis §6.3). A request from a
//! client whose session was evicted is refused as expired rather than applied out of
//! order. The policy is on [`KvStore`] and in the module `kv::session`.

mod command;
mod digest;
mod error;
mod session;
mod store;

pub use command::{
    decode_request, encode_check, encode_request, Command, CommandResult, Request,
    MAX_REQUEST_BYTES,
};
pub use digest::{pair_hash, StateDigest};
pub use error::{KvError, KvErrorKind};
pub use store::{KvStore, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSION_BYTES};

#[cfg(test)]
mod tests;
