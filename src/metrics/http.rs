//! A minimal HTTP/1.1 responder for the metrics listener: one request per connection,
//! a bounded request head, `GET` only, and `Connection: close` on every answer.
//! Works on any byte stream, so tests need no socket; the caller sets the socket's
//! read timeout.

use std::io::{self, Read, Write};

/// The largest request head read (request line and headers); a longer one gets 431.
pub const MAX_HEAD_BYTES: usize = 8 << 10;

/// An answer to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code: 200, 400, 404, 405, 431 or 503.
    pub status: u16,
    /// The `Content-Type` header.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

/// The content type of the Prometheus text format.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Response {
    /// A plain-text answer with `status`.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into(),
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Reads one request from `stream` and writes the answer `route` gives for its path
/// (without the query string); `route` returns `None` for an unknown path (404).
/// Malformed or oversized requests are answered 400 or 431 without calling `route`.
/// A read error (a timeout, a reset) returns it and answers nothing.
pub fn answer<S: Read + Write>(
    stream: &mut S,
    route: impl FnOnce(&str) -> Option<Response>,
) -> io::Result<()> {
    let response = match read_head(stream)? {
        Head::TooLarge => Response::text(431, "request head too large\n"),
        Head::Complete(head) => match parse_request_line(&head) {
            Err(why) => Response::text(400, format!("{why}\n")),
            Ok(("GET", path)) => {
                let path = path.split('?').next().unwrap_or(path);
                route(path).unwrap_or_else(|| {
                    Response::text(404, "not found: the paths are /metrics and /health\n")
                })
            }
            Ok(_) => Response::text(405, "only GET is supported\n"),
        },
    };
    write_response(stream, &response)
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
}

fn read_head<S: Read>(stream: &mut S) -> io::Result<Head> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(Head::Complete(head));
        }
        if head.len() >= MAX_HEAD_BYTES {
            return Ok(Head::TooLarge);
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed before the request head ended",
            ));
        }
        head.extend_from_slice(&chunk[..n]);
    }
}

/// The method and path of a request line `METHOD PATH HTTP/1.x`.
fn parse_request_line(head: &[u8]) -> Result<(&str, &str), &'static str> {
    let end = head
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or("no request line")?;
    let line = std::str::from_utf8(&head[..end]).map_err(|_| "the request line is not UTF-8")?;
    let mut parts = line.split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("a request line is METHOD PATH HTTP/1.1");
    };
    if !version.starts_with("HTTP/1.") || !path.starts_with('/') {
        return Err("a request line is METHOD PATH HTTP/1.1");
    }
    Ok((method, path))
}

fn write_response<S: Write>(stream: &mut S, response: &Response) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(response.body.as_bytes())?;
    stream.flush()
}
