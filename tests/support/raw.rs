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
    /// The id of the last request `call` sent.
    last_id: u64,
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
            Ok(HelloReply::Welcome { .. }) => Ok(Raw { stream, last_id: 0 }),
            Ok(HelloReply::Refused { reason }) => Err(reason),
            Ok(other) => Err(format!("unexpected hello reply {other:?}")),
            Err(e) => Err(format!("no hello reply: {e}")),
        }
    }

    /// Sends one request and reads its answer, checking that it names the request.
    pub fn call(&mut self, request: &ClientRequest) -> Result<ClientResponse, String> {
        self.last_id += 1;
        self.send(self.last_id, request)?;
        let (id, response) = self.recv()?;
        if id != self.last_id {
            return Err(format!("answer to {id} instead of {}", self.last_id));
        }
        Ok(response)
    }

    /// Sends one request tagged `id`, without waiting for its answer.
    pub fn send(&mut self, id: u64, request: &ClientRequest) -> Result<(), String> {
        net::write_tagged_frame(&mut self.stream, id, request).map_err(|e| format!("send: {e}"))
    }

    /// Reads the next answer: the id it names and the response.
    pub fn recv(&mut self) -> Result<(u64, ClientResponse), String> {
        let (id, response) = net::read_tagged_frame(&mut self.stream, MAX_FRAME_BYTES, 0)
            .map_err(|e| format!("answer: {e}"))?;
        Ok((id, response.map_err(|e| format!("answer {id}: {e}"))?))
    }

    /// Asks for the node's status.
    pub fn status(&mut self) -> Result<StatusReport, String> {
        match self.call(&ClientRequest::Status)? {
            ClientResponse::Status(report) => Ok(report),
            other => Err(format!("status answered {other:?}")),
        }
    }
}
