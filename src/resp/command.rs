//! Parsing a client's command: RESP2 multibulk (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and
//! inline commands (`GET k\r\n`), incrementally over a buffer that grows as bytes
//! arrive.

use crate::limits::MAX_REQUEST_BYTES;

/// Bounds on a command, checked before anything is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandLimits {
    /// The most arguments one multibulk command may have (its array length).
    pub max_args: usize,
    /// The longest bulk string, in bytes.
    pub max_bulk_bytes: usize,
    /// The longest inline command line, in bytes, without its line ending.
    pub max_inline_bytes: usize,
}

impl Default for CommandLimits {
    /// 1 Mi arguments (Redis's limit for an unauthenticated client is the same order),
    /// a bulk string up to the native protocol's request limit, and 64 KiB inline lines
    /// (Redis's `PROTO_INLINE_MAX_SIZE`).
    fn default() -> Self {
        CommandLimits {
            max_args: 1 << 20,
            max_bulk_bytes: MAX_REQUEST_BYTES as usize,
            max_inline_bytes: 64 << 10,
        }
    }
}

/// What [`parse_command`] found at the start of the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole command: its arguments (the first is the command name) and how many
    /// bytes of the buffer it used.
    Command {
        /// The arguments, binary-safe.
        args: Vec<Vec<u8>>,
        /// Bytes consumed from the front of the buffer.
        used: usize,
    },
    /// An empty inline line (Redis ignores these): skip `used` bytes.
    Empty {
        /// Bytes consumed from the front of the buffer.
        used: usize,
    },
    /// The buffer holds only the start of a command: read more.
    Incomplete,
}

/// A request that breaks the protocol. Its `Display` is the text Redis sends after
/// `-ERR `; the connection is then closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProtocolError {
    /// The array length is not a number, or is over the limit.
    InvalidMultibulkLength,
    /// A bulk string's length is not a number, or is over the limit.
    InvalidBulkLength,
    /// Something other than `$` where a bulk string must start.
    ExpectedBulk(u8),
    /// A bulk string not followed by `\r\n`.
    MissingBulkTerminator,
    /// An inline line longer than the limit.
    InlineTooBig,
    /// An inline line with a quote that is never closed.
    UnbalancedQuotes,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::InvalidMultibulkLength => {
                write!(f, "Protocol error: invalid multibulk length")
            }
            ProtocolError::InvalidBulkLength => write!(f, "Protocol error: invalid bulk length"),
            ProtocolError::ExpectedBulk(b) => {
                write!(f, "Protocol error: expected '$', got '{}'", char::from(*b))
            }
            ProtocolError::MissingBulkTerminator => {
                write!(f, "Protocol error: a bulk string must end with CRLF")
            }
            ProtocolError::InlineTooBig => write!(f, "Protocol error: too big inline request"),
            ProtocolError::UnbalancedQuotes => {
                write!(f, "Protocol error: unbalanced quotes in request")
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Parses the first command in `buf`. Never panics and never allocates more than the
/// limits allow, whatever the bytes.
pub fn parse_command(buf: &[u8], limits: &CommandLimits) -> Result<Parsed, ProtocolError> {
    match buf.first() {
        None => Ok(Parsed::Incomplete),
        Some(b'*') => parse_multibulk(buf, limits),
        Some(_) => parse_inline(buf, limits),
    }
}

/// The line starting at `from`, without its `\r\n`, and the index after it; `None`
/// if the line is not complete yet.
fn line_at(buf: &[u8], from: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(from..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    Some((&rest[..end], from + end + 2))
}

/// A decimal length in `-1..=max` (as Redis reads them), or `None`.
fn parse_length(digits: &[u8], max: usize) -> Option<i64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let text = std::str::from_utf8(digits).ok()?;
    let n: i64 = text.parse().ok()?;
    (n >= -1 && (n < 0 || n as u64 <= max as u64)).then_some(n)
}

/// The longest `*N` or `$N` header line worth waiting for: a sign, 20 digits.
const MAX_HEADER_LINE: usize = 32;

fn parse_multibulk(buf: &[u8], limits: &CommandLimits) -> Result<Parsed, ProtocolError> {
    let Some((header, mut at)) = line_at(buf, 1) else {
        return incomplete_header(buf, 1, ProtocolError::InvalidMultibulkLength);
    };
    let count =
        parse_length(header, limits.max_args).ok_or(ProtocolError::InvalidMultibulkLength)?;
    if count <= 0 {
        // Redis treats `*0` and `*-1` as an empty request and skips it.
        return Ok(Parsed::Empty { used: at });
    }
    let count = count as usize;
    // No up-front allocation by the claimed count: arguments arrive one by one.
    let mut args = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        let Some(&first) = buf.get(at) else {
            return Ok(Parsed::Incomplete);
        };
        if first != b'$' {
            return Err(ProtocolError::ExpectedBulk(first));
        }
        let Some((len_digits, data_at)) = line_at(buf, at + 1) else {
            return incomplete_header(buf, at + 1, ProtocolError::InvalidBulkLength);
        };
        let len = parse_length(len_digits, limits.max_bulk_bytes)
            .filter(|&n| n >= 0)
            .ok_or(ProtocolError::InvalidBulkLength)? as usize;
        let end = data_at + len;
        let Some(terminator) = buf.get(end..end + 2) else {
            return Ok(Parsed::Incomplete);
        };
        if terminator != b"\r\n" {
            return Err(ProtocolError::MissingBulkTerminator);
        }
        args.push(buf[data_at..end].to_vec());
        at = end + 2;
    }
    Ok(Parsed::Command { args, used: at })
}

/// A header line with no `\r\n` yet: wait for more, unless it is already longer than
/// any valid header could be.
fn incomplete_header(
    buf: &[u8],
    from: usize,
    too_long: ProtocolError,
) -> Result<Parsed, ProtocolError> {
    if buf.len().saturating_sub(from) > MAX_HEADER_LINE {
        Err(too_long)
    } else {
        Ok(Parsed::Incomplete)
    }
}

fn parse_inline(buf: &[u8], limits: &CommandLimits) -> Result<Parsed, ProtocolError> {
    let Some(newline) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > limits.max_inline_bytes {
            return Err(ProtocolError::InlineTooBig);
        }
        return Ok(Parsed::Incomplete);
    };
    let mut line = &buf[..newline];
    if line.len() > limits.max_inline_bytes {
        return Err(ProtocolError::InlineTooBig);
    }
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    let args = split_inline(line)?;
    let used = newline + 1;
    if args.is_empty() {
        return Ok(Parsed::Empty { used });
    }
    Ok(Parsed::Command { args, used })
}

/// Splits an inline line into arguments: runs of non-blank bytes, or quoted strings
/// (`"..."` with `\"`, `\\`, `\n`, `\r`, `\t` and `\xHH` escapes; `'...'` with `\'`),
/// as redis-cli and Redis's own inline reader accept them.
fn split_inline(line: &[u8]) -> Result<Vec<Vec<u8>>, ProtocolError> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < line.len() {
        if line[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let (arg, next) = match line[i] {
            b'"' => double_quoted(line, i + 1)?,
            b'\'' => single_quoted(line, i + 1)?,
            _ => {
                let end = (i..line.len())
                    .find(|&j| line[j].is_ascii_whitespace())
                    .unwrap_or(line.len());
                (line[i..end].to_vec(), end)
            }
        };
        args.push(arg);
        i = next;
    }
    Ok(args)
}

/// A closing quote must be followed by a blank or the end of the line.
fn after_quote(line: &[u8], at: usize) -> Result<usize, ProtocolError> {
    match line.get(at) {
        None => Ok(at),
        Some(b) if b.is_ascii_whitespace() => Ok(at),
        Some(_) => Err(ProtocolError::UnbalancedQuotes),
    }
}

fn double_quoted(line: &[u8], mut i: usize) -> Result<(Vec<u8>, usize), ProtocolError> {
    let mut out = Vec::new();
    loop {
        match line.get(i) {
            None => return Err(ProtocolError::UnbalancedQuotes),
            Some(b'"') => return Ok((out, after_quote(line, i + 1)?)),
            Some(b'\\') => {
                let (byte, used) = escape(&line[i + 1..]);
                out.push(byte);
                i += 1 + used;
            }
            Some(&b) => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// The byte an escape after a backslash stands for, and how many bytes it used.
fn escape(rest: &[u8]) -> (u8, usize) {
    let hex = |b: u8| char::from(b).to_digit(16);
    match rest {
        [b'x', h, l, ..] if hex(*h).is_some() && hex(*l).is_some() => {
            let value = hex(*h).unwrap_or(0) * 16 + hex(*l).unwrap_or(0);
            (value as u8, 3)
        }
        [b'n', ..] => (b'\n', 1),
        [b'r', ..] => (b'\r', 1),
        [b't', ..] => (b'\t', 1),
        [b'b', ..] => (8, 1),
        [b'a', ..] => (7, 1),
        [other, ..] => (*other, 1),
        // A backslash at the very end: the quote is unbalanced; keep it literally
        // and let the missing quote report the error.
        [] => (b'\\', 0),
    }
}

fn single_quoted(line: &[u8], mut i: usize) -> Result<(Vec<u8>, usize), ProtocolError> {
    let mut out = Vec::new();
    loop {
        match line.get(i) {
            None => return Err(ProtocolError::UnbalancedQuotes),
            Some(b'\'') => return Ok((out, after_quote(line, i + 1)?)),
            Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                out.push(b'\'');
                i += 2;
            }
            Some(&b) => {
                out.push(b);
                i += 1;
            }
        }
    }
}
