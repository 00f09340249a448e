//! `NodeConfig`: what a node is started with, checked before any thread starts.

use std::path::PathBuf;

use crate::logging::Level;
use crate::net::NodeSecrets;
use crate::raft::NodeId;

/// Default of `--max-clients`.
pub const DEFAULT_MAX_CLIENTS: usize = 1024;
/// Default of `--client-idle-timeout-ms`: five minutes, long enough for any client
/// between two requests, short enough that forgotten connections do not pile up.
pub const DEFAULT_CLIENT_IDLE_TIMEOUT_MS: u64 = 300_000;

/// Default of `--max-inflight-per-conn`: requests one client connection may have in
/// flight at once (a pipelined client's window).
pub const DEFAULT_MAX_INFLIGHT_PER_CONN: usize = 128;
/// Largest `--max-inflight-per-conn` accepted: memory per connection stays bounded.
pub const MAX_INFLIGHT_PER_CONN: usize = 65_536;

/// Configuration of one node (the `raftkv node` flags).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's id: its 1-based position in `peers`.
    pub id: NodeId,
    /// The address to listen on, `HOST:PORT` (port 0 picks a free one).
    pub listen_addr: String,
    /// How this node reaches every member, itself included, by position: bootstraps
    /// a new cluster (members 1..=N are its voters) and, on every start, overrides how
    /// this node reaches the members it names (entry J: member J).
    pub peers: Vec<String>,
    /// `--join`: a member to be of an existing cluster, with no configuration of its
    /// own; it never campaigns and waits for the leader to reach it (after `member
    /// add`). `peers` may then be empty. Only used when the data directory is created.
    pub join: bool,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The cluster name every connection's hello must carry.
    pub cluster: String,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max_ms: u64,
    /// Interval between heartbeats from a leader.
    pub heartbeat_interval_ms: u64,
    /// How long a connection thread waits for a write to commit or a read to be
    /// confirmed before answering "outcome unknown" / "unavailable".
    pub request_timeout_ms: u64,
    /// Most client connections open at once (`--max-clients`); a client over it is
    /// refused at its hello with the reason. Peers have their own budget.
    pub max_clients: usize,
    /// A client connection silent this long is closed; 0 means never
    /// (`--client-idle-timeout-ms`).
    pub client_idle_timeout_ms: u64,
    /// How much to log.
    pub log_level: Level,
    /// Snapshot once this many entries were applied since the last snapshot.
    pub snapshot_entries: u64,
    /// Snapshot once this many command bytes were applied since the last snapshot.
    pub snapshot_bytes: u64,
    /// Entries kept before a snapshot when the log is compacted, so a follower that
    /// fell a little behind gets them instead of the whole snapshot (at most
    /// `snapshot_bytes` bytes of them).
    pub snapshot_catchup_entries: u64,
    /// Most snapshot bytes in one InstallSnapshot chunk.
    pub snapshot_chunk_bytes: usize,
    /// The secrets demanded of peers and clients in the hello, and proved to peers
    /// (`--peer-secret-file`, `--client-secret-file`); none by default.
    pub secrets: NodeSecrets,
    /// The leader appends a state digest check every this many entries; 0 never
    /// (`--digest-check-entries`, module `node::integrity`).
    pub digest_check_entries: u64,
    /// Writes that set a value are refused once the keys and values held reach this
    /// many bytes (`--quota-bytes`).
    pub quota_bytes: u64,
    /// Most requests one client connection may have in flight; the node reads no more
    /// from it until one is answered (`--max-inflight-per-conn`).
    pub max_inflight_per_conn: usize,
    /// Where to serve `GET /metrics` and `GET /health` over HTTP (`--metrics-addr`);
    /// `None` (the default) serves neither.
    pub metrics_addr: Option<String>,
}

/// Default of `--quota-bytes`: 2 GiB, etcd's default backend quota.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 << 30;

impl NodeConfig {
    /// The defaults (as `raftkv node --help` shows them) for member `id` of `peers`.
    pub fn new(
        id: NodeId,
        listen_addr: String,
        peers: Vec<String>,
        data_dir: PathBuf,
    ) -> NodeConfig {
        NodeConfig {
            id,
            listen_addr,
            peers,
            join: false,
            data_dir,
            cluster: "raftkv".to_string(),
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 550,
            heartbeat_interval_ms: 80,
            request_timeout_ms: 1000,
            max_clients: DEFAULT_MAX_CLIENTS,
            client_idle_timeout_ms: DEFAULT_CLIENT_IDLE_TIMEOUT_MS,
            log_level: Level::Info,
            snapshot_entries: 100_000,
            snapshot_bytes: 64 << 20,
            snapshot_catchup_entries: 5000,
            snapshot_chunk_bytes: 1 << 20,
            secrets: NodeSecrets::default(),
            digest_check_entries: super::integrity::DEFAULT_DIGEST_CHECK_ENTRIES,
            quota_bytes: DEFAULT_QUOTA_BYTES,
            max_inflight_per_conn: DEFAULT_MAX_INFLIGHT_PER_CONN,
            metrics_addr: None,
        }
    }

    /// Checks the values that would make the node misbehave; the message says which.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.peers.len() as u64;
        if self.join {
            if self.id == 0 {
                return Err("--id must be at least 1".into());
            }
        } else if n == 0 {
            return Err("--peers must list at least one member".into());
        } else if self.id == 0 || self.id > n {
            return Err(format!(
                "--id {} is not a position in --peers (1..={n})",
                self.id
            ));
        }
        if self.cluster.is_empty() {
            return Err("--cluster must not be empty".into());
        }
        if self.election_timeout_min_ms == 0
            || self.election_timeout_min_ms >= self.election_timeout_max_ms
        {
            return Err(format!(
                "election timeout range {}..{} ms is empty",
                self.election_timeout_min_ms, self.election_timeout_max_ms
            ));
        }
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_interval_ms >= self.election_timeout_min_ms
        {
            return Err(format!(
                "heartbeat interval {} ms must be above 0 and below the election timeout minimum {} ms",
                self.heartbeat_interval_ms, self.election_timeout_min_ms
            ));
        }
        if self.snapshot_entries == 0 || self.snapshot_bytes == 0 {
            return Err("--snapshot-entries and --snapshot-bytes must be above 0".into());
        }
        if self.max_clients == 0 {
            return Err("--max-clients must be at least 1".into());
        }
        if !(1..=MAX_INFLIGHT_PER_CONN).contains(&self.max_inflight_per_conn) {
            return Err(format!(
                "--max-inflight-per-conn {} is not between 1 and {MAX_INFLIGHT_PER_CONN}",
                self.max_inflight_per_conn
            ));
        }
        if self.snapshot_chunk_bytes == 0
            || self.snapshot_chunk_bytes as u64 > crate::limits::MAX_SNAPSHOT_CHUNK_BYTES
        {
            return Err(format!(
                "snapshot chunk of {} bytes does not fit a frame",
                self.snapshot_chunk_bytes
            ));
        }
        Ok(())
    }

    /// The client idle timeout as a socket read timeout (`None`: never).
    pub fn client_idle_timeout(&self) -> Option<std::time::Duration> {
        (self.client_idle_timeout_ms > 0)
            .then(|| std::time::Duration::from_millis(self.client_idle_timeout_ms))
    }
}
