//! Tests of the metrics: histograms, the text format, and the HTTP responder.

use std::io::{self, Cursor, Read, Write};
use std::time::Duration;

use super::http::{answer, Response, MAX_HEAD_BYTES, PROMETHEUS_TEXT};
use super::*;

#[test]
fn a_histogram_counts_each_observation_in_one_bucket_and_renders_cumulatively() {
    let h = Histogram::new(DISK_BUCKETS);
    h.observe(Duration::from_micros(300));
    h.observe(Duration::from_micros(900));
    h.observe(Duration::from_secs(60));
    let (rows, count, sum) = h.snapshot();
    assert_eq!(rows[0], (0.0005, 1));
    assert_eq!(rows[1], (0.001, 2));
    assert_eq!(
        rows.last().map(|r| r.1),
        Some(2),
        "60 s is past the last bucket"
    );
    assert_eq!(count, 3);
    assert!((sum - 60.0012).abs() < 1e-9, "{sum}");
}

#[test]
fn peers_beyond_the_table_share_one_slot_and_a_peer_keeps_its_slot() {
    let m = Metrics::default();
    m.peer(7).sent_bytes.add(10);
    m.peer(7).sent_bytes.add(5);
    assert_eq!(m.peer(7).sent_bytes.get(), 15);
    for id in 100..200 {
        m.peer(id).received_bytes.inc();
    }
    let shared = m.peer(10_000).received_bytes.get();
    assert_eq!(shared, 100 - (registry_slots() as u64 - 1));
}

fn registry_slots() -> usize {
    let m = Metrics::default();
    (1..)
        .take_while(|&id| m.peer(id).peer_id() == Some(id))
        .count()
}

#[test]
fn the_text_format_has_one_type_line_per_family_and_every_sample_named_for_it() {
    let m = Metrics::default();
    m.client_request(ClientOp::Put, ClientResult::Ok, Duration::from_millis(2));
    m.peer(2).sent_bytes.add(123);
    m.wal_fsync.observe(Duration::from_millis(1));
    let text = render(
        &m,
        &Gauges {
            has_leader: true,
            kv_keys: 9,
            ..Gauges::default()
        },
    );
    let mut families = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(!families.contains(&name), "two TYPE lines for {name}");
            families.push(name);
        } else if !line.starts_with('#') {
            let sample = line.split(['{', ' ']).next().unwrap();
            let family = families.last().expect("a sample before any TYPE line");
            assert!(
                sample.starts_with(family.as_str()),
                "{sample} under {family}"
            );
        }
    }
    assert!(text.contains("raftkv_server_has_leader 1\n"));
    assert!(text.contains("raftkv_kv_keys 9\n"));
    assert!(text.contains("raftkv_network_peer_sent_bytes_total{to=\"2\"} 123\n"));
    assert!(text.contains("raftkv_client_requests_total{op=\"put\",result=\"ok\"} 1\n"));
    assert!(text.contains("raftkv_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
    assert!(text.contains("raftkv_client_request_duration_seconds_count{op=\"put\"} 1\n"));
}

/// A request followed by what the responder wrote back.
struct Exchange {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Exchange {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Exchange {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn exchange(request: &[u8]) -> (io::Result<()>, String) {
    let mut s = Exchange {
        input: Cursor::new(request.to_vec()),
        output: Vec::new(),
    };
    let result = answer(&mut s, |path| match path {
        "/metrics" => Some(Response {
            status: 200,
            content_type: PROMETHEUS_TEXT,
            body: "m 1\n".into(),
        }),
        _ => None,
    });
    (result, String::from_utf8_lossy(&s.output).into_owned())
}

#[test]
fn the_responder_answers_each_kind_of_request() {
    let (ok, out) = exchange(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(ok.is_ok());
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(
        out.contains("Content-Length: 4\r\n") && out.ends_with("\r\n\r\nm 1\n"),
        "{out}"
    );
    assert!(exchange(b"GET /nope HTTP/1.1\r\n\r\n")
        .1
        .starts_with("HTTP/1.1 404"));
    assert!(exchange(b"POST /metrics HTTP/1.1\r\n\r\n")
        .1
        .starts_with("HTTP/1.1 405"));
    assert!(exchange(b"hello\r\n\r\n").1.starts_with("HTTP/1.1 400"));
    let huge = [
        b"GET /metrics HTTP/1.1\r\nX: ".as_slice(),
        &vec![b'a'; MAX_HEAD_BYTES],
    ]
    .concat();
    assert!(exchange(&huge).1.starts_with("HTTP/1.1 431"));
    let (cut, out) = exchange(b"GET /metrics HTTP/1.1\r\n");
    assert!(
        cut.is_err() && out.is_empty(),
        "a cut request is not answered"
    );
}
