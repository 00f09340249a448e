//! The connection and retry engine behind [`super::Client`]: one connection at a time,
//! leader discovery through redirects, backoff inside a deadline, and the bookkeeping
//! that decides whether a failed write's outcome is unknown.

use std::collections::HashMap;

use crate::raft::NodeId;
use crate::sync::thread;
use std::io::BufReader;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::error::{ClientError, ClientErrorKind};
use crate::net::peer::connect_with_timeout;
use crate::net::{
    client_handshake, read_tagged_frame, write_tagged_frame, ClientRequest, ClientResponse,
    HelloFrom, NetError, NetErrorKind, Secret, MAX_FRAME_BYTES,
};

/// Longest wait for one connect or one response; also bounded by the deadline.
pub(super) const MAX_WAIT_PER_TRY: Duration = Duration::from_millis(1500);
/// First pause between failed attempts; doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest pause between failed attempts.
const BACKOFF_MAX: Duration = Duration::from_millis(500);

/// An open, greeted connection.
struct Conn {
    /// The socket, read through a buffer: a response costs one `recv`, not one for the
    /// length and one for the body. Requests are written to `stream.get_ref()`.
    stream: BufReader<TcpStream>,
    /// The read and write timeout last set on the socket: setting them is two
    /// syscalls, skipped while the per-try wait stays the same (it is
    /// [`MAX_WAIT_PER_TRY`] until the call's last try).
    timeout: Option<Duration>,
    /// The address it was opened with.
    addr: String,
    /// True once a response arrived on it: a failure on a reused connection may just
    /// mean the node closed an idle connection, so it is retried without a pause.
    reused: bool,
    /// The id of the last request sent on it (each request gets the next one).
    last_id: u64,
}

/// What one attempt led to.
enum Step {
    /// A response arrived (possibly a redirect or `Unavailable`).
    Answer(ClientResponse),
    /// Could not connect or greet: the request was not sent on this attempt.
    NotSent(String),
    /// The request was sent but no response came (cut, timeout, garbage). `pause` is
    /// false when the connection was a reused one.
    Lost { reason: String, pause: bool },
    /// Give up now.
    Fatal(ClientError),
}

/// Why a connection could not be opened.
enum OpenFailure {
    /// Nothing was sent; try elsewhere.
    NotSent(String),
    /// The node does not speak our protocol or refused us.
    Fatal(ClientError),
}

impl From<OpenFailure> for Step {
    fn from(failure: OpenFailure) -> Step {
        match failure {
            OpenFailure::NotSent(reason) => Step::NotSent(reason),
            OpenFailure::Fatal(e) => Step::Fatal(e),
        }
    }
}

/// Connection state shared by all calls of one client.
pub(super) struct Transport {
    /// Node addresses as given; tried in order.
    addrs: Vec<String>,
    /// `--cluster`, sent in the hello.
    cluster: String,
    /// The client secret proved in the hello, if any.
    secret: Option<Secret>,
    /// The current connection, to the node that answered last (the cached leader).
    conn: Option<Conn>,
    /// Where to connect next before falling back to `addrs`: a redirect target.
    redirect: Option<String>,
    /// Node id -> the address in `addrs` at which that node welcomed us. A redirect
    /// names the leader by id and by the address *the follower* reaches it at (its
    /// `--peers` entry, which may be a proxy or a NAT address the client cannot reach),
    /// so an address the client reached itself is preferred.
    reached: HashMap<NodeId, String>,
    /// Index into `addrs` of the next address to try. Invariant: `< addrs.len()`.
    next_addr: usize,
    /// True if the last connection attempt went to a redirect target rather than to
    /// `addrs[next_addr]`; if it failed, the list resumes where it was.
    last_open_was_redirect: bool,
}

/// Per-call retry bookkeeping.
struct CallState {
    deadline: Instant,
    /// True once the request was written completely on some attempt, or a node said
    /// its outcome is unknown: from then on, a failed write's outcome is unknown.
    maybe_reached: bool,
    backoff: Duration,
    last_reason: String,
    /// Retries made without a pause since the last pause. Bounded by the number of
    /// addresses + 1, so redirect ping-pong during an election or a redirect to a dead
    /// leader cannot spin.
    quick_retries: usize,
}

impl Transport {
    /// A transport over `addrs` (at least one).
    pub fn new(addrs: Vec<String>, cluster: String, secret: Option<Secret>) -> Transport {
        assert!(!addrs.is_empty(), "a client needs at least one address");
        Transport {
            addrs,
            cluster,
            secret,
            conn: None,
            redirect: None,
            reached: HashMap::new(),
            next_addr: 0,
            last_open_was_redirect: false,
        }
    }

    /// Sends `request` to the leader, following redirects and retrying until a final
    /// answer or `timeout`. Returns the final response (never `NotLeader` or
    /// `Unavailable`). `is_write` decides how a timeout is reported.
    pub fn call(
        &mut self,
        request: &ClientRequest,
        is_write: bool,
        timeout: Duration,
    ) -> Result<ClientResponse, ClientError> {
        let mut state = CallState {
            deadline: Instant::now() + timeout,
            maybe_reached: false,
            backoff: BACKOFF_MIN,
            last_reason: "no attempt made".to_string(),
            quick_retries: 0,
        };
        loop {
            if Instant::now() >= state.deadline {
                return Err(give_up(&state, request, timeout));
            }
            let pause = match self.attempt(request, state.deadline) {
                Step::Answer(response) => match self.route(response, &mut state) {
                    Ok(response) => return Ok(response),
                    Err(pause) => pause,
                },
                Step::NotSent(reason) => {
                    state.last_reason = reason;
                    // After a failed redirect, move on through the list too: going back
                    // to the follower that redirected us would only repeat the redirect.
                    let wrapped = self.rotate();
                    wrapped && !self.last_open_was_redirect
                }
                Step::Lost { reason, pause } => {
                    state.maybe_reached = true;
                    state.last_reason = reason;
                    pause
                }
                Step::Fatal(e) if is_write && state.maybe_reached => {
                    state.last_reason = e.to_string();
                    return Err(give_up(&state, request, timeout));
                }
                Step::Fatal(e) => return Err(e),
            };
            if pause || state.quick_retries > self.addrs.len() {
                state.pause();
            } else {
                state.quick_retries += 1;
            }
        }
    }

    /// Handles redirects and `Unavailable`: returns a final response, or `Err(pause)`
    /// to try again (after a pause if `pause`).
    fn route(
        &mut self,
        response: ClientResponse,
        state: &mut CallState,
    ) -> Result<ClientResponse, bool> {
        match response {
            ClientResponse::NotLeader {
                leader_id,
                leader_addr,
            } => {
                self.conn = None;
                state.last_reason = format!("redirected to leader {leader_id:?}");
                let known = leader_id.and_then(|id| self.reached.get(&id).cloned());
                match known.or(leader_addr) {
                    Some(addr) => {
                        self.redirect = Some(addr);
                        Err(false)
                    }
                    None => {
                        self.rotate();
                        Err(true)
                    }
                }
            }
            ClientResponse::Unavailable {
                reason,
                outcome_unknown,
            } => {
                // This member cannot serve now (no leader known, cut off, shutting
                // down): another may reach the leader, so move on through the list.
                state.maybe_reached |= outcome_unknown;
                state.last_reason = reason;
                self.redirect = None;
                self.rotate();
                Err(true)
            }
            other => Ok(other),
        }
    }

    /// One try: connect if needed, send, read one response.
    fn attempt(&mut self, request: &ClientRequest, deadline: Instant) -> Step {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => match self.open(deadline) {
                Ok(conn) => conn,
                Err(failure) => return failure.into(),
            },
        };
        let Some(wait) = wait_until(deadline) else {
            return Step::NotSent("deadline passed".to_string());
        };
        if conn.timeout != Some(wait) {
            if let Err(e) = set_timeouts(conn.stream.get_ref(), wait) {
                return Step::NotSent(format!("cannot set socket timeouts: {e}"));
            }
            conn.timeout = Some(wait);
        }
        // An error here means the frame was not completely written: it cannot have
        // been decoded, let alone applied.
        conn.last_id += 1;
        if let Err(e) = write_tagged_frame(&mut conn.stream.get_ref(), conn.last_id, request) {
            return Step::NotSent(format!("sending request: {e}"));
        }
        match read_answer(&mut conn.stream, conn.last_id) {
            Ok(response) => {
                conn.reused = true;
                self.conn = Some(conn);
                Step::Answer(response)
            }
            Err(e) => {
                let reason = format!("waiting for the answer: {e}");
                if conn.reused {
                    // Likely an idle connection the node closed: at once, same node.
                    self.redirect = Some(conn.addr);
                } else {
                    // A fresh connection failed: the node may be wedged or dying, so
                    // move on; a follower will redirect us back if it is the leader.
                    self.rotate();
                }
                Step::Lost {
                    reason,
                    pause: !conn.reused,
                }
            }
        }
    }

    /// Connects to the redirect target or the next address and says hello.
    fn open(&mut self, deadline: Instant) -> Result<Conn, OpenFailure> {
        self.last_open_was_redirect = self.redirect.is_some();
        let addr = match self.redirect.take() {
            Some(addr) => addr,
            None => self.addrs[self.next_addr].clone(),
        };
        let wait = wait_until(deadline)
            .ok_or_else(|| OpenFailure::NotSent("deadline passed".to_string()))?;
        let mut stream = connect_with_timeout(&addr, wait)
            .map_err(|e| OpenFailure::NotSent(format!("connecting to {addr}: {e}")))?;
        match client_handshake(
            &mut stream,
            &self.cluster,
            HelloFrom::Client,
            self.secret.as_ref(),
        ) {
            Ok(node_id) => {
                if !self.last_open_was_redirect {
                    self.reached.insert(node_id, addr.clone());
                }
                Ok(Conn {
                    stream: BufReader::new(stream),
                    timeout: None,
                    addr,
                    reused: false,
                    last_id: 0,
                })
            }
            Err(e) => Err(handshake_failure(&addr, e)),
        }
    }

    /// Moves to the next address; returns true when a whole round of addresses failed
    /// (time to pause).
    fn rotate(&mut self) -> bool {
        self.conn = None;
        self.next_addr = (self.next_addr + 1) % self.addrs.len();
        self.next_addr == 0
    }
}

impl CallState {
    /// Sleeps for the current backoff (bounded by the deadline) and doubles it.
    fn pause(&mut self) {
        if let Some(wait) = wait_until(self.deadline) {
            thread::sleep(self.backoff.min(wait));
        }
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.quick_retries = 0;
    }
}

/// A refused hello or a non-raftkv answer is fatal; anything else is a failed connect.
fn handshake_failure(addr: &str, e: NetError) -> OpenFailure {
    match e.kind() {
        NetErrorKind::Refused(_) | NetErrorKind::Decode(_) | NetErrorKind::TooLarge { .. } => {
            OpenFailure::Fatal(ClientError::new(
                ClientErrorKind::Protocol,
                format!("handshake with {addr}: {e}"),
            ))
        }
        _ => OpenFailure::NotSent(format!("handshake with {addr}: {e}")),
    }
}

/// Time left until `deadline`, capped at [`MAX_WAIT_PER_TRY`]; `None` if none is left.
fn wait_until(deadline: Instant) -> Option<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        None
    } else {
        Some(left.min(MAX_WAIT_PER_TRY))
    }
}

fn set_timeouts(stream: &TcpStream, wait: Duration) -> std::io::Result<()> {
    stream.set_read_timeout(Some(wait))?;
    stream.set_write_timeout(Some(wait))
}

/// The error for a call that ran out of time. A stale read needs no leader, so its
/// message speaks of nodes.
fn give_up(state: &CallState, request: &ClientRequest, timeout: Duration) -> ClientError {
    let why = &state.last_reason;
    let is_write = matches!(request, ClientRequest::Write(_));
    let who = match request {
        ClientRequest::Get { stale: true, .. } => "node",
        _ => "leader",
    };
    if is_write && state.maybe_reached {
        ClientError::new(
            ClientErrorKind::Unavailable {
                outcome_unknown: true,
            },
            format!(
                "outcome unknown: the write may or may not have been applied \
                 (no leader answered within {timeout:?}; last error: {why})"
            ),
        )
    } else if is_write {
        ClientError::new(
            ClientErrorKind::Unavailable {
                outcome_unknown: false,
            },
            format!(
                "cluster unavailable: the write was not applied \
                 (it reached no node within {timeout:?}; last error: {why})"
            ),
        )
    } else {
        ClientError::new(
            ClientErrorKind::Unavailable {
                outcome_unknown: false,
            },
            format!(
                "cluster unavailable: no {who} answered within {timeout:?} (last error: {why})"
            ),
        )
    }
}

/// Sends one request to `addr` on a fresh connection, without redirects or retries.
pub(super) fn call_once(
    addr: &str,
    cluster: &str,
    secret: Option<&Secret>,
    request: &ClientRequest,
    timeout: Duration,
) -> Result<ClientResponse, ClientError> {
    let unavailable = |e: NetError| {
        ClientError::new(
            ClientErrorKind::Unavailable {
                outcome_unknown: false,
            },
            format!("node {addr} unavailable: {e}"),
        )
    };
    let mut stream = connect_with_timeout(addr, timeout).map_err(unavailable)?;
    if let Err(e) = client_handshake(&mut stream, cluster, HelloFrom::Client, secret) {
        return Err(match handshake_failure(addr, e) {
            OpenFailure::Fatal(fatal) => fatal,
            OpenFailure::NotSent(reason) => ClientError::new(
                ClientErrorKind::Unavailable {
                    outcome_unknown: false,
                },
                format!("node {addr} unavailable: {reason}"),
            ),
        });
    }
    write_tagged_frame(&mut stream, 1, request).map_err(unavailable)?;
    read_answer(&mut stream, 1).map_err(unavailable)
}

/// Reads the answer to the request sent with `id`, the only one in flight. An answer
/// with another id, or one that does not decode, leaves the connection useless.
fn read_answer<R: std::io::Read>(r: &mut R, id: u64) -> Result<ClientResponse, NetError> {
    let (answered, response) = read_tagged_frame(r, MAX_FRAME_BYTES, 0)?;
    let response = response?;
    if answered != id {
        return Err(NetError::new(NetErrorKind::Decode(format!(
            "an answer to request {answered} came instead of the answer to {id}"
        ))));
    }
    Ok(response)
}
