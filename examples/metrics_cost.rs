//! What recording a metric costs: ns per `Counter::inc` and per `Histogram::observe`
//! over 10M calls, on one thread and with two threads contending on the same metric.
//! Run: `cargo run --release --example metrics_cost`.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use raftkv::metrics::{Counter, Histogram, REQUEST_BUCKETS};

const CALLS: u64 = 10_000_000;

/// Runs `op` CALLS times on each of `threads` threads; ns per call on one thread.
fn time(threads: usize, op: &(dyn Fn(u64) + Sync)) -> f64 {
    let started = Instant::now();
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for i in 0..CALLS {
                    op(black_box(i));
                }
            });
        }
    });
    started.elapsed().as_nanos() as f64 / CALLS as f64
}

fn main() {
    let counter = Counter::default();
    let histogram = Histogram::new(REQUEST_BUCKETS);
    for threads in [1, 2] {
        let inc = time(threads, &|_| counter.inc());
        let observe = time(threads, &|i| {
            histogram.observe(Duration::from_micros(100 + i % 5000))
        });
        println!(
            "{threads} thread(s): Counter::inc {inc:.1} ns/call, Histogram::observe {observe:.1} ns/call"
        );
    }
    black_box((counter.get(), histogram.count()));
}
