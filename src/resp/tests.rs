//! Tests of the RESP codec: known requests and replies, every error, and properties
//! over arbitrary bytes (no panic, round trips, prefixes are incomplete).

use proptest::prelude::*;

use super::*;

fn limits() -> CommandLimits {
    CommandLimits::default()
}

/// The multibulk encoding of `args`, as every Redis client sends a command.
fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn command(buf: &[u8]) -> (Vec<Vec<u8>>, usize) {
    match parse_command(buf, &limits()) {
        Ok(Parsed::Command { args, used }) => (args, used),
        other => panic!("expected a command from {buf:?}, got {other:?}"),
    }
}

fn strings(args: &[Vec<u8>]) -> Vec<&str> {
    args.iter()
        .map(|a| std::str::from_utf8(a).unwrap())
        .collect()
}

#[test]
fn a_multibulk_command_is_parsed_and_its_length_reported() {
    let mut buf = multibulk(&[b"SET", b"k", b"v\r\nwith a line break"]);
    let first_len = buf.len();
    buf.extend_from_slice(&multibulk(&[b"GET", b"k"]));
    let (args, used) = command(&buf);
    assert_eq!(used, first_len);
    assert_eq!(args[2], b"v\r\nwith a line break");
    let (args, used) = command(&buf[first_len..]);
    assert_eq!(strings(&args), ["GET", "k"]);
    assert_eq!(first_len + used, buf.len());
}

#[test]
fn inline_commands_split_on_blanks_and_honour_quotes() {
    let (args, used) = command(b"PING\r\n");
    assert_eq!((strings(&args), used), (vec!["PING"], 6));
    let (args, _) = command(b"set  key \"a b\\x41\\n\" 'it\\'s'\n");
    assert_eq!(
        args,
        [
            b"set".to_vec(),
            b"key".to_vec(),
            b"a bA\n".to_vec(),
            b"it's".to_vec()
        ]
    );
    assert_eq!(
        parse_command(b"\r\n", &limits()),
        Ok(Parsed::Empty { used: 2 })
    );
    assert_eq!(
        parse_command(b"*0\r\n", &limits()),
        Ok(Parsed::Empty { used: 4 })
    );
}

#[test]
fn each_malformed_request_has_the_error_redis_gives() {
    let l = limits();
    let cases: [(&[u8], ProtocolError); 7] = [
        (b"*x\r\n", ProtocolError::InvalidMultibulkLength),
        (b"*2000000\r\n", ProtocolError::InvalidMultibulkLength),
        (b"*1\r\n:1\r\n", ProtocolError::ExpectedBulk(b':')),
        (b"*1\r\n$-1\r\n", ProtocolError::InvalidBulkLength),
        (b"*1\r\n$99999999999\r\n", ProtocolError::InvalidBulkLength),
        (b"*1\r\n$1\r\nab\r\n", ProtocolError::MissingBulkTerminator),
        (b"GET \"k\n", ProtocolError::UnbalancedQuotes),
    ];
    for (bytes, want) in cases {
        assert_eq!(parse_command(bytes, &l), Err(want), "{bytes:?}");
    }
    assert_eq!(
        ProtocolError::ExpectedBulk(b':').to_string(),
        "Protocol error: expected '$', got ':'"
    );
}

#[test]
fn oversized_lines_are_refused_before_their_end_arrives() {
    let small = CommandLimits {
        max_args: 4,
        max_bulk_bytes: 8,
        max_inline_bytes: 16,
    };
    let no_newline = vec![b'a'; 17];
    assert_eq!(
        parse_command(&no_newline, &small),
        Err(ProtocolError::InlineTooBig)
    );
    assert_eq!(
        parse_command(&no_newline[..16], &small),
        Ok(Parsed::Incomplete)
    );
    let endless_header = [b"*".as_slice(), &[b'1'; 40]].concat();
    assert_eq!(
        parse_command(&endless_header, &small),
        Err(ProtocolError::InvalidMultibulkLength)
    );
    assert_eq!(
        parse_command(b"*5\r\n", &small),
        Err(ProtocolError::InvalidMultibulkLength)
    );
    assert_eq!(
        parse_command(b"*1\r\n$9\r\n", &small),
        Err(ProtocolError::InvalidBulkLength)
    );
}

#[test]
fn replies_encode_as_redis_sends_them() {
    let reply = Reply::Array(Some(vec![
        Reply::ok(),
        Reply::error("ERR bad\r\nthing"),
        Reply::Integer(-3),
        Reply::bulk(b"x".to_vec()),
        Reply::nil(),
        Reply::Array(None),
    ]));
    assert_eq!(
        reply.to_bytes(),
        b"*6\r\n+OK\r\n-ERR bad  thing\r\n:-3\r\n$1\r\nx\r\n$-1\r\n*-1\r\n"
    );
}

#[test]
fn reply_parsing_bounds_nesting() {
    let mut deep = Reply::Integer(1);
    for _ in 0..=MAX_REPLY_DEPTH {
        deep = Reply::Array(Some(vec![deep]));
    }
    let err = parse_reply(&deep.to_bytes(), 64, 64).unwrap_err();
    assert!(err.contains("nested"), "{err}");
}

fn arg() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..40)
}

fn reply() -> impl Strategy<Value = Reply> {
    let text = "[a-zA-Z0-9 ]{0,20}";
    let leaf = prop_oneof![
        text.prop_map(Reply::Simple),
        text.prop_map(Reply::Error),
        any::<i64>().prop_map(Reply::Integer),
        proptest::option::of(arg()).prop_map(Reply::Bulk),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        proptest::option::of(proptest::collection::vec(inner, 0..4)).prop_map(Reply::Array)
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_command(&bytes, &limits());
        let _ = parse_reply(&bytes, 1 << 20, 1 << 10);
    }

    #[test]
    fn a_multibulk_command_round_trips_and_every_prefix_waits(
        args in proptest::collection::vec(arg(), 1..6)
    ) {
        let refs: Vec<&[u8]> = args.iter().map(|a| a.as_slice()).collect();
        let bytes = multibulk(&refs);
        let parsed = parse_command(&bytes, &limits());
        prop_assert_eq!(parsed, Ok(Parsed::Command { args: args.clone(), used: bytes.len() }));
        for cut in 0..bytes.len() {
            prop_assert_eq!(parse_command(&bytes[..cut], &limits()), Ok(Parsed::Incomplete));
        }
    }

    #[test]
    fn a_reply_round_trips(reply in reply()) {
        let bytes = reply.to_bytes();
        prop_assert_eq!(parse_reply(&bytes, 1 << 20, 1 << 10), Ok(Some((reply, bytes.len()))));
        for cut in 0..bytes.len() {
            prop_assert_eq!(parse_reply(&bytes[..cut], 1 << 20, 1 << 10), Ok(None));
        }
    }
}
