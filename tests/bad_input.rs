//! A node faced with garbage, oversized frames or a foreign protocol version answers
//! with an error or closes that connection, and keeps serving everyone else.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use raftkv::net::{self, Hello, HelloFrom, HelloReply};
use support::Cluster;

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// Reads until EOF or error; true if the node closed the connection (no hang).
fn node_closes(mut stream: TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

#[test]
fn garbage_oversized_frames_and_wrong_versions_do_not_hurt_other_clients() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.leader();
    let addr = cluster.addrs[leader].clone();

    // Garbage bytes instead of a hello.
    let mut garbage = connect(&addr);
    garbage
        .write_all(b"\x00\x00\x00\x10this is not bincode!!")
        .expect("write garbage");
    assert!(node_closes(garbage), "node kept a garbage connection open");

    // A frame claiming to be 4 GiB long.
    let mut huge = connect(&addr);
    huge.write_all(&u32::MAX.to_be_bytes())
        .expect("write length");
    assert!(
        node_closes(huge),
        "node kept an oversized-frame connection open"
    );

    // A hello from a future protocol version is refused with a reason.
    let mut future = connect(&addr);
    let hello = Hello {
        version: net::PROTOCOL_VERSION + 1,
        cluster: "raftkv".into(),
        from: HelloFrom::Client,
    };
    net::write_frame(&mut future, &hello).expect("send hello");
    let reply: HelloReply = net::read_frame(&mut future, 4096).expect("a reply to the hello");
    assert!(
        matches!(reply, HelloReply::Refused { .. }),
        "wrong version accepted: {reply:?}"
    );

    // A hello naming another cluster is refused too.
    let mut foreign = connect(&addr);
    let hello = Hello {
        version: net::PROTOCOL_VERSION,
        cluster: "someone-else".into(),
        from: HelloFrom::Client,
    };
    net::write_frame(&mut foreign, &hello).expect("send hello");
    let reply: HelloReply = net::read_frame(&mut foreign, 4096).expect("a reply to the hello");
    assert!(matches!(reply, HelloReply::Refused { .. }), "{reply:?}");

    // Everyone else is still served.
    let out = cluster.client_all(&["put", "still", "alive"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = cluster.client(&[leader], &["get", "still"]);
    assert_eq!(out.stdout, "alive\n", "{out:?}");
}
