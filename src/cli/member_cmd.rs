//! `raftkv client member list|add|promote|remove`: prints the members, or makes one
//! change and exits 0 once it is committed, 1 if the leader refused it (the reason on
//! stderr), 3 if its outcome is unknown.

use std::time::{Duration, Instant};

use raftkv::client::{Client, ClientError};
use raftkv::raft::MembershipChange;

use super::args::MemberOp;
use super::{EXIT_NO, EXIT_OK};

/// Pause between promotion attempts while a new voter catches up.
const PROMOTE_RETRY: Duration = Duration::from_millis(200);

/// Runs one member operation; `Err` is mapped to an exit code by the caller.
pub fn execute(client: &mut Client, op: MemberOp) -> Result<u8, ClientError> {
    match op {
        MemberOp::List => {
            for m in client.members()? {
                let role = if m.voter { "voter" } else { "learner" };
                println!("{} {role} {}", m.id, m.addr);
            }
            Ok(EXIT_OK)
        }
        MemberOp::Add {
            id,
            address,
            learner,
        } => {
            // Stored as every member will read it: `:PORT` made explicit.
            let address = raftkv::net::normalize_addr(&address);
            let add = MembershipChange::AddLearner { id, address };
            if let Err(reason) = client.change_members(add)? {
                return Ok(refused(&reason));
            }
            if learner {
                return Ok(EXIT_OK);
            }
            promote_when_caught_up(client, id)
        }
        MemberOp::Promote { id } => change(client, MembershipChange::Promote { id }),
        MemberOp::Remove { id } => change(client, MembershipChange::Remove { id }),
    }
}

fn change(client: &mut Client, change: MembershipChange) -> Result<u8, ClientError> {
    match client.change_members(change)? {
        Ok(_) => Ok(EXIT_OK),
        Err(reason) => Ok(refused(&reason)),
    }
}

fn refused(reason: &str) -> u8 {
    eprintln!("raftkv client: refused: {reason}");
    EXIT_NO
}

/// `member add` without `--learner`: the new member joined as a learner; promote it
/// as soon as it holds 90% of the log, for up to the client's timeout.
fn promote_when_caught_up(client: &mut Client, id: u64) -> Result<u8, ClientError> {
    let end = Instant::now() + client.timeout();
    loop {
        match client.change_members(MembershipChange::Promote { id })? {
            Ok(_) => return Ok(EXIT_OK),
            Err(reason) if reason.contains("is behind") && Instant::now() < end => {
                std::thread::sleep(PROMOTE_RETRY);
            }
            Err(reason) => {
                return Ok(refused(&format!(
                    "n{id} was added as a learner but not promoted: {reason}; promote it \
                     later with `raftkv client member promote {id}`"
                )))
            }
        }
    }
}
