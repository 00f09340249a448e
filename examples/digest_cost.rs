//! The cost of the state digest per write: nanoseconds per `KvStore::apply` of a put
//! (16-byte keys, 100-byte values, as `raftkv bench put`), and nanoseconds per digest
//! update alone (what a put that overwrites a key adds: the new pair's hash added, the
//! old pair's subtracted).
//!
//! ```text
//! cargo run --release --example digest_cost [APPLIES] [KEYS]
//! ```
//!
//! APPLIES (default 200,000) puts are applied per round, over KEYS (default 1000, the
//! bench's `--keys` default: nearly every put overwrites) distinct keys; the payloads
//! are encoded before the clock starts, so decoding is timed but encoding is not. Seven
//! rounds; the minimum and the median are printed (the minimum is the least disturbed
//! by other processes). Not a test: it asserts nothing.

use std::hint::black_box;
use std::time::Instant;

use raftkv::kv::{encode_request, Command, KvStore, Request, StateDigest};

const KEY_BYTES: usize = 16;
const VALUE_BYTES: usize = 100;
const ROUNDS: usize = 7;

fn main() {
    let mut args = std::env::args().skip(1);
    let applies: usize = parse_arg(args.next(), 200_000);
    let keys: usize = parse_arg(args.next(), 1000).max(1);
    let pairs: Vec<(String, String)> = (0..applies).map(|i| (key(i % keys), value(i))).collect();
    let payloads: Vec<Vec<u8>> = pairs
        .iter()
        .zip(1u64..)
        .map(|((key, value), seq)| {
            encode_request(&Request {
                client_id: 1,
                seq,
                command: Command::Put {
                    key: key.clone(),
                    value: value.clone(),
                },
            })
        })
        .collect();

    let apply = rounds(|| {
        let mut kv = KvStore::new();
        let started = Instant::now();
        for (index, payload) in (1u64..).zip(&payloads) {
            let _ = black_box(kv.apply(index, payload));
        }
        started.elapsed().as_nanos() as f64 / applies as f64
    });
    let update = rounds(|| {
        let mut digest = StateDigest::default();
        let started = Instant::now();
        for (i, (key, value)) in pairs.iter().enumerate() {
            // An overwrite: the old value (the previous pair's, same length) goes out.
            let old = &pairs[i.saturating_sub(1)].1;
            digest.add(black_box(key.as_bytes()), black_box(value.as_bytes()));
            digest.remove(black_box(key.as_bytes()), black_box(old.as_bytes()));
        }
        black_box(digest);
        started.elapsed().as_nanos() as f64 / applies as f64
    });
    println!(
        "{applies} puts of {KEY_BYTES}-byte keys and {VALUE_BYTES}-byte values over {keys} keys, \
         {ROUNDS} rounds (min / median ns):"
    );
    println!(
        "  KvStore::apply of a put     {:>7.1} / {:>7.1} ns",
        apply.0, apply.1
    );
    println!(
        "  digest update (add+remove)  {:>7.1} / {:>7.1} ns",
        update.0, update.1
    );
}

/// Runs `round` [`ROUNDS`] times; the minimum and the median of what it returns.
fn rounds(mut round: impl FnMut() -> f64) -> (f64, f64) {
    let mut ns: Vec<f64> = (0..ROUNDS).map(|_| round()).collect();
    ns.sort_by(f64::total_cmp);
    (ns[0], ns[ROUNDS / 2])
}

fn parse_arg(arg: Option<String>, default: usize) -> usize {
    match arg.map(|a| a.parse()) {
        None => default,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("digest_cost: arguments are APPLIES and KEYS, whole numbers: {e}");
            std::process::exit(2);
        }
    }
}

/// Key `i`, zero-padded to [`KEY_BYTES`].
fn key(i: usize) -> String {
    format!("{i:0width$}", width = KEY_BYTES)
}

/// A value of [`VALUE_BYTES`] that differs from put to put.
fn value(i: usize) -> String {
    let digit = char::from(b'a' + (i % 26) as u8);
    let mut value = format!("{i:016}");
    value.extend(std::iter::repeat_n(digit, VALUE_BYTES - value.len()));
    value
}
