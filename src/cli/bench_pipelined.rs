//! `raftkv bench --conns N`: the `--clients` logical clients share N connections, as
//! in etcd's benchmark tool. One thread per connection drives its share of the
//! logical clients (client i rides connection i mod N) through a [`Pipeline`]: each
//! logical client keeps one request in flight and has its own session, so its writes
//! stay exactly-once, and the connection carries all of theirs at once.
//!
//! Before the clock starts, each logical client sends one unmeasured request; a
//! connection answered "not the leader" moves to the leader it names (at most a few
//! times). After that the connection follows no redirect: a redirect or "unavailable"
//! answer during the run counts as a failed operation.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use raftkv::client::{ClientError, ClientOptions, Pipeline};
use raftkv::kv::{Command, Request};
use raftkv::net::{ClientRequest, ClientResponse};
use raftkv::sync::atomic::Ordering;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::Barrier;

use super::args::{BenchArgs, Workload};
use super::bench_cmd::{client_addrs, error_kind, key_name, ClientResult, Progress};

/// Most times the warm-up follows a redirect to the leader.
const MAX_WARMUP_REDIRECTS: usize = 3;

/// One logical client's session: writes carry `(client_id, seq)`, as the client
/// library's (`Client`) do.
struct Session {
    client_id: u64,
    next_seq: u64,
    /// True once a write of this session was applied.
    open: bool,
}

impl Session {
    fn new(rng: &mut SmallRng) -> Session {
        Session {
            client_id: rng.gen_range(1..=u64::MAX),
            next_seq: 1,
            open: false,
        }
    }

    /// The next write: a new session first if none of this one's writes was applied
    /// (the cluster may hold no session for it).
    fn write(&mut self, rng: &mut SmallRng, command: Command) -> ClientRequest {
        if !self.open && self.next_seq > 1 {
            *self = Session::new(rng);
        }
        let request = Request {
            client_id: self.client_id,
            seq: self.next_seq,
            command,
        };
        self.next_seq += 1;
        ClientRequest::Write(request)
    }
}

/// The connection thread's state: its pipeline, its logical clients and what each
/// has in flight.
struct Driver<'a> {
    args: &'a BenchArgs,
    progress: &'a Progress,
    pipe: Pipeline,
    rng: SmallRng,
    value: String,
    sessions: Vec<Session>,
    /// Request id -> (logical client, sent at, is a read).
    in_flight: HashMap<u64, (usize, Instant, bool)>,
    deadline: Option<Instant>,
    result: ClientResult,
}

/// Runs connection `c` of `--conns`: returns what its logical clients measured.
pub(super) fn run_connection(
    args: &BenchArgs,
    progress: &Progress,
    ready: &Barrier,
    c: usize,
) -> ClientResult {
    let mut result = ClientResult::new();
    let conns = args.conns.unwrap_or(args.clients);
    let logical = (c..args.clients).step_by(conns).count();
    let options = ClientOptions {
        cluster: args.cluster.clone(),
        timeout: Duration::from_secs_f64(args.timeout),
        secret: args.secret.clone(),
    };
    let mut rng = SmallRng::seed_from_u64(rand::random::<u64>() ^ c as u64);
    let sessions: Vec<Session> = (0..logical).map(|_| Session::new(&mut rng)).collect();
    let addr = client_addrs(args, c as u64).remove(0);
    let pipe = match Pipeline::connect(&addr, &options, logical.max(1)) {
        Ok(pipe) => pipe,
        Err(err) => {
            *result.warmup_errors.entry(error_kind(&err)).or_default() += logical as u64;
            ready.wait();
            return result;
        }
    };
    let mut driver = Driver {
        args,
        progress,
        pipe,
        rng,
        value: "v".repeat(args.value_size),
        sessions,
        in_flight: HashMap::new(),
        deadline: None,
        result,
    };
    driver.warm_up(&options);
    ready.wait();
    driver.deadline = args
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d));
    driver.run();
    driver.result
}

impl Driver<'_> {
    /// The next request of logical client `i`, and whether it is a read.
    fn next_request(&mut self, i: usize) -> (ClientRequest, bool) {
        let key = key_name(self.rng.gen_range(0..self.args.keys), self.args.key_size);
        let read = match self.args.workload {
            Workload::Put => false,
            Workload::Get => true,
            Workload::Mixed => self.rng.gen_bool(self.args.read_ratio),
        };
        if read {
            let get = ClientRequest::Get {
                key,
                stale: self.args.stale,
            };
            return (get, true);
        }
        let command = Command::Put {
            key,
            value: self.value.clone(),
        };
        (self.sessions[i].write(&mut self.rng, command), false)
    }

    /// Sends logical client `i`'s next request.
    fn send(&mut self, i: usize) -> Result<(), ClientError> {
        let (request, read) = self.next_request(i);
        let id = self.pipe.send(&request)?;
        self.in_flight.insert(id, (i, Instant::now(), read));
        Ok(())
    }

    /// One unmeasured request per logical client; follows "not the leader" by moving
    /// the connection to the leader named, then sends every warm-up again.
    fn warm_up(&mut self, options: &ClientOptions) {
        for _ in 0..=MAX_WARMUP_REDIRECTS {
            let mut leader = None;
            let mut errors: HashMap<String, u64> = HashMap::new();
            let sent = (0..self.sessions.len()).try_for_each(|i| self.send(i));
            let answers = sent.and_then(|()| self.drain());
            match answers {
                Ok(answers) => {
                    for (i, response) in answers {
                        match response {
                            ClientResponse::NotLeader {
                                leader_addr: Some(addr),
                                ..
                            } => leader = Some(addr),
                            other => {
                                if let Err(kind) = self.judge(i, other) {
                                    *errors.entry(kind).or_default() += 1;
                                }
                            }
                        }
                    }
                }
                Err(err) => *errors.entry(error_kind(&err)).or_default() += 1,
            }
            let Some(addr) = leader else {
                for (kind, n) in errors {
                    *self.result.warmup_errors.entry(kind).or_default() += n;
                }
                return;
            };
            self.in_flight.clear();
            match Pipeline::connect(&addr, options, self.sessions.len().max(1)) {
                Ok(pipe) => self.pipe = pipe,
                Err(err) => {
                    *self
                        .result
                        .warmup_errors
                        .entry(error_kind(&err))
                        .or_default() += 1;
                    return;
                }
            }
        }
        *self
            .result
            .warmup_errors
            .entry("redirected too many times".into())
            .or_default() += 1;
    }

    /// Receives the answer to everything in flight: (logical client, response).
    fn drain(&mut self) -> Result<Vec<(usize, ClientResponse)>, ClientError> {
        let mut answers = Vec::new();
        while !self.in_flight.is_empty() {
            let (id, response) = self.pipe.recv()?;
            if let Some((i, _, _)) = self.in_flight.remove(&id) {
                answers.push((i, response));
            }
        }
        Ok(answers)
    }

    /// Whether the run wants another operation (claims it under --ops).
    fn want_more(&self) -> bool {
        match (self.args.ops, self.deadline) {
            (Some(ops), _) => self.progress.claimed.fetch_add(1, Ordering::SeqCst) < ops,
            (None, Some(deadline)) => Instant::now() < deadline,
            (None, None) => false,
        }
    }

    /// The measured run: every logical client sends, and sends again on each answer.
    fn run(&mut self) {
        let mut broken = (0..self.sessions.len()).try_for_each(|i| {
            if self.want_more() {
                self.send(i)
            } else {
                Ok(())
            }
        });
        while broken.is_ok() && !self.in_flight.is_empty() {
            broken = self.pipe.recv().and_then(|(id, response)| {
                let Some((i, sent, _)) = self.in_flight.remove(&id) else {
                    return Ok(());
                };
                let took = sent.elapsed();
                match self.judge(i, response) {
                    Ok(()) => self.result.latencies.record(took.as_micros() as u64),
                    Err(kind) => *self.result.errors.entry(kind).or_default() += 1,
                }
                self.progress.done.fetch_add(1, Ordering::Relaxed);
                if self.want_more() {
                    self.send(i)?;
                }
                Ok(())
            });
        }
        if let Err(err) = broken {
            // Every operation in flight failed with the connection; the run goes on
            // without this connection's clients (as a `Client` would keep failing).
            let n = self.in_flight.len().max(1) as u64;
            *self.result.errors.entry(error_kind(&err)).or_default() += n;
            self.progress.done.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Whether `response` is the success its request wanted; `Err` names the failure.
    fn judge(&mut self, i: usize, response: ClientResponse) -> Result<(), String> {
        match response {
            ClientResponse::Written(_) => {
                self.sessions[i].open = true;
                Ok(())
            }
            ClientResponse::Value(_) => Ok(()),
            ClientResponse::SessionExpired { .. } => {
                self.sessions[i].open = false;
                Err("outcome unknown (the session expired)".into())
            }
            ClientResponse::NotLeader { .. } => {
                Err("not the leader (--conns follows no redirect after the warm-up)".into())
            }
            ClientResponse::Unavailable {
                outcome_unknown: true,
                ..
            } => Err("outcome unknown (no answer after the request was sent)".into()),
            ClientResponse::Unavailable { .. } => {
                Err("cluster unavailable (no node or no leader answered in time)".into())
            }
            ClientResponse::Error { message } => Err(message),
            ClientResponse::TooLarge { len, max } => {
                Err(format!("refused: {len} bytes is over the limit of {max}"))
            }
            ClientResponse::Status(_)
            | ClientResponse::TransferLeader(_)
            | ClientResponse::Members(_)
            | ClientResponse::MemberRefused { .. } => Err("an answer of another kind".into()),
        }
    }
}
