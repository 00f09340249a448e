//! The command-line grammar (clap derive) with the help text every flag carries.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::addrs;

/// raftkv: a replicated key-value store on Raft.
#[derive(Parser, Debug)]
#[command(
    name = "raftkv",
    version,
    about = "A replicated key-value store on a from-scratch Raft",
    long_about = "raftkv: a replicated key-value store on a from-scratch Raft.\n\n\
        Start three nodes (./run-cluster.sh does this), then read and write through any \
        of them with `raftkv client`. An acknowledged write survives any minority of \
        crashed nodes; reads are linearizable unless --stale is given.\n\n\
        Exit codes: 0 done, 1 a definite no (key not found, cas mismatch), 2 usage error, \
        3 outcome unknown or cluster unavailable, 4 any other error."
)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one cluster member until Ctrl-C or SIGTERM.
    Node(NodeArgs),
    /// Talk to a running cluster: put, get, delete, cas, status, member.
    Client(ClientArgs),
    /// Measure throughput and latency of a running cluster.
    Bench(BenchArgs),
    /// Print a new random secret (64 hex digits) for --peer-secret-file or
    /// --client-secret-file: `raftkv keygen > peer.key && chmod 600 peer.key`.
    Keygen,
}

/// Flags of `raftkv node`.
#[derive(Args, Debug)]
#[command(
    long_about = "Run one cluster member until Ctrl-C or SIGTERM (both stop it \
    cleanly).\n\n\
    Every member lists all members in --peers, in the same order; member N is the Nth \
    entry and listens on --addr. Entry J is how THIS node reaches member J, so nodes may \
    reach the same member at different addresses (a proxy, NAT)."
)]
pub struct NodeArgs {
    /// This node's id: its 1-based position in --peers (with --join, the id it was
    /// added with by `member add`).
    #[arg(long, default_value_t = 1)]
    pub id: u64,
    /// Address to listen on, HOST:PORT; ":PORT" means 127.0.0.1:PORT.
    #[arg(long, default_value = ":8001", value_parser = addrs::one)]
    pub addr: String,
    /// Comma list of every member's address, this node's included, at position id-1
    /// (default :8001,:8002,:8003; with --join, none). Creates a new cluster whose
    /// voters are these members; on every start, entry J overrides how this node
    /// reaches member J (members added later are reached at the address they were
    /// added with).
    #[arg(long, value_parser = addrs::list)]
    pub peers: Option<String>,
    /// Join an existing cluster: with an empty data directory, start as a member to
    /// be, with no configuration; it never campaigns and waits for the leader to
    /// reach it at --addr, after `raftkv client member add ID ADDR`. Default off.
    #[arg(long)]
    pub join: bool,
    /// Data directory (created if missing; locked while the node runs).
    #[arg(long, default_value = "./data")]
    pub data: PathBuf,
    /// Cluster name; every connection's hello must carry it, so nodes of different
    /// clusters never talk.
    #[arg(long, default_value = "raftkv")]
    pub cluster: String,
    /// Log level: error, warn, info or debug (also from RAFTKV_LOG).
    #[arg(long, env = "RAFTKV_LOG", default_value = "info")]
    pub log_level: String,
    /// Lower bound of the randomized election timeout, in milliseconds.
    #[arg(long, default_value_t = 300)]
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout, in milliseconds.
    #[arg(long, default_value_t = 550)]
    pub election_timeout_max_ms: u64,
    /// Interval between a leader's heartbeats, in milliseconds.
    #[arg(long, default_value_t = 80)]
    pub heartbeat_ms: u64,
    /// How long the node waits for a write to commit or a read to be confirmed before
    /// telling the client it is unavailable, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub request_timeout_ms: u64,
    /// Take a snapshot and compact the log once this many entries were applied since
    /// the last snapshot (each node waits up to a quarter more, at random, so that the
    /// members do not all pause their log writes for a snapshot at once). etcd's
    /// default --snapshot-count is the same 100,000.
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_entries: u64,
    /// Take a snapshot once this many bytes of commands were applied since the last
    /// snapshot (whichever threshold is reached first).
    #[arg(long, default_value_t = 64 << 20)]
    pub snapshot_bytes: u64,
    /// Most client connections open at once. A client over the limit is refused at its
    /// hello with a message saying so. Connections between members have their own
    /// budget, so clients can never lock the members out of each other.
    #[arg(long, default_value_t = raftkv::node::config::DEFAULT_MAX_CLIENTS)]
    pub max_clients: usize,
    /// Close a client connection that sent nothing for this long, in milliseconds;
    /// 0 keeps idle clients forever (like Redis' `timeout`). The client library
    /// reconnects by itself.
    #[arg(long, default_value_t = raftkv::node::config::DEFAULT_CLIENT_IDLE_TIMEOUT_MS)]
    pub client_idle_timeout_ms: u64,
    /// Keep this many entries before each snapshot when compacting the log (in memory
    /// and in the WAL), so that a follower that fell a little behind (a slow disk, a
    /// restart) is sent those entries rather than the whole snapshot. The kept entries
    /// are also capped at --snapshot-bytes bytes together. 0 keeps none. etcd's
    /// SnapshotCatchUpEntries is the same 5,000.
    #[arg(long, default_value_t = 5000)]
    pub snapshot_catchup_entries: u64,
    /// File holding the secret every member proves to every other in the hello (make
    /// one with `raftkv keygen`; mode 600; a second line is an older secret still
    /// accepted, for rotation). Default: none, peers are not authenticated.
    #[arg(long, value_name = "FILE")]
    pub peer_secret_file: Option<PathBuf>,
    /// File holding the secret clients must prove in the hello (a different one from
    /// the peer secret, so a client can never act as a member). Default: none, any
    /// client is served.
    #[arg(long, value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Run on a non-loopback --addr without both secret files. Without this flag such
    /// a node refuses to start, as anyone who reaches the port could act as a member.
    #[arg(long)]
    pub insecure: bool,
    /// The leader appends a state digest check to the log every this many entries;
    /// each member compares its digest of the whole key-value state with the
    /// leader's, and a mismatch raises `alarm: CORRUPT ...` in `status`. 0 disables.
    #[arg(long, default_value_t = raftkv::node::integrity::DEFAULT_DIGEST_CHECK_ENTRIES)]
    pub digest_check_entries: u64,
    /// Once the keys and values held reach this many bytes, writes that would grow
    /// them (a put or cas storing more than it replaces) are refused (client exit code
    /// 4) and `status` shows
    /// `alarm: NOSPACE`; deletes and reads still work. Default 2 GiB, as etcd's quota.
    #[arg(long, default_value_t = raftkv::node::config::DEFAULT_QUOTA_BYTES)]
    pub quota_bytes: u64,
    /// Most requests one client connection may have in flight at once (a pipelined
    /// client's window, 1 to 65536). At the limit the node reads nothing more from
    /// that connection until it has answered one, so a client that sends without
    /// reading its answers holds a bounded amount of the node's memory.
    #[arg(long, default_value_t = raftkv::node::config::DEFAULT_MAX_INFLIGHT_PER_CONN)]
    pub max_inflight_per_conn: usize,
    /// Serve Prometheus metrics at `GET /metrics` and a health check at `GET /health`
    /// (200 `ok` when this node knows a leader and has no alarm, else 503 with the
    /// reason) over plain HTTP on this HOST:PORT; ":PORT" means 127.0.0.1:PORT.
    /// Default: off.
    #[arg(long, value_name = "HOST:PORT", value_parser = addrs::one)]
    pub metrics_addr: Option<String>,
}

/// Flags of `raftkv client`.
#[derive(Args, Debug)]
#[command(
    long_about = "Talk to a running cluster. The client finds the leader itself \
    from any node in --addr and follows redirects; a write is retried with the same \
    (client id, sequence number), so a retry is never applied twice.\n\n\
    Exit codes: 0 done, 1 a definite no (key not found; cas found another value, shown on \
    stderr), 2 usage error, 3 outcome unknown or cluster unavailable (the message says \
    whether the write may have been applied), 4 any other error.\n\n\
    The flags below may come before or after the operation. A key or value that begins \
    with a dash goes after `--`: `raftkv client put KEY -- -5`."
)]
pub struct ClientArgs {
    /// Comma list of node addresses to try; ":PORT" means 127.0.0.1:PORT.
    #[arg(long, global = true, default_value = ":8001,:8002,:8003", value_parser = addrs::list)]
    pub addr: String,
    /// Cluster name the nodes must have.
    #[arg(long, global = true, default_value = "raftkv")]
    pub cluster: String,
    /// Give up after this many seconds (a write then exits 3, "outcome unknown").
    #[arg(long, global = true, default_value_t = 5.0)]
    pub timeout: f64,
    /// File holding the cluster's client secret (the nodes' --client-secret-file).
    /// Default: none.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "RAFTKV_CLIENT_SECRET_FILE"
    )]
    pub client_secret_file: Option<PathBuf>,
    /// The operation.
    #[command(subcommand)]
    pub op: ClientOp,
}

/// Client operations.
#[derive(Subcommand, Debug)]
pub enum ClientOp {
    /// Set KEY to VALUE, or to the contents of --value-file. A VALUE that begins with a
    /// dash goes after `--`: `put KEY -- -5`.
    Put {
        /// The key.
        key: String,
        /// The value (or give --value-file instead).
        #[arg(required_unless_present = "value_file")]
        value: Option<String>,
        /// Read the value from FILE, byte for byte (a trailing newline is kept); `-`
        /// reads stdin. For values too large for a command line.
        #[arg(long, value_name = "FILE", conflicts_with = "value")]
        value_file: Option<PathBuf>,
    },
    /// Print KEY's value and a newline; exit 1 if it does not exist.
    Get {
        /// The key.
        key: String,
        /// Read the first answering node's state without confirming it is up to date:
        /// works without a leader, but may be stale, even behind this client's own
        /// last acknowledged write.
        #[arg(long)]
        stale: bool,
    },
    /// Remove KEY; exits 0 whether or not it existed.
    Delete {
        /// The key.
        key: String,
    },
    /// Set KEY to NEW (or the contents of --new-file) only if its value is EXPECTED
    /// ("" means: only if KEY is absent); exit 1 and show the current value on stderr
    /// otherwise. Values that begin with a dash go after `--`.
    Cas {
        /// The key.
        key: String,
        /// The value KEY must have now, or "" for absent.
        expected: String,
        /// The value to set (or give --new-file instead).
        #[arg(required_unless_present = "new_file")]
        new: Option<String>,
        /// Read the value to set from FILE, byte for byte; `-` reads stdin.
        #[arg(long, value_name = "FILE", conflicts_with = "new")]
        new_file: Option<PathBuf>,
    },
    /// Print a node's view: id, role, term, leader, indexes, peers. Asks the --addr
    /// nodes in order until one answers (no redirect); `answered_by` names it.
    /// With --all: one row per member (see the flag). Exit 3 with --all and no leader.
    Status {
        /// Ask every --addr node and every member of the leader's configuration, each
        /// within its own deadline (--timeout, at most 2 s per member), and print one
        /// row per member by ascending id: id, addr, role, term, leader, commit_index,
        /// applied_index, lag (the leader's commit_index minus the member's
        /// applied_index), snapshot_index, data_bytes, alarm. A table on a terminal,
        /// `key: value` blocks otherwise; an unreachable member shows role
        /// `unreachable`. Exits 3 if no member names a leader. Default off.
        #[arg(long)]
        all: bool,
        /// With --all: print a JSON array of objects with those keys. Default off.
        #[arg(long, requires = "all")]
        json: bool,
    },
    /// Hand leadership to voter ID (default: the voter whose log is the most up to
    /// date) and wait until it leads; prints `leader: ID`. The leader refuses new
    /// writes meanwhile (clients retry), brings ID up to date, and tells it to start
    /// an election at once: no election timeout is lost. Exits 1 if refused (ID is a
    /// learner, not a member, or another transfer is under way; the reason on
    /// stderr), 3 if ID does not lead within --timeout (the leader gives a transfer up
    /// after an election timeout).
    TransferLeader {
        /// The voter to lead (default: the most up-to-date voter).
        id: Option<u64>,
    },
    /// List or change the cluster's members (see README, "Replacing a member").
    Member {
        /// The membership operation.
        #[command(subcommand)]
        op: MemberOp,
    },
}

/// `raftkv client member ...`: exit 0 once done (a change once committed), 1 if the
/// leader refused it (the reason on stderr), 3 if its outcome is unknown.
#[derive(Subcommand, Debug)]
pub enum MemberOp {
    /// Print one line per member, ascending id: `ID ROLE ADDR` (ROLE voter or learner).
    List,
    /// Add member ID, reachable at ADDR, as a learner (--learner), or as a learner that
    /// is promoted to voter once it has caught up (waits up to --timeout). ID must be
    /// above every id ever used; start the new node with `node --id ID --join`.
    Add {
        /// The new member's id (never used before in this cluster).
        id: u64,
        /// Where the other members reach it, HOST:PORT (`:PORT` is 127.0.0.1:PORT).
        #[arg(value_name = "ADDR", value_parser = addrs::one)]
        address: String,
        /// Leave it a learner (receives the log, does not vote); promote it later.
        #[arg(long)]
        learner: bool,
    },
    /// Make learner ID a voter; refused while it holds under 90% of the leader's log.
    Promote {
        /// The learner.
        id: u64,
    },
    /// Remove member ID; its id is retired, and the removed node exits (code 4).
    Remove {
        /// The member.
        id: u64,
    },
}

/// Flags of `raftkv bench`.
#[derive(Args, Debug)]
#[command(
    long_about = "Measure a running cluster: N clients, each with its own \
    connection (or sharing --conns pipelined connections), send one request at a time \
    for --duration seconds or until --ops operations are done, and the latency of each (send to reply) is recorded. Prints \
    throughput and p50/p90/p99/p99.9/max latency; --json prints one JSON object with the \
    fields workload, clients, ops, errors, duration_s, ops_per_s, p50_ms, p90_ms, p99_ms, \
    p999_ms, max_ms: ops counts the operations that succeeded, errors those that failed \
    (their latency is left out of the figures). Each client first sends one unmeasured \
    warm-up request; its failures are reported apart. The live line on a terminal shows \
    the ops/s of the last 0.5 s. put and get use the same key names, so `bench put --keys 1000` then \
    `bench get --keys 1000` reads existing keys. Exits non-zero if any operation failed."
)]
pub struct BenchArgs {
    /// Comma list of node addresses; ":PORT" means 127.0.0.1:PORT.
    #[arg(long, default_value = ":8001,:8002,:8003", value_parser = addrs::list)]
    pub addr: String,
    /// Cluster name the nodes must have.
    #[arg(long, default_value = "raftkv")]
    pub cluster: String,
    /// Concurrent clients, each with one request in flight (and, without --conns, its
    /// own connection).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Connections the --clients share, as etcd's benchmark --conns: client i rides
    /// connection i mod N, and each connection carries its clients' requests at once
    /// (pipelined). Each connection first finds the leader (with --spread, starts at
    /// address i mod the count); after that it follows no redirect. Keep
    /// clients/conns at or below the nodes' --max-inflight-per-conn (128). Default: one
    /// connection per client.
    #[arg(long, value_name = "N")]
    pub conns: Option<usize>,
    /// Run for this many seconds (the default, 10 s, unless --ops is given).
    #[arg(long, conflicts_with = "ops")]
    pub duration: Option<f64>,
    /// Run exactly this many operations in all, succeeded or failed.
    #[arg(long)]
    pub ops: Option<u64>,
    /// Size of the key space: keys are chosen uniformly among this many.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Bytes per key.
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// In the mixed workload, the fraction of operations that are reads.
    #[arg(long, default_value_t = 0.5)]
    pub read_ratio: f64,
    /// Reads are stale (served by the contacted node without a leadership check).
    #[arg(long)]
    pub stale: bool,
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Client i starts at address i mod the count of --addr (round-robin over every
    /// member) instead of every client at the first, so reads are served by all
    /// members; a follower redirects writes to the leader. Default off.
    #[arg(long)]
    pub spread: bool,
    /// Per-operation deadline in seconds; an operation that overruns it is an error.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// File holding the cluster's client secret (the nodes' --client-secret-file).
    /// Default: none.
    #[arg(long, value_name = "FILE", env = "RAFTKV_CLIENT_SECRET_FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// The secret loaded from --client-secret-file (not a flag).
    #[arg(skip)]
    pub secret: Option<raftkv::net::Secret>,
    /// put, get or mixed.
    #[arg(value_enum)]
    pub workload: Workload,
}

/// What `raftkv bench` sends.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Writes only.
    Put,
    /// Reads only (linearizable unless --stale).
    Get,
    /// Reads and writes, --read-ratio of them reads.
    Mixed,
}

impl Workload {
    /// The name used on the command line and in --json.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::Mixed => "mixed",
        }
    }
}
