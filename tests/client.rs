//! The client library against tiny fake nodes: TcpListener threads that speak the
//! protocol and answer from a script.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use raftkv::client::{CasOutcome, Client, ClientErrorKind, ClientOptions};
use raftkv::kv::CommandResult;
use raftkv::net::{
    accept_hello, read_tagged_frame, write_tagged_frame, ClientRequest, ClientResponse,
    StatusReport, MAX_FRAME_BYTES,
};

/// What a fake node does with one request.
// A test's scripted answers: the size of a variant costs nothing here.
#[allow(clippy::large_enum_variant)]
enum Action {
    Reply(ClientResponse),
    /// Close the connection without answering (after having read the request).
    Close,
}

/// A fake node: its address and every request it read, tagged with the connection
/// number (0-based) it arrived on.
struct FakeNode {
    addr: String,
    seen: Arc<Mutex<Vec<(usize, ClientRequest)>>>,
}

impl FakeNode {
    fn seen(&self) -> Vec<(usize, ClientRequest)> {
        self.seen.lock().expect("seen lock").clone()
    }
}

/// Starts a fake node with id `id` answering each request with `script(conn, request)`.
/// The thread serves connections until the test process ends.
fn fake_node<F>(id: u64, script: F) -> FakeNode
where
    F: Fn(usize, &ClientRequest) -> Action + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    thread::spawn(move || {
        for (conn, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            if accept_hello(&mut stream, "raftkv", id).is_err() {
                continue;
            }
            while let Ok((id, Ok(request))) =
                read_tagged_frame::<_, ClientRequest>(&mut stream, MAX_FRAME_BYTES, 0)
            {
                let action = script(conn, &request);
                log.lock().expect("seen lock").push((conn, request));
                match action {
                    Action::Reply(response) => {
                        if write_tagged_frame(&mut stream, id, &response).is_err() {
                            break;
                        }
                    }
                    Action::Close => break,
                }
            }
        }
    });
    FakeNode { addr, seen }
}

/// An address nobody listens on.
fn dead_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr").to_string()
}

fn client(addrs: &[&str], timeout_ms: u64) -> Client {
    let opts = ClientOptions {
        timeout: Duration::from_millis(timeout_ms),
        ..ClientOptions::default()
    };
    Client::new(addrs.iter().map(|a| a.to_string()).collect(), opts)
}

/// A leader that applies writes and reads from a fixed answer.
fn leader_answer(request: &ClientRequest) -> Action {
    Action::Reply(match request {
        ClientRequest::Write(_) => ClientResponse::Written(CommandResult::Put),
        ClientRequest::Get { .. } => ClientResponse::Value(Some("v".to_string())),
        ClientRequest::Status => ClientResponse::Status(StatusReport::default()),
        ClientRequest::TransferLeader { target } => {
            ClientResponse::TransferLeader(Ok(target.unwrap_or(2)))
        }
        ClientRequest::Members | ClientRequest::ChangeMembers(_) => {
            ClientResponse::Members(Vec::new())
        }
    })
}

fn write_ids(seen: &[(usize, ClientRequest)]) -> Vec<(u64, u64)> {
    seen.iter()
        .filter_map(|(_, r)| match r {
            ClientRequest::Write(w) => Some((w.client_id, w.seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn redirect_is_followed_and_the_leader_cached() {
    let leader = fake_node(2, |_, r| leader_answer(r));
    let leader_addr = leader.addr.clone();
    let follower = fake_node(1, move |_, _| {
        Action::Reply(ClientResponse::NotLeader {
            leader_id: Some(2),
            leader_addr: Some(leader_addr.clone()),
        })
    });
    let mut c = client(&[&follower.addr], 5000);
    assert_eq!(c.put("k", "v"), Ok(()));
    assert_eq!(c.get("k", false), Ok(Some("v".to_string())));
    assert_eq!(follower.seen().len(), 1, "the leader was not cached");
    let on_leader = leader.seen();
    assert_eq!(on_leader.len(), 2);
    assert!(
        on_leader.iter().all(|(conn, _)| *conn == 0),
        "{on_leader:?}"
    );
}

#[test]
fn dead_address_is_skipped() {
    let dead = dead_addr();
    let leader = fake_node(2, |_, r| leader_answer(r));
    let mut c = client(&[&dead, &leader.addr], 5000);
    let started = Instant::now();
    assert_eq!(c.put("k", "v"), Ok(()));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(write_ids(&leader.seen()), vec![(c.client_id(), 1)]);
}

#[test]
fn write_lost_after_reaching_a_node_is_outcome_unknown() {
    let node = fake_node(1, |_, _| Action::Close);
    let mut c = client(&[&node.addr], 600);
    let err = c.put("k", "v").expect_err("no answer was given");
    assert_eq!(
        err.kind(),
        ClientErrorKind::Unavailable {
            outcome_unknown: true
        }
    );
    assert!(err.to_string().starts_with("outcome unknown:"), "{err}");
    let ids = write_ids(&node.seen());
    assert!(!ids.is_empty());
    assert!(ids.iter().all(|&id| id == (c.client_id(), 1)), "{ids:?}");
}

#[test]
fn no_server_at_all_is_a_known_failure_within_the_deadline() {
    let (a, b) = (dead_addr(), dead_addr());
    let mut c = client(&[&a, &b], 500);
    let started = Instant::now();
    let err = c.put("k", "v").expect_err("nobody listens");
    let elapsed = started.elapsed();
    assert_eq!(
        err.kind(),
        ClientErrorKind::Unavailable {
            outcome_unknown: false
        }
    );
    assert!(err.to_string().contains("not applied"), "{err}");
    assert!(
        elapsed >= Duration::from_millis(500),
        "gave up early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1000),
        "overran the deadline: {elapsed:?}"
    );
    let read = c.get("k", false).expect_err("nobody listens");
    assert_eq!(
        read.kind(),
        ClientErrorKind::Unavailable {
            outcome_unknown: false
        }
    );
}

#[test]
fn retried_write_keeps_its_seq_and_the_next_write_gets_a_new_one() {
    // The first connection loses the request; later ones answer.
    let node = fake_node(1, |conn, r| {
        if conn == 0 {
            Action::Close
        } else {
            leader_answer(r)
        }
    });
    let mut c = client(&[&node.addr], 5000);
    assert_eq!(c.put("k", "v"), Ok(()));
    assert_eq!(c.put("k", "w"), Ok(()));
    let id = c.client_id();
    assert_eq!(write_ids(&node.seen()), vec![(id, 1), (id, 1), (id, 2)]);
    assert_eq!(c.next_seq(), 3);
}

#[test]
fn server_unavailable_verdicts_are_reported_honestly() {
    let unknown = fake_node(1, |_, _| {
        Action::Reply(ClientResponse::Unavailable {
            reason: "lost leadership".to_string(),
            outcome_unknown: true,
        })
    });
    let err = client(&[&unknown.addr], 400)
        .put("k", "v")
        .expect_err("never applied");
    assert_eq!(
        err.kind(),
        ClientErrorKind::Unavailable {
            outcome_unknown: true
        }
    );
    assert!(err.to_string().contains("lost leadership"), "{err}");

    let refused = fake_node(1, |_, _| {
        Action::Reply(ClientResponse::Unavailable {
            reason: "no leader".to_string(),
            outcome_unknown: false,
        })
    });
    let err = client(&[&refused.addr], 400)
        .put("k", "v")
        .expect_err("never applied");
    assert_eq!(
        err.kind(),
        ClientErrorKind::Unavailable {
            outcome_unknown: false
        }
    );
}

/// A node that cannot serve (it knows no leader, or it is cut off) answers
/// "unavailable"; the client must move on to the next address, not keep asking it:
/// another member may reach the leader.
#[test]
fn an_unavailable_node_is_left_for_the_next_address() {
    let stuck = fake_node(1, |_, _| {
        Action::Reply(ClientResponse::Unavailable {
            reason: "this member knows no leader".to_string(),
            outcome_unknown: false,
        })
    });
    let good = fake_node(2, |_, _| {
        Action::Reply(ClientResponse::Written(CommandResult::Put))
    });
    client(&[&stuck.addr, &good.addr], 2_000)
        .put("k", "v")
        .expect("the second node serves the write");
}

#[test]
fn results_map_to_operations() {
    let node = fake_node(1, |_, r| {
        Action::Reply(match r {
            ClientRequest::Write(w) if w.seq == 1 => {
                ClientResponse::Written(CommandResult::Deleted { existed: true })
            }
            ClientRequest::Write(_) => ClientResponse::Written(CommandResult::CasMismatch {
                current: Some("x".to_string()),
            }),
            _ => ClientResponse::Error {
                message: "nope".to_string(),
            },
        })
    });
    let mut c = client(&[&node.addr], 2000);
    assert_eq!(c.delete("k"), Ok(true));
    let mismatch = CasOutcome::Mismatch {
        current: Some("x".to_string()),
    };
    assert_eq!(c.cas("k", None, "y"), Ok(mismatch));
    let err = c.get("k", true).expect_err("the node refused");
    assert_eq!(err.kind(), ClientErrorKind::Other);
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn status_asks_the_first_address_without_redirect() {
    let leader = fake_node(2, |_, r| leader_answer(r));
    let leader_addr = leader.addr.clone();
    let follower = fake_node(1, move |_, r| match r {
        ClientRequest::Status => Action::Reply(ClientResponse::Status(StatusReport {
            id: 1,
            role: "follower".to_string(),
            ..StatusReport::default()
        })),
        _ => Action::Reply(ClientResponse::NotLeader {
            leader_id: Some(2),
            leader_addr: Some(leader_addr.clone()),
        }),
    });
    let mut c = client(&[&follower.addr, &leader.addr], 2000);
    let report = c.status().expect("status");
    assert_eq!((report.id, report.role.as_str()), (1, "follower"));
    assert!(leader.seen().is_empty());
}

#[test]
fn wrong_cluster_is_a_protocol_error() {
    let node = fake_node(1, |_, r| leader_answer(r));
    let opts = ClientOptions {
        cluster: "other".to_string(),
        timeout: Duration::from_secs(2),
        secret: None,
    };
    let mut c = Client::new(vec![node.addr.clone()], opts);
    let err = c.put("k", "v").expect_err("refused");
    assert_eq!(err.kind(), ClientErrorKind::Protocol);
    assert!(node.seen().is_empty());
}

#[test]
fn write_lost_on_one_node_is_retried_on_the_next_with_the_same_seq() {
    let wedged = fake_node(1, |_, _| Action::Close);
    let leader = fake_node(2, |_, r| leader_answer(r));
    let mut c = client(&[&wedged.addr, &leader.addr], 5000);
    assert_eq!(c.put("k", "v"), Ok(()));
    let id = c.client_id();
    assert_eq!(write_ids(&wedged.seen()), vec![(id, 1)]);
    assert_eq!(write_ids(&leader.seen()), vec![(id, 1)]);
}

#[test]
fn redirect_to_a_dead_leader_backs_off_instead_of_spinning() {
    let dead = dead_addr();
    let follower = fake_node(1, move |_, _| {
        Action::Reply(ClientResponse::NotLeader {
            leader_id: Some(2),
            leader_addr: Some(dead.clone()),
        })
    });
    let err = client(&[&follower.addr], 1000)
        .get("k", false)
        .expect_err("no leader");
    assert_eq!(
        err.kind(),
        ClientErrorKind::Unavailable {
            outcome_unknown: false
        }
    );
    // Backoff 50, 100, 200, 400 ms with at most 2 quick retries between pauses: a
    // dozen requests, not the thousands a spinning client would send.
    let asked = follower.seen().len();
    assert!((3..=16).contains(&asked), "{asked} requests in 1 s");
}

#[test]
fn a_redirect_to_an_address_the_client_cannot_reach_moves_on_through_the_list() {
    // The follower reaches the leader through an address the client cannot use (a
    // proxy, NAT); the client's own list has the leader's real address further on.
    let leader = fake_node(2, |_, r| leader_answer(r));
    let unreachable = dead_addr();
    let follower = fake_node(1, move |_, _| {
        Action::Reply(ClientResponse::NotLeader {
            leader_id: Some(2),
            leader_addr: Some(unreachable.clone()),
        })
    });
    let mut c = client(&[&follower.addr, &leader.addr], 5000);
    assert_eq!(c.put("k", "v"), Ok(()));
    assert_eq!(write_ids(&leader.seen()).len(), 1);
}

#[test]
fn session_expired_is_outcome_unknown_and_the_next_write_opens_a_new_session() {
    // The node answers the first write, then says the client's session expired (it was
    // evicted), then answers again.
    let node = fake_node(1, |_, r| match r {
        ClientRequest::Write(w) if w.seq == 2 => Action::Reply(ClientResponse::SessionExpired {
            message: "session expired: client has no session".to_string(),
        }),
        _ => leader_answer(r),
    });
    let mut c = client(&[&node.addr], 2000);
    assert_eq!(c.put("k", "1"), Ok(()));
    let first_id = c.client_id();
    let err = c.put("k", "2").expect_err("the session expired");
    assert_eq!(
        err.kind(),
        ClientErrorKind::Unavailable {
            outcome_unknown: true
        }
    );
    let text = err.to_string();
    assert!(text.starts_with("outcome unknown:"), "{text}");
    assert!(text.contains("session expired"), "{text}");
    assert_eq!(c.put("k", "3"), Ok(()));
    let second_id = c.client_id();
    assert_ne!(second_id, first_id, "no new session after expiry");
    assert_eq!(
        write_ids(&node.seen()),
        vec![(first_id, 1), (first_id, 2), (second_id, 1)]
    );
}

#[test]
fn a_client_whose_first_write_failed_starts_over_with_a_new_session() {
    // The first write's fate is unknown, so the cluster may hold no session for the
    // client: a seq 2 would be refused as expired. The next write opens a new one.
    let node = fake_node(1, |_, _| {
        Action::Reply(ClientResponse::Unavailable {
            reason: "lost leadership".to_string(),
            outcome_unknown: true,
        })
    });
    let mut c = client(&[&node.addr], 300);
    let err = c.put("k", "1").expect_err("never answered");
    assert!(matches!(err.kind(), ClientErrorKind::Unavailable { .. }));
    let first_id = c.client_id();
    c.put("k", "2").expect_err("never answered");
    let ids = write_ids(&node.seen());
    let last = *ids.last().expect("writes were sent");
    assert_ne!(last.0, first_id, "{ids:?}");
    assert_eq!(last.1, 1, "{ids:?}");
}
