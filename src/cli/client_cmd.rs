//! `raftkv client`: one operation against the cluster, printed and mapped to an exit
//! code.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use raftkv::client::{
    CasOutcome, Client, ClientError, ClientErrorKind, ClientOptions, TransferOutcome,
};
use raftkv::kv::MAX_REQUEST_BYTES;

use super::args::{ClientArgs, ClientOp};
use super::{keygen_cmd, split_addrs, EXIT_NO, EXIT_OK, EXIT_OTHER, EXIT_UNAVAILABLE, EXIT_USAGE};

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
    let secret = match keygen_cmd::load_secret(args.client_secret_file.as_deref()) {
        Ok(secret) => secret,
        Err(message) => {
            eprintln!("raftkv client: {message}");
            return EXIT_USAGE;
        }
    };
    let options = ClientOptions {
        cluster: args.cluster,
        timeout: Duration::from_secs_f64(args.timeout),
        secret,
    };
    let op = match read_value_files(args.op) {
        Ok(op) => op,
        Err(message) => {
            eprintln!("raftkv client: {message}");
            return EXIT_USAGE;
        }
    };
    if let ClientOp::Status { all: true, json } = op {
        return super::status_all::run(&addrs, &options, json);
    }
    let mut client = Client::new(addrs, options);
    match execute(&mut client, op) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("raftkv client: {err}");
            exit_code_of(&err)
        }
    }
}

/// Replaces `--value-file` / `--new-file` by the value read from the file (or stdin),
/// so that `execute` sees `value` / `new` set.
fn read_value_files(op: ClientOp) -> Result<ClientOp, String> {
    Ok(match op {
        ClientOp::Put {
            key,
            value: None,
            value_file: Some(file),
        } => ClientOp::Put {
            key,
            value: Some(read_value("--value-file", &file)?),
            value_file: None,
        },
        ClientOp::Cas {
            key,
            expected,
            new: None,
            new_file: Some(file),
        } => ClientOp::Cas {
            key,
            expected,
            new: Some(read_value("--new-file", &file)?),
            new_file: None,
        },
        other => other,
    })
}

/// Reads a whole value from `file` (`-`: stdin), as UTF-8 text, at most one byte more
/// than a request may carry (the client library then refuses it with the limit).
fn read_value(flag: &str, file: &Path) -> Result<String, String> {
    let limit = MAX_REQUEST_BYTES + 1;
    let mut bytes = Vec::new();
    let read = if file == Path::new("-") {
        std::io::stdin().lock().take(limit).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(limit).read_to_end(&mut bytes))
    };
    let name = if file == Path::new("-") {
        "stdin".to_string()
    } else {
        file.display().to_string()
    };
    read.map_err(|e| format!("{flag}: cannot read {name}: {e}"))?;
    String::from_utf8(bytes).map_err(|_| format!("{flag}: {name} is not UTF-8 text"))
}

fn execute(client: &mut Client, op: ClientOp) -> Result<u8, ClientError> {
    match op {
        ClientOp::Put { key, value, .. } => {
            let value = value.unwrap_or_default();
            client.put(&key, &value).map(|()| EXIT_OK)
        }
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
        ClientOp::Cas {
            key, expected, new, ..
        } => {
            let new = new.unwrap_or_default();
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
        ClientOp::TransferLeader { id } => match client.transfer_leader(id)? {
            TransferOutcome::Leads(id) => {
                println!("leader: {id}");
                Ok(EXIT_OK)
            }
            TransferOutcome::Refused(reason) => {
                eprintln!("raftkv client: transfer-leader refused: {reason}");
                Ok(EXIT_NO)
            }
        },
        ClientOp::Status { .. } => {
            let (addr, report) = client.status_from_any()?;
            // An extra key after the contract's ones: which --addr entry answered.
            println!("{}answered_by: {addr}", report.to_lines());
            Ok(EXIT_OK)
        }
        ClientOp::Member { op } => super::member_cmd::execute(client, op),
    }
}

/// Maps a client error to the documented exit codes (3 unavailable, 4 anything else).
fn exit_code_of(err: &ClientError) -> u8 {
    match err.kind() {
        ClientErrorKind::Unavailable { .. } => EXIT_UNAVAILABLE,
        _ => EXIT_OTHER,
    }
}
