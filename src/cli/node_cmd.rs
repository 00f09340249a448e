//! `raftkv node`: start a member and run it until Ctrl-C or SIGTERM.

use raftkv::logging::Level;
use raftkv::node::{Node, NodeConfig, NodeError};

use super::args::NodeArgs;
use super::{split_addrs, EXIT_OK, EXIT_OTHER, EXIT_USAGE};

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
        format!(
            "--log-level {:?} is not one of error, warn, info, debug",
            args.log_level
        )
    })?;
    let peers = split_addrs(&args.peers);
    let mut config = NodeConfig::new(args.id, args.addr, peers, args.data);
    config.cluster = args.cluster;
    config.log_level = level;
    config.election_timeout_min_ms = args.election_timeout_min_ms;
    config.election_timeout_max_ms = args.election_timeout_max_ms;
    config.heartbeat_interval_ms = args.heartbeat_ms;
    config.request_timeout_ms = args.request_timeout_ms;
    config.snapshot_entries = args.snapshot_entries;
    config.snapshot_bytes = args.snapshot_bytes;
    config.snapshot_catchup_entries = args.snapshot_catchup_entries;
    config.validate()?;
    Ok(config)
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
