//! The client library, used by the `client` command and by `bench`.
//!
//! A [`Client`] knows several node addresses. It keeps one connection at a time, finds
//! the leader by trying addresses in order and following `NotLeader` redirects, and
//! retries with backoff inside one overall deadline per call. A write keeps the same
//! `(client_id, seq)` across its retries, so the state machine's session table applies
//! it at most once. A write that may have reached a leader but got no definite answer
//! is reported as "outcome unknown", never as success or failure.
//!
//! A [`Pipeline`] is the lower-level API for callers that keep many requests in flight
//! on one connection (`raftkv bench --conns`): requests carry ids, answers name them.
//!
//! Uses `net` and `kv`'s command types; never `node`.

mod api;
mod error;
mod pipeline;
mod retry;

pub use api::{CasOutcome, Client, ClientOptions, TransferOutcome};
pub use error::{ClientError, ClientErrorKind};
pub use pipeline::{Pipeline, DEFAULT_WINDOW};
