//! The Prometheus text exposition format (version 0.0.4) of a node's metrics.

use std::fmt::Write;

use super::histogram::Histogram;
use super::registry::{ClientOp, ClientResult, Metrics, OTHER_PEERS};

/// Values read from the node's state at scrape time rather than recorded as they
/// change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gauges {
    /// This node knows a leader.
    pub has_leader: bool,
    /// This node is the leader.
    pub is_leader: bool,
    /// Client writes proposed and not yet answered.
    pub proposals_pending: u64,
    /// The last index covered by the latest snapshot.
    pub snapshot_index: u64,
    /// Keys in the state machine.
    pub kv_keys: u64,
    /// The current term.
    pub term: u64,
    /// The commit index.
    pub commit_index: u64,
    /// The applied index.
    pub applied_index: u64,
}

/// Renders every metric, with `gauges` for the values read at scrape time.
pub fn render(metrics: &Metrics, gauges: &Gauges) -> String {
    let mut out = String::with_capacity(16 << 10);
    let o = &mut out;
    gauge(
        o,
        "raftkv_server_has_leader",
        "1 if this member knows a leader.",
        u64::from(gauges.has_leader),
    );
    gauge(
        o,
        "raftkv_server_is_leader",
        "1 if this member is the leader.",
        u64::from(gauges.is_leader),
    );
    counter(
        o,
        "raftkv_server_leader_changes_seen_total",
        "Leader changes this member has seen.",
        metrics.leader_changes_seen.get(),
    );
    counter(
        o,
        "raftkv_server_proposals_committed_total",
        "Log entries this member saw committed.",
        metrics.proposals_committed.get(),
    );
    counter(
        o,
        "raftkv_server_proposals_applied_total",
        "Log entries this member applied.",
        metrics.proposals_applied.get(),
    );
    gauge(
        o,
        "raftkv_server_proposals_pending",
        "Client writes proposed and not yet answered.",
        gauges.proposals_pending,
    );
    counter(
        o,
        "raftkv_server_proposals_failed_total",
        "Client writes that failed or whose outcome is unknown.",
        metrics.proposals_failed.get(),
    );
    gauge(
        o,
        "raftkv_server_term",
        "The current Raft term.",
        gauges.term,
    );
    gauge(
        o,
        "raftkv_server_commit_index",
        "The commit index.",
        gauges.commit_index,
    );
    gauge(
        o,
        "raftkv_server_applied_index",
        "The applied index.",
        gauges.applied_index,
    );
    histogram_family(
        o,
        "raftkv_disk_wal_fsync_duration_seconds",
        "Duration of WAL fsyncs.",
        [("", &metrics.wal_fsync)],
    );
    histogram_family(
        o,
        "raftkv_disk_backend_snapshot_duration_seconds",
        "Duration of snapshot saves.",
        [("", &metrics.snapshot_save)],
    );
    peer_metrics(o, metrics);
    client_metrics(o, metrics);
    gauge(
        o,
        "raftkv_snapshot_index",
        "The last log index covered by the latest snapshot.",
        gauges.snapshot_index,
    );
    gauge(
        o,
        "raftkv_kv_keys",
        "Keys in the state machine.",
        gauges.kv_keys,
    );
    out
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "gauge");
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, help, "counter");
    let _ = writeln!(out, "{name} {value}");
}

/// One histogram family; each member has its labels (`to="2"`, or none).
fn histogram_family<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    members: impl IntoIterator<Item = (&'a str, &'a Histogram)>,
) {
    header(out, name, help, "histogram");
    for (labels, h) in members {
        let (rows, count, sum) = h.snapshot();
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, cumulative) in rows {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

fn peer_label(id: u64) -> String {
    if id == OTHER_PEERS {
        "other".into()
    } else {
        id.to_string()
    }
}

fn peer_metrics(out: &mut String, metrics: &Metrics) {
    let peers: Vec<_> = metrics
        .peers()
        .filter_map(|p| Some((peer_label(p.peer_id()?), p)))
        .collect();
    let name = "raftkv_network_peer_sent_bytes_total";
    header(out, name, "Bytes sent to each peer.", "counter");
    for (id, p) in &peers {
        let _ = writeln!(out, "{name}{{to=\"{id}\"}} {}", p.sent_bytes.get());
    }
    let name = "raftkv_network_peer_received_bytes_total";
    header(out, name, "Bytes received from each peer.", "counter");
    for (id, p) in &peers {
        let _ = writeln!(out, "{name}{{from=\"{id}\"}} {}", p.received_bytes.get());
    }
    let labels: Vec<String> = peers.iter().map(|(id, _)| format!("to=\"{id}\"")).collect();
    histogram_family(
        out,
        "raftkv_network_peer_round_trip_time_seconds",
        "Round trip of an AppendEntries to each peer and its answer.",
        labels
            .iter()
            .zip(&peers)
            .map(|(l, (_, p))| (l.as_str(), &p.round_trip)),
    );
}

fn client_metrics(out: &mut String, metrics: &Metrics) {
    let name = "raftkv_client_requests_total";
    header(out, name, "Client requests by kind and outcome.", "counter");
    for op in ClientOp::ALL {
        for result in ClientResult::ALL {
            let n = metrics.client_requests(op, result);
            let (op, result) = (op.label(), result.label());
            let _ = writeln!(out, "{name}{{op=\"{op}\",result=\"{result}\"}} {n}");
        }
    }
    let labels: Vec<String> = ClientOp::ALL
        .iter()
        .map(|op| format!("op=\"{}\"", op.label()))
        .collect();
    histogram_family(
        out,
        "raftkv_client_request_duration_seconds",
        "Client request latency, from the request read to its answer written.",
        labels
            .iter()
            .zip(ClientOp::ALL)
            .map(|(l, op)| (l.as_str(), metrics.client_latency(op))),
    );
}
