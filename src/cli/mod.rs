//! The command line: `raftkv node`, `raftkv client ...`, `raftkv bench`, `raftkv keygen`. Flags, defaults, outputs and
//! exit codes are a contract: scripts and tests depend on them (README.md lists them).

mod addrs;
mod args;
mod bench_cmd;
mod bench_pipelined;
mod client_cmd;
mod histogram;
mod keygen_cmd;
mod member_cmd;
mod node_cmd;
mod status_all;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command};

/// Exit code: done.
pub const EXIT_OK: u8 = 0;
/// Exit code: a definite "no" (key not found; cas found another value).
pub const EXIT_NO: u8 = 1;
/// Exit code: usage error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: outcome unknown or cluster unavailable.
pub const EXIT_UNAVAILABLE: u8 = 3;
/// Exit code: any other error.
pub const EXIT_OTHER: u8 = 4;

/// Parses the arguments and runs the subcommand.
pub fn main() -> ExitCode {
    // clap exits with 2 on usage errors and 0 for --help/--version, as the contract says.
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Node(args) => node_cmd::run(args),
        Command::Client(args) => client_cmd::run(args),
        Command::Keygen => keygen_cmd::run(),
        Command::Bench(mut args) => {
            if args.ops.is_none() && args.duration.is_none() {
                args.duration = Some(10.0);
            }
            bench_cmd::run(args)
        }
    };
    ExitCode::from(code)
}

/// Splits a comma list of addresses, dropping empty items.
pub fn split_addrs(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
