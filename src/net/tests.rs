//! Unit tests of framing, the handshake, status lines and addresses.

use std::io::{self, Cursor, Read};
use std::net::TcpListener;
use std::time::Duration;

use super::peer::{connect_with_timeout, normalize_addr};
use super::*;
use crate::kv::{Command, Request};
use crate::raft::{Entry, Message, MessageBody, Payload};

fn encode<T: serde::Serialize>(msg: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    write_frame(&mut buf, msg).expect("frame encodes");
    buf
}

fn kind_of<T>(result: Result<T, NetError>) -> NetErrorKind {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.kind().clone(),
    }
}

fn append_message() -> Message {
    Message {
        from: 1,
        to: 2,
        term: 3,
        body: MessageBody::AppendEntries {
            prev_log_index: 4,
            prev_log_term: 2,
            entries: vec![
                Entry {
                    term: 3,
                    index: 5,
                    payload: Payload::Noop,
                },
                Entry {
                    term: 3,
                    index: 6,
                    payload: Payload::Command(vec![1, 2, 3]),
                },
            ],
            leader_commit: 4,
            read_round: 9,
            check: None,
        },
    }
}

#[test]
fn frames_round_trip_in_sequence() {
    let write = ClientRequest::Write(Request {
        client_id: 42,
        seq: 7,
        command: Command::Put {
            key: "k".to_string(),
            value: "v".to_string(),
        },
    });
    let mut stream = encode(&append_message());
    stream.extend(encode(&write));
    let len = u32::from_be_bytes([stream[0], stream[1], stream[2], stream[3]]);
    assert_eq!(len as usize + 4, encode(&append_message()).len());
    let mut r = Cursor::new(stream);
    let first: Message = read_frame(&mut r, MAX_FRAME_BYTES).expect("first frame");
    assert_eq!(first, append_message());
    let second: ClientRequest = read_frame(&mut r, MAX_FRAME_BYTES).expect("second frame");
    assert_eq!(second, write);
    let end = read_frame::<_, ClientRequest>(&mut r, MAX_FRAME_BYTES);
    assert_eq!(kind_of(end), NetErrorKind::Closed);
}

/// Yields `data`, then fails the test if read further: proves a reader stopped.
struct ReadLimit {
    data: Cursor<Vec<u8>>,
}

impl Read for ReadLimit {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.data.read(buf)?;
        assert!(n > 0, "read past the header of an oversized frame");
        Ok(n)
    }
}

#[test]
fn a_batch_encoded_into_one_buffer_reads_back_frame_by_frame() {
    let mut batch = Vec::new();
    encode_frame(&mut batch, &append_message()).expect("encodes");
    let one = batch.len();
    encode_frame(&mut batch, &append_message()).expect("encodes");
    assert_eq!(batch.len(), 2 * one, "frames are appended, not overwritten");
    assert_eq!(
        batch[..one],
        encode(&append_message())[..],
        "same bytes as write_frame"
    );

    // frame_buffered says exactly when a whole frame is at the front.
    assert!(!frame_buffered(&[]));
    assert!(!frame_buffered(&batch[..3]), "a partial header");
    assert!(!frame_buffered(&batch[..one - 1]), "a partial body");
    assert!(frame_buffered(&batch[..one]));
    assert!(frame_buffered(&batch[one..]));

    let mut reader = io::BufReader::new(Cursor::new(batch));
    for _ in 0..2 {
        let got: Message = read_frame(&mut reader, MAX_FRAME_BYTES).expect("decodes");
        assert_eq!(got, append_message());
    }
    assert!(!frame_buffered(reader.buffer()));
}

#[test]
fn oversized_length_is_refused_before_reading_the_body() {
    for (len, max) in [(u32::MAX, MAX_FRAME_BYTES), (1001, 1000)] {
        let mut r = ReadLimit {
            data: Cursor::new(len.to_be_bytes().to_vec()),
        };
        let expected = NetErrorKind::TooLarge {
            len: u64::from(len),
            max: u64::from(max),
        };
        assert_eq!(kind_of(read_frame::<_, Hello>(&mut r, max)), expected);
    }
}

#[test]
fn oversized_message_is_not_written() {
    let big = vec![0u8; MAX_FRAME_BYTES as usize];
    let mut out = Vec::new();
    let kind = kind_of(write_frame(&mut out, &big));
    assert!(matches!(kind, NetErrorKind::TooLarge { .. }), "{kind:?}");
    assert!(out.is_empty(), "{} bytes written", out.len());
}

#[test]
fn garbage_body_is_a_decode_error() {
    // A varint length prefix claiming a huge string must fail on the limit, not
    // allocate; an unknown enum tag must fail too.
    let huge_string = vec![0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    let bad_tag = vec![0x09, 0x00];
    for body in [huge_string, bad_tag, vec![0x01]] {
        let mut frame = (body.len() as u32).to_be_bytes().to_vec();
        frame.extend(&body);
        let kind = kind_of(read_frame::<_, HelloReply>(&mut Cursor::new(frame), 1000));
        assert!(
            matches!(kind, NetErrorKind::Decode(_)),
            "{body:?}: {kind:?}"
        );
    }
}

#[test]
fn trailing_bytes_in_a_body_are_a_decode_error() {
    let mut frame = encode(&HelloReply::Welcome { node_id: 1 });
    frame.push(0);
    let len = (frame.len() - 4) as u32;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    let kind = kind_of(read_frame::<_, HelloReply>(&mut Cursor::new(frame), 1000));
    assert!(matches!(kind, NetErrorKind::Decode(_)), "{kind:?}");
}

#[test]
fn truncated_stream_is_an_error_at_every_cut() {
    let frame = encode(&append_message());
    for cut in 1..frame.len() {
        let mut r = Cursor::new(frame[..cut].to_vec());
        let kind = kind_of(read_frame::<_, Message>(&mut r, MAX_FRAME_BYTES));
        assert_eq!(
            kind,
            NetErrorKind::Io(io::ErrorKind::UnexpectedEof),
            "cut {cut}"
        );
    }
}

/// Gives `data`, then times out.
struct ThenTimeout {
    data: Cursor<Vec<u8>>,
}

impl Read for ThenTimeout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.data.read(buf)? {
            0 => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
}

#[test]
fn timeout_is_resumable_only_between_frames() {
    let mut between = ThenTimeout {
        data: Cursor::new(Vec::new()),
    };
    let kind = kind_of(read_frame::<_, Message>(&mut between, MAX_FRAME_BYTES));
    assert_eq!(kind, NetErrorKind::Timeout);
    let frame = encode(&append_message());
    let mut inside = ThenTimeout {
        data: Cursor::new(frame[..6].to_vec()),
    };
    let kind = kind_of(read_frame::<_, Message>(&mut inside, MAX_FRAME_BYTES));
    assert_eq!(kind, NetErrorKind::Io(io::ErrorKind::WouldBlock));
}

fn hello(version: u32, cluster: &str) -> Hello {
    Hello {
        version,
        cluster: cluster.to_string(),
        from: HelloFrom::Peer {
            id: 2,
            incarnation: 1,
            addr: String::new(),
        },
    }
}

#[test]
fn check_hello_refuses_version_and_cluster_mismatch() {
    assert_eq!(
        check_hello(&hello(PROTOCOL_VERSION, "raftkv"), "raftkv"),
        Ok(())
    );
    let version = check_hello(&hello(PROTOCOL_VERSION + 1, "raftkv"), "raftkv");
    assert!(version
        .is_err_and(|why| why.contains(&format!("protocol version {}", PROTOCOL_VERSION + 1))));
    let cluster = check_hello(&hello(PROTOCOL_VERSION, "other"), "raftkv");
    assert!(cluster.is_err_and(|why| why.contains("\"other\"")));
}

/// Runs `accept_hello` for one connection on a thread; returns the address and the
/// thread's handle.
fn hello_server(
    cluster: &'static str,
) -> (String, std::thread::JoinHandle<Result<HelloFrom, NetError>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr").to_string();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        accept_hello(&mut stream, cluster, 3)
    });
    (addr, handle)
}

#[test]
fn handshake_over_tcp_welcomes_and_refuses() {
    let timeout = Duration::from_secs(5);
    let (addr, server) = hello_server("raftkv");
    let mut stream = connect_with_timeout(&addr, timeout).expect("connect");
    assert!(stream.nodelay().expect("nodelay"));
    let node_id = client_handshake(&mut stream, "raftkv", HelloFrom::Client, None);
    assert_eq!(node_id.expect("welcome"), 3);
    assert_eq!(
        server.join().expect("server").expect("accepted"),
        HelloFrom::Client
    );

    let (addr, server) = hello_server("raftkv");
    let mut stream = connect_with_timeout(&addr, timeout).expect("connect");
    let kind = kind_of(client_handshake(
        &mut stream,
        "other",
        HelloFrom::Client,
        None,
    ));
    assert!(matches!(kind, NetErrorKind::Refused(ref why) if why.contains("other")));
    let server_kind = kind_of(server.join().expect("server"));
    assert!(matches!(server_kind, NetErrorKind::Refused(_)));
}

#[test]
fn connect_to_a_closed_port_fails() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local addr").to_string()
    };
    let kind = kind_of(connect_with_timeout(&addr, Duration::from_secs(1)));
    assert!(matches!(kind, NetErrorKind::Io(_)), "{kind:?}");
}

#[test]
fn normalize_addr_expands_bare_ports_only() {
    assert_eq!(normalize_addr(":8001"), "127.0.0.1:8001");
    assert_eq!(normalize_addr("10.0.0.1:8001"), "10.0.0.1:8001");
    assert_eq!(normalize_addr("node-1:8001"), "node-1:8001");
}

#[test]
fn status_lines_follow_design_section_4() {
    let mut report = StatusReport {
        id: 1,
        role: "leader".to_string(),
        term: 5,
        leader: Some((1, "127.0.0.1:8001".to_string())),
        commit_index: 10,
        applied_index: 9,
        first_index: 3,
        last_index: 11,
        snapshot_index: 2,
        snapshot_bytes: 345,
        match_index: vec![(2, 11), (3, 7)],
        alarm: String::new(),
        voters: vec![1, 2, 3],
        learners: vec![],
        client_requests_in_flight: 4,
        data_bytes: 6789,
    };
    let expected = "id: 1\nrole: leader\nterm: 5\nleader: 1 127.0.0.1:8001\n\
        commit_index: 10\napplied_index: 9\nfirst_index: 3\nlast_index: 11\n\
        snapshot_index: 2\nsnapshot_bytes: 345\nalarm: none\nvoters: 1,2,3\nlearners: none\n\
        client_requests_in_flight: 4\ndata_bytes: 6789\npeer.2.match_index: 11\npeer.3.match_index: 7\n";
    assert_eq!(report.to_lines(), expected);
    report.role = "follower".to_string();
    report.leader = None;
    report.match_index.clear();
    let lines = report.to_lines();
    assert!(lines.contains("\nleader: none\n"), "{lines}");
    assert!(
        lines.ends_with(
            "alarm: none\nvoters: 1,2,3\nlearners: none\nclient_requests_in_flight: 4\ndata_bytes: 6789\n"
        ),
        "{lines}"
    );
    report.learners = vec![4];
    assert!(report.to_lines().contains("\nlearners: 4\n"));
}

mod fuzz {
    //! Whatever arrives on a socket, reading it is an error or a value, never a panic
    //! and never an allocation beyond the announced (and checked) length.

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = read_frame::<_, Message>(&mut Cursor::new(bytes.clone()), MAX_FRAME_BYTES);
            let _ = read_frame::<_, ClientRequest>(&mut Cursor::new(bytes), MAX_FRAME_BYTES);
        }

        #[test]
        fn corrupted_frames_never_panic(at in 4usize..64, byte in any::<u8>()) {
            let mut frame = encode(&append_message());
            let at = at % frame.len();
            frame[at] = byte;
            match read_frame::<_, Message>(&mut Cursor::new(frame), MAX_FRAME_BYTES) {
                Ok(_) => {}
                Err(e) => prop_assert!(!matches!(e.kind(), NetErrorKind::Closed)),
            }
        }
    }
}
