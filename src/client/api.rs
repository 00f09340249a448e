//! [`Client`]: the operations, on top of the retrying transport.

use std::time::{Duration, Instant};

use rand::Rng;

use super::error::{ClientError, ClientErrorKind};
use super::retry::{call_once, Transport, MAX_WAIT_PER_TRY};
use crate::kv::{encode_request, Command, CommandResult, Request, MAX_REQUEST_BYTES};
use crate::net::{ClientRequest, ClientResponse, MemberInfo, Secret, StatusReport};
use crate::raft::{MembershipChange, NodeId};

/// How a client reaches the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// The cluster id sent in the hello (`--cluster`). Default `raftkv`.
    pub cluster: String,
    /// Overall deadline of one call, retries included. Default 5 s.
    pub timeout: Duration,
    /// The client secret to prove in every hello (`--client-secret-file`); with one,
    /// a node that does not prove it back is refused. Default none.
    pub secret: Option<Secret>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            cluster: "raftkv".to_string(),
            timeout: Duration::from_secs(5),
            secret: None,
        }
    }
}

/// The outcome of [`Client::cas`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasOutcome {
    /// The value matched and was replaced.
    Swapped,
    /// The value did not match; nothing changed.
    Mismatch {
        /// The value found.
        current: Option<String>,
    },
}

/// A connection to a cluster. Calls are sequential (`&mut self`), which the session
/// table relies on: a client has at most one write in flight.
///
/// Sessions: a client's first write (seq 1) opens its session in the cluster. A write
/// with a higher seq from a client the cluster holds no session for is refused as
/// "session expired" (the session was evicted); the client reports it as outcome
/// unknown and opens a new session (a new random id, seq 1) for the next write. It
/// does the same before a write when no write of the current session was ever
/// answered, since the cluster may then hold no session for it.
pub struct Client {
    transport: Transport,
    /// The addresses as given, for [`Client::status`].
    addrs: Vec<String>,
    opts: ClientOptions,
    /// Random, nonzero, fixed for the client's lifetime.
    client_id: u64,
    /// Sequence number of the next write; starts at 1. Advanced after each write call,
    /// whatever its outcome, so a new write never reuses an old number.
    next_seq: u64,
    /// True once a write under `client_id` was answered as applied: the cluster then
    /// held a session for it (unless evicted since).
    session_open: bool,
}

impl Client {
    /// A client over `addrs` (`HOST:PORT` or `:PORT`, at least one) with a random id.
    pub fn new(addrs: Vec<String>, opts: ClientOptions) -> Client {
        assert!(!addrs.is_empty(), "a client needs at least one address");
        assert!(!opts.timeout.is_zero(), "client timeout must be positive");
        Client {
            transport: Transport::new(addrs.clone(), opts.cluster.clone(), opts.secret.clone()),
            addrs,
            opts,
            client_id: rand::thread_rng().gen_range(1..=u64::MAX),
            next_seq: 1,
            session_open: false,
        }
    }

    /// The deadline of one call, retries included (`ClientOptions::timeout`).
    pub fn timeout(&self) -> Duration {
        self.opts.timeout
    }

    /// Forgets the current session: the next write opens a new one.
    fn new_session(&mut self) {
        self.client_id = rand::thread_rng().gen_range(1..=u64::MAX);
        self.next_seq = 1;
        self.session_open = false;
    }

    /// This client's id in the cluster's session table (it changes when a session
    /// expires).
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The sequence number the next write will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &str, value: &str) -> Result<(), ClientError> {
        let command = Command::Put {
            key: key.to_string(),
            value: value.to_string(),
        };
        match self.write(command)? {
            CommandResult::Put => Ok(()),
            other => Err(unexpected("put", &other)),
        }
    }

    /// Reads `key`: linearizable (served by the node asked, leader or follower; a
    /// follower that knows no leader redirects), or from the first node that answers
    /// with no check if `stale`.
    pub fn get(&mut self, key: &str, stale: bool) -> Result<Option<String>, ClientError> {
        let request = ClientRequest::Get {
            key: key.to_string(),
            stale,
        };
        match self.transport.call(&request, false, self.opts.timeout)? {
            ClientResponse::Value(value) => Ok(value),
            other => Err(answer_error("get", other)),
        }
    }

    /// Deletes `key`; returns whether it existed.
    pub fn delete(&mut self, key: &str) -> Result<bool, ClientError> {
        let command = Command::Delete {
            key: key.to_string(),
        };
        match self.write(command)? {
            CommandResult::Deleted { existed } => Ok(existed),
            other => Err(unexpected("delete", &other)),
        }
    }

    /// Sets `key` to `new` if its value is `expected` (`None`: only if absent).
    pub fn cas(
        &mut self,
        key: &str,
        expected: Option<&str>,
        new: &str,
    ) -> Result<CasOutcome, ClientError> {
        let command = Command::Cas {
            key: key.to_string(),
            expected: expected.map(str::to_string),
            new: new.to_string(),
        };
        match self.write(command)? {
            CommandResult::CasOk => Ok(CasOutcome::Swapped),
            CommandResult::CasMismatch { current } => Ok(CasOutcome::Mismatch { current }),
            other => Err(unexpected("cas", &other)),
        }
    }

    /// The state of the first node that answers, asking the addresses in order: one
    /// connection each, no redirect (a follower reports its own view).
    pub fn status(&mut self) -> Result<StatusReport, ClientError> {
        self.status_from_any().map(|(_, report)| report)
    }

    /// Like [`Client::status`], also returning the address (as given) that answered.
    /// Each address but the last gets at most [`MAX_WAIT_PER_TRY`] of the deadline, so
    /// one unresponsive node cannot use it all up. If none answers, the error lists
    /// why each failed.
    pub fn status_from_any(&mut self) -> Result<(String, StatusReport), ClientError> {
        let deadline = Instant::now() + self.opts.timeout;
        let mut failures = Vec::new();
        for (i, addr) in self.addrs.iter().enumerate() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let last = i + 1 == self.addrs.len();
            let wait = if last {
                left
            } else {
                left.min(MAX_WAIT_PER_TRY)
            };
            let answer = call_once(
                addr,
                &self.opts.cluster,
                self.opts.secret.as_ref(),
                &ClientRequest::Status,
                wait,
            )
            .and_then(|response| match response {
                ClientResponse::Status(report) => Ok(report),
                other => Err(answer_error("status", other)),
            });
            match answer {
                Ok(report) => return Ok((addr.clone(), report)),
                Err(e) if self.addrs.len() == 1 => return Err(e),
                Err(e) => failures.push(e),
            }
        }
        let kind = failures
            .iter()
            .map(ClientError::kind)
            .find(|k| !matches!(k, ClientErrorKind::Unavailable { .. }))
            .unwrap_or(ClientErrorKind::Unavailable {
                outcome_unknown: false,
            });
        let reasons: Vec<String> = failures.iter().map(ToString::to_string).collect();
        Err(ClientError::new(
            kind,
            format!(
                "no node answered status within {:?}: {}",
                self.opts.timeout,
                reasons.join("; ")
            ),
        ))
    }

    /// Asks the leader to hand leadership to `target` (`None`: the voter whose log is
    /// the most up to date), then waits, within the client's timeout, until a node
    /// names that voter as the leader of its current term. A refusal (a learner, an
    /// unknown id, another transfer in progress) is `Ok(Refused(reason))`; no leader
    /// change within the timeout is an `Unavailable` error.
    pub fn transfer_leader(
        &mut self,
        target: Option<NodeId>,
    ) -> Result<TransferOutcome, ClientError> {
        let deadline = Instant::now() + self.opts.timeout;
        let request = ClientRequest::TransferLeader { target };
        let target = match self.transport.call(&request, false, self.opts.timeout)? {
            ClientResponse::TransferLeader(Ok(id)) => id,
            ClientResponse::TransferLeader(Err(reason)) => {
                return Ok(TransferOutcome::Refused(reason))
            }
            other => return Err(answer_error("transfer-leader", other)),
        };
        // Nodes announce nothing: ask them until one follows the target (a node names
        // a leader only once it heard from it in its term, so the target won).
        while Instant::now() < deadline {
            if self.leader_seen(deadline) == Some(target) {
                return Ok(TransferOutcome::Leads(target));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            crate::sync::thread::sleep(LEADER_POLL.min(left));
        }
        Err(ClientError::new(
            ClientErrorKind::Unavailable {
                outcome_unknown: true,
            },
            format!(
                "n{target} did not become leader within {:?}: the transfer may have been                  given up (it is after an election timeout) or be still under way",
                self.opts.timeout
            ),
        ))
    }

    /// The leader the first answering node names (each asked with what is left of
    /// `deadline`, at most [`MAX_WAIT_PER_TRY`]).
    fn leader_seen(&self, deadline: Instant) -> Option<NodeId> {
        self.addrs.iter().find_map(|addr| {
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = left.min(MAX_WAIT_PER_TRY);
            if wait.is_zero() {
                return None;
            }
            let secret = self.opts.secret.as_ref();
            match call_once(
                addr,
                &self.opts.cluster,
                secret,
                &ClientRequest::Status,
                wait,
            ) {
                Ok(ClientResponse::Status(report)) => report.leader.map(|(id, _)| id),
                _ => None,
            }
        })
    }

    /// The members of the leader's latest configuration, ascending by id.
    pub fn members(&mut self) -> Result<Vec<MemberInfo>, ClientError> {
        match self
            .transport
            .call(&ClientRequest::Members, false, self.opts.timeout)?
        {
            ClientResponse::Members(list) => Ok(list),
            other => Err(answer_error("member list", other)),
        }
    }

    /// Makes one membership change and waits until it is committed. `Ok(Err(reason))`:
    /// the leader refused it (nothing changed); a `ClientError` that is
    /// `Unavailable { outcome_unknown: true }`: it may or may not have been made.
    pub fn change_members(
        &mut self,
        change: MembershipChange,
    ) -> Result<Result<Vec<MemberInfo>, String>, ClientError> {
        let request = ClientRequest::ChangeMembers(change);
        match self.transport.call(&request, true, self.opts.timeout)? {
            ClientResponse::Members(list) => Ok(Ok(list)),
            ClientResponse::MemberRefused { reason } => Ok(Err(reason)),
            other => Err(answer_error("member change", other)),
        }
    }

    /// Replicates one command under a fresh sequence number, kept across retries.
    fn write(&mut self, command: Command) -> Result<CommandResult, ClientError> {
        if !self.session_open && self.next_seq > 1 {
            // The first write's fate is unknown: the cluster may hold no session for
            // this id, and a seq above 1 would be refused as expired.
            self.new_session();
        }
        let request = Request {
            client_id: self.client_id,
            seq: self.next_seq,
            command,
        };
        let len = encode_request(&request).len() as u64;
        if len > MAX_REQUEST_BYTES {
            return Err(ClientError::new(
                ClientErrorKind::Other,
                format!("request of {len} bytes exceeds the maximum of {MAX_REQUEST_BYTES}"),
            ));
        }
        // Whatever happens, the next write gets a new number: if this one's outcome
        // stays unknown and it is applied late, it must not be mistaken for the next.
        self.next_seq += 1;
        match self
            .transport
            .call(&ClientRequest::Write(request), true, self.opts.timeout)?
        {
            ClientResponse::Written(result) => {
                self.session_open = true;
                Ok(result)
            }
            ClientResponse::SessionExpired { message } => {
                self.new_session();
                Err(ClientError::new(
                    ClientErrorKind::Unavailable {
                        outcome_unknown: true,
                    },
                    format!(
                        "outcome unknown: the client's session expired, so the write may \
                         or may not have been applied (the cluster said: {message}); later \
                         writes use a new session"
                    ),
                ))
            }
            other => Err(answer_error("write", other)),
        }
    }
}

/// How long [`Client::transfer_leader`] waits between two rounds of status requests:
/// an election after `TimeoutNow` takes one round trip and one fsync.
const LEADER_POLL: Duration = Duration::from_millis(10);

/// What [`Client::transfer_leader`] achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferOutcome {
    /// This voter leads now.
    Leads(NodeId),
    /// The leader refused the transfer, for this reason; nothing changed.
    Refused(String),
}

/// A `Written` result of the wrong kind.
fn unexpected(op: &str, result: &CommandResult) -> ClientError {
    ClientError::new(
        ClientErrorKind::Protocol,
        format!("{op}: unexpected result {result:?}"),
    )
}

/// A final answer that is not the one the request expects.
fn answer_error(op: &str, response: ClientResponse) -> ClientError {
    match response {
        ClientResponse::Error { message } => {
            ClientError::new(ClientErrorKind::Other, format!("{op} refused: {message}"))
        }
        ClientResponse::TooLarge { len, max } => ClientError::new(
            ClientErrorKind::Other,
            format!(
                "{op} refused: the request is {len} bytes, over the node's limit of {max} bytes"
            ),
        ),
        ClientResponse::NotLeader { .. } => ClientError::new(
            ClientErrorKind::Unavailable {
                outcome_unknown: false,
            },
            format!("{op}: the node is not the leader"),
        ),
        ClientResponse::Unavailable { reason, .. } => ClientError::new(
            ClientErrorKind::Unavailable {
                outcome_unknown: false,
            },
            format!("{op}: node unavailable: {reason}"),
        ),
        other => ClientError::new(
            ClientErrorKind::Protocol,
            format!("{op}: unexpected answer {other:?}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_for_size_is_a_definite_error_naming_the_limit() {
        let err = answer_error(
            "put",
            ClientResponse::TooLarge {
                len: 5_000_000,
                max: MAX_REQUEST_BYTES,
            },
        );
        assert_eq!(err.kind(), ClientErrorKind::Other);
        let message = err.to_string();
        assert!(message.contains("5000000"), "{message}");
        assert!(
            message.contains(&MAX_REQUEST_BYTES.to_string()),
            "{message}"
        );
    }
}
