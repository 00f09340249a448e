//! The Redis protocol (RESP2) codec: parsing client commands and encoding replies, with
//! no I/O, so that every byte a Redis client can send is handled by code the fuzzer and
//! the property tests reach directly.
//!
//! - [`parse_command`] takes the bytes read so far from a connection and returns the
//!   first complete command (a multibulk array of bulk strings, or an inline command
//!   such as redis-benchmark's `PING_INLINE` sends), how many bytes it used, or that
//!   more bytes are needed. A malformed request is a [`ProtocolError`] whose text is
//!   what Redis answers (`-ERR Protocol error: ...`), after which the connection is
//!   closed, as Redis does.
//! - [`Reply`] is what a command answers; [`Reply::encode`] writes it in RESP2, and
//!   [`parse_reply`] reads one back (for tests and tools), with a nesting limit.
//!
//! Every length read from the wire is checked against a limit before anything is
//! allocated: [`CommandLimits`] bounds the array length, a bulk string's length (in
//! line with the native protocol's request limit) and an inline command's length.

mod command;
mod reply;

#[cfg(test)]
mod tests;

pub use command::{parse_command, CommandLimits, Parsed, ProtocolError};
pub use reply::{parse_reply, Reply, MAX_REPLY_DEPTH};
