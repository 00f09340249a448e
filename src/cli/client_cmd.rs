//! `raftkv client`: one operation against the cluster, printed and mapped to an exit
//! code.

use std::time::Duration;

use raftkv::client::{CasOutcome, Client, ClientError, ClientErrorKind, ClientOptions};

use super::args::{ClientArgs, ClientOp};
use super::{split_addrs, EXIT_NO, EXIT_OK, EXIT_OTHER, EXIT_UNAVAILABLE, EXIT_USAGE};

/// Runs one client operation; returns the exit code.
pub fn run(args: ClientArgs) -> u8 {
    let addrs = split_addrs(&args.addr);
    if addrs.is_empty() {
        eprintln!("raftkv client: --addr lists no address");
        return EXIT_USAGE;
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        eprintln!("raftkv client: --timeout must be a positive number of seconds");
        return EXIT_USAGE;
    }
    let options = ClientOptions {
        cluster: args.cluster,
        timeout: Duration::from_secs_f64(args.timeout),
    };
    let mut client = Client::new(addrs, options);
    match execute(&mut client, args.op) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("raftkv client: {err}");
            exit_code_of(&err)
        }
    }
}

fn execute(client: &mut Client, op: ClientOp) -> Result<u8, ClientError> {
    match op {
        ClientOp::Put { key, value } => client.put(&key, &value).map(|()| EXIT_OK),
        ClientOp::Get { key, stale } => match client.get(&key, stale)? {
            Some(value) => {
                println!("{value}");
                Ok(EXIT_OK)
            }
            None => {
                eprintln!("raftkv client: key not found: {key}");
                Ok(EXIT_NO)
            }
        },
        ClientOp::Delete { key } => client.delete(&key).map(|_existed| EXIT_OK),
        ClientOp::Cas { key, expected, new } => {
            let expected = (!expected.is_empty()).then_some(expected.as_str());
            match client.cas(&key, expected, &new)? {
                CasOutcome::Swapped => Ok(EXIT_OK),
                CasOutcome::Mismatch {
                    current: Some(current),
                } => {
                    eprintln!("raftkv client: cas failed: {key} is {current:?}");
                    Ok(EXIT_NO)
                }
                CasOutcome::Mismatch { current: None } => {
                    eprintln!("raftkv client: cas failed: {key} does not exist");
                    Ok(EXIT_NO)
                }
            }
        }
        ClientOp::Status => {
            let report = client.status()?;
            print!("{}", report.to_lines());
            Ok(EXIT_OK)
        }
    }
}

/// Maps a client error to the documented exit codes (README.md).
fn exit_code_of(err: &ClientError) -> u8 {
    match err.kind() {
        ClientErrorKind::Unavailable { .. } => EXIT_UNAVAILABLE,
        _ => EXIT_OTHER,
    }
}
