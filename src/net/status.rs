//! [`StatusReport`]: what `raftkv client status` prints.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::raft::{Index, NodeId, Term};

/// A node's state as reported to `status` (its keys are listed in README.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The node's id.
    pub id: NodeId,
    /// `leader`, `follower` or `candidate`.
    pub role: String,
    /// Its current term.
    pub term: Term,
    /// The leader it knows of in this term: id and address.
    pub leader: Option<(NodeId, String)>,
    /// Highest index known committed.
    pub commit_index: Index,
    /// Highest index applied to the state machine.
    pub applied_index: Index,
    /// First index still in the log (after the snapshot).
    pub first_index: Index,
    /// Last index in the log.
    pub last_index: Index,
    /// Last index covered by the snapshot (0 if none).
    pub snapshot_index: Index,
    /// Size of the snapshot file in bytes (0 if none).
    pub snapshot_bytes: u64,
    /// On a leader: each other peer's match index. Empty otherwise.
    pub match_index: Vec<(NodeId, Index)>,
    /// `none`, `CORRUPT n<id> at index <i>` (a state digest mismatch), `NOSPACE`
    /// (`--quota-bytes` reached), or both joined by `, `.
    pub alarm: String,
    /// The voters of the node's latest configuration, ascending.
    pub voters: Vec<NodeId>,
    /// The learners (non-voting members) of that configuration, ascending.
    pub learners: Vec<NodeId>,
    /// Client requests read from every client connection and not yet answered or
    /// dropped (pipelined connections may each hold many).
    pub client_requests_in_flight: u64,
    /// Size of the node's data directory in bytes: WAL segments, snapshot and the
    /// small state files (best effort: files that vanish during the walk are skipped).
    pub data_bytes: u64,
}

/// `1,2,3`, or `none` for an empty list.
fn id_list(ids: &[NodeId]) -> String {
    if ids.is_empty() {
        return "none".to_string();
    }
    let ids: Vec<String> = ids.iter().map(NodeId::to_string).collect();
    ids.join(",")
}

impl StatusReport {
    /// One `key: value` line per field, in the order and with the keys README.md lists:
    /// `leader` is `ID ADDR` or `none`, `alarm` `none` or the alarms, `voters` and
    /// `learners` comma lists of ids or `none`, `client_requests_in_flight`, `data_bytes`,
    /// then
    /// `peer.N.match_index` for each
    /// entry of `match_index` (the node fills it only while leader). Every line ends
    /// in `\n`.
    pub fn to_lines(&self) -> String {
        let leader = match &self.leader {
            Some((id, addr)) => format!("{id} {addr}"),
            None => "none".to_string(),
        };
        let alarm = if self.alarm.is_empty() {
            "none"
        } else {
            &self.alarm
        };
        let (voters, learners) = (id_list(&self.voters), id_list(&self.learners));
        let mut out = String::new();
        let fields: [(&str, &dyn std::fmt::Display); 15] = [
            ("id", &self.id),
            ("role", &self.role),
            ("term", &self.term),
            ("leader", &leader),
            ("commit_index", &self.commit_index),
            ("applied_index", &self.applied_index),
            ("first_index", &self.first_index),
            ("last_index", &self.last_index),
            ("snapshot_index", &self.snapshot_index),
            ("snapshot_bytes", &self.snapshot_bytes),
            ("alarm", &alarm),
            ("voters", &voters),
            ("learners", &learners),
            ("client_requests_in_flight", &self.client_requests_in_flight),
            ("data_bytes", &self.data_bytes),
        ];
        for (key, value) in fields {
            let _ = writeln!(out, "{key}: {value}");
        }
        for (peer, index) in &self.match_index {
            let _ = writeln!(out, "peer.{peer}.match_index: {index}");
        }
        out
    }
}
