//! A raw client connection over the wire protocol, for tests that must bypass the
//! client library (its checks, its redirects) as a buggy or hostile client would.

use std::net::TcpStream;
use std::time::Duration;

use raftkv::net::{
    self, ClientRequest, ClientResponse, Hello, HelloFrom, HelloReply, StatusReport,
    MAX_FRAME_BYTES,
};

/// A raw client connection: the hello is done, frames go back and forth by hand.
pub struct Raw {
    /// The socket, for tests that read or wait on it directly.
    pub stream: TcpStream,
}

impl Raw {
    /// Connects and says hello as a client; `Err` is the node's refusal reason.
    pub fn open(addr: &str) -> Result<Raw, String> {
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let hello = Hello {
            version: net::PROTOCOL_VERSION,
            cluster: "raftkv".into(),
            from: HelloFrom::Client,
        };
        net::write_frame(&mut stream, &hello).map_err(|e| format!("hello: {e}"))?;
        match net::read_frame(&mut stream, net::MAX_HELLO_BYTES) {
            Ok(HelloReply::Welcome { .. }) => Ok(Raw { stream }),
            Ok(HelloReply::Refused { reason }) => Err(reason),
            Ok(other) => Err(format!("unexpected hello reply {other:?}")),
            Err(e) => Err(format!("no hello reply: {e}")),
        }
    }

    /// Sends one request and reads its answer.
    pub fn call(&mut self, request: &ClientRequest) -> Result<ClientResponse, String> {
        net::write_frame(&mut self.stream, request).map_err(|e| format!("send: {e}"))?;
        net::read_frame(&mut self.stream, MAX_FRAME_BYTES).map_err(|e| format!("answer: {e}"))
    }

    /// Asks for the node's status.
    pub fn status(&mut self) -> Result<StatusReport, String> {
        match self.call(&ClientRequest::Status)? {
            ClientResponse::Status(report) => Ok(report),
            other => Err(format!("status answered {other:?}")),
        }
    }
}
