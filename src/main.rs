//! The `raftkv` binary: parses the command line and maps outcomes to the documented exit
//! codes (0 done, 1 a definite "no", 2 usage error, 3 outcome unknown or cluster
//! unavailable, 4 any other error).

#![forbid(unsafe_code)]

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
