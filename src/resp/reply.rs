//! Replies: what a command answers, encoded in RESP2, and a reader for them (used by
//! tests and tools that talk to raftkv as a Redis client would).

/// The deepest array nesting [`parse_reply`] accepts. raftkv's own replies nest at most
/// two levels (COMMAND DOCS); the bound keeps a hostile peer from exhausting the stack.
pub const MAX_REPLY_DEPTH: usize = 8;

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`: a short status line (no `\r` or `\n` inside).
    Simple(String),
    /// `-ERR ...`: an error; the text starts with its kind (`ERR`, `CLUSTERDOWN`, ...).
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$3\r\nfoo`, or `$-1` (nil) for `None`.
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...`, or `*-1` (nil array) for `None`.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// `+OK`.
    pub fn ok() -> Reply {
        Reply::Simple("OK".into())
    }

    /// A bulk string holding `bytes`.
    pub fn bulk(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply::Bulk(Some(bytes.into()))
    }

    /// The nil bulk string.
    pub fn nil() -> Reply {
        Reply::Bulk(None)
    }

    /// An error reply; `text` starts with the error kind, e.g. `ERR syntax error`.
    pub fn error(text: impl Into<String>) -> Reply {
        Reply::Error(text.into())
    }

    /// Appends the RESP2 encoding of this reply to `out`. Line breaks inside a simple
    /// string or an error would end the line early, so they become spaces.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            Reply::Error(s) => line(out, b'-', s.as_bytes()),
            Reply::Integer(n) => line(out, b':', n.to_string().as_bytes()),
            Reply::Bulk(None) => out.extend_from_slice(b"$-1\r\n"),
            Reply::Bulk(Some(bytes)) => {
                line(out, b'$', bytes.len().to_string().as_bytes());
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
            Reply::Array(None) => out.extend_from_slice(b"*-1\r\n"),
            Reply::Array(Some(items)) => {
                line(out, b'*', items.len().to_string().as_bytes());
                for item in items {
                    item.encode(out);
                }
            }
        }
    }

    /// The encoding as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

fn line(out: &mut Vec<u8>, kind: u8, text: &[u8]) {
    out.push(kind);
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

/// Reads the first reply in `buf`: `Ok(Some((reply, used)))`, `Ok(None)` if more bytes
/// are needed, or an error naming what is malformed. Bulk strings may be up to
/// `max_bulk_bytes` long and arrays `max_items` long; arrays nest at most
/// [`MAX_REPLY_DEPTH`] deep.
pub fn parse_reply(
    buf: &[u8],
    max_bulk_bytes: usize,
    max_items: usize,
) -> Result<Option<(Reply, usize)>, String> {
    let limits = ReplyLimits {
        max_bulk_bytes,
        max_items,
    };
    parse_at(buf, 0, 0, &limits)
}

struct ReplyLimits {
    max_bulk_bytes: usize,
    max_items: usize,
}

type Step = Result<Option<(Reply, usize)>, String>;

fn parse_at(buf: &[u8], at: usize, depth: usize, limits: &ReplyLimits) -> Step {
    let Some(&kind) = buf.get(at) else {
        return Ok(None);
    };
    // The line after the type byte, up to its CRLF.
    let Some(end) = buf[at + 1..].windows(2).position(|w| w == b"\r\n") else {
        return Ok(None);
    };
    let text = &buf[at + 1..at + 1 + end];
    let next = at + 1 + end + 2;
    let utf8 = || String::from_utf8(text.to_vec()).map_err(|_| "a reply line is not UTF-8");
    let number = || -> Result<i64, String> {
        let s = std::str::from_utf8(text).map_err(|_| "a length is not UTF-8")?;
        s.parse::<i64>().map_err(|_| format!("not a number: {s:?}"))
    };
    match kind {
        b'+' => Ok(Some((Reply::Simple(utf8()?), next))),
        b'-' => Ok(Some((Reply::Error(utf8()?), next))),
        b':' => Ok(Some((Reply::Integer(number()?), next))),
        b'$' => bulk_at(buf, next, number()?, limits),
        b'*' => array_at(buf, next, number()?, depth, limits),
        other => Err(format!("unknown reply type {:?}", char::from(other))),
    }
}

fn bulk_at(buf: &[u8], at: usize, len: i64, limits: &ReplyLimits) -> Step {
    if len == -1 {
        return Ok(Some((Reply::Bulk(None), at)));
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= limits.max_bulk_bytes)
        .ok_or(format!("bad bulk length {len}"))?;
    let Some(data) = buf.get(at..at + len + 2) else {
        return Ok(None);
    };
    if &data[len..] != b"\r\n" {
        return Err("a bulk string does not end with CRLF".into());
    }
    Ok(Some((
        Reply::Bulk(Some(data[..len].to_vec())),
        at + len + 2,
    )))
}

fn array_at(buf: &[u8], mut at: usize, len: i64, depth: usize, limits: &ReplyLimits) -> Step {
    if len == -1 {
        return Ok(Some((Reply::Array(None), at)));
    }
    if depth >= MAX_REPLY_DEPTH {
        return Err(format!("arrays nested deeper than {MAX_REPLY_DEPTH}"));
    }
    let len = usize::try_from(len)
        .ok()
        .filter(|&n| n <= limits.max_items)
        .ok_or(format!("bad array length {len}"))?;
    let mut items = Vec::with_capacity(len.min(16));
    for _ in 0..len {
        let Some((item, next)) = parse_at(buf, at, depth + 1, limits)? else {
            return Ok(None);
        };
        items.push(item);
        at = next;
    }
    Ok(Some((Reply::Array(Some(items)), at)))
}
