//! `raftkv node`: start a member and run it until Ctrl-C or SIGTERM.

use raftkv::logging::{Level, Logger};
use raftkv::net::{normalize_addr, NodeSecrets};
use raftkv::node::{Node, NodeConfig, NodeError};
use raftkv::storage::StorageErrorKind;

use super::args::NodeArgs;
use super::{addrs, keygen_cmd, split_addrs, EXIT_OK, EXIT_OTHER, EXIT_USAGE};

/// Runs the node; returns the exit code.
pub fn run(args: NodeArgs) -> u8 {
    crash_on_panic();
    let config = match config_from(args) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("raftkv node: {message}");
            return EXIT_USAGE;
        }
    };
    let node = match Node::start(config) {
        Ok(node) => node,
        Err(NodeError::Config(message)) => {
            eprintln!("raftkv node: {message}");
            return EXIT_USAGE;
        }
        Err(NodeError::Storage(err)) if *err.kind() == StorageErrorKind::MetaMismatch => {
            // The flags do not fit the directory: a usage error, with the two ways out.
            eprintln!(
                "raftkv node: {err}\n  start it with the --id, --cluster and --peers it was \
                 created with, or give another --data directory (deleting {} starts this \
                 member over, losing its data)",
                err.path().display()
            );
            return EXIT_USAGE;
        }
        Err(err) => {
            eprintln!("raftkv node: {err}");
            return EXIT_OTHER;
        }
    };
    let handle = node.shutdown_handle();
    if let Err(err) = ctrlc::set_handler(move || handle.request()) {
        eprintln!("raftkv node: cannot install the Ctrl-C handler: {err}");
        return EXIT_OTHER;
    }
    node.wait();
    // A planned stop: a leader first hands leadership over, so no election is needed.
    node.hand_off();
    match node.shutdown() {
        Ok(()) => EXIT_OK,
        Err(err) => {
            eprintln!("raftkv node: {err}");
            EXIT_OTHER
        }
    }
}

fn config_from(args: NodeArgs) -> Result<NodeConfig, String> {
    let level = Level::parse(&args.log_level).ok_or_else(|| {
        // clap takes the value from RAFTKV_LOG when the flag is absent: name the source.
        let from_flag = std::env::args().any(|a| a.starts_with("--log-level"));
        let source = if from_flag {
            "--log-level"
        } else {
            "RAFTKV_LOG="
        };
        format!(
            "{source}{:?} is not one of error, warn, info, debug",
            args.log_level
        )
    })?;
    let default_peers = if args.join { "" } else { ":8001,:8002,:8003" };
    let peers = split_addrs(args.peers.as_deref().unwrap_or(default_peers));
    if let Some(dup) = addrs::first_duplicate(&peers) {
        return Err(format!(
            "--peers: duplicate address {dup} (:PORT is 127.0.0.1:PORT); each member needs its own"
        ));
    }
    warn_if_own_entry_differs(&args, &peers, level);
    let secrets = NodeSecrets {
        peer: keygen_cmd::load_secret(args.peer_secret_file.as_deref())?,
        client: keygen_cmd::load_secret(args.client_secret_file.as_deref())?,
    };
    if let (Some(peer), Some(client)) = (&secrets.peer, &secrets.client) {
        if peer.shares_a_key_with(client) {
            return Err(
                "--peer-secret-file and --client-secret-file hold the same secret; \
                 they must differ, or any client could act as a member (make another with \
                 `raftkv keygen`)"
                    .to_string(),
            );
        }
    }
    check_protected_mode(&args, &secrets)?;
    let mut config = NodeConfig::new(args.id, args.addr, peers, args.data);
    config.join = args.join;
    config.cluster = args.cluster;
    config.log_level = level;
    config.election_timeout_min_ms = args.election_timeout_min_ms;
    config.election_timeout_max_ms = args.election_timeout_max_ms;
    config.heartbeat_interval_ms = args.heartbeat_ms;
    config.request_timeout_ms = args.request_timeout_ms;
    config.snapshot_entries = args.snapshot_entries;
    config.snapshot_bytes = args.snapshot_bytes;
    config.max_clients = args.max_clients;
    config.client_idle_timeout_ms = args.client_idle_timeout_ms;
    config.snapshot_catchup_entries = args.snapshot_catchup_entries;
    config.secrets = secrets;
    config.digest_check_entries = args.digest_check_entries;
    config.quota_bytes = args.quota_bytes;
    config.max_inflight_per_conn = args.max_inflight_per_conn;
    config.metrics_addr = args.metrics_addr;
    config.validate()?;
    Ok(config)
}

/// Protected mode: a node reachable from other machines must authenticate both kinds
/// of connection, unless told `--insecure`.
fn check_protected_mode(args: &NodeArgs, secrets: &NodeSecrets) -> Result<(), String> {
    if args.insecure
        || (secrets.peer.is_some() && secrets.client.is_some())
        || keygen_cmd::is_loopback(&args.addr)
    {
        return Ok(());
    }
    Err(format!(
        "--addr {} is not a loopback address, so anyone who reaches it could act as a \
         member or a client: give --peer-secret-file and --client-secret-file (make each \
         with `raftkv keygen > FILE; chmod 600 FILE`), or --insecure to run \
         unauthenticated anyway",
        args.addr
    ))
}

/// `--addr` is where this node listens and `--peers[id-1]` how it names itself to
/// clients it redirects; they may rightly differ (listening on 0.0.0.0, or behind a
/// proxy), so a difference is a warning, not an error.
fn warn_if_own_entry_differs(args: &NodeArgs, peers: &[String], level: Level) {
    let Some(own) = usize::try_from(args.id - 1).ok().and_then(|i| peers.get(i)) else {
        return; // --id out of range: validate() reports it.
    };
    if normalize_addr(own) != normalize_addr(&args.addr) {
        Logger::new(format!("n{}", args.id), level).warn(format_args!(
            "--addr {} differs from this node's --peers entry {own} (entry {}); \
             fine behind a proxy or on 0.0.0.0, otherwise a typo",
            args.addr, args.id
        ));
    }
}

/// A panic in any node thread stops the whole process (crash-stop): a node with a dead
/// thread — or a poisoned Raft mutex — must not limp on answering some requests. Raft
/// is built for members that crash and restart from their durable state.
fn crash_on_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("raftkv node: a thread panicked; stopping the process (crash-stop)");
        std::process::exit(i32::from(EXIT_OTHER));
    }));
}
