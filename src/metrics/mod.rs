//! Metrics: counters, gauges and histograms that the node records with atomics only
//! (no lock, no allocation on the hot path), rendered in the Prometheus text
//! exposition format, and served by a minimal HTTP/1.1 responder for `GET /metrics`
//! and `GET /health`.
//!
//! - [`Histogram`] and [`Counter`] are the lock-free building blocks.
//! - [`Metrics`] holds every metric the node records; names follow etcd's where one
//!   exists (`raftkv_server_has_leader` for `etcd_server_has_leader`, ...).
//! - [`render`] writes them, with the gauges read at scrape time ([`Gauges`]).
//! - [`http`] answers one HTTP request on any byte stream: a bounded request head,
//!   200 / 404 / 405 / 400 answers, and the connection closed after each.
//!
//! This module spawns no thread and takes no lock; the node's metrics listener thread
//! calls [`http::answer`] for each connection.

mod histogram;
pub mod http;
mod registry;
mod render;

#[cfg(test)]
mod tests;

pub use histogram::{Counter, Histogram, DISK_BUCKETS, REQUEST_BUCKETS};
pub use registry::{ClientOp, ClientResult, Metrics, PeerTraffic};
pub use render::{render, Gauges};
