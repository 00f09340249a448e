//! A WAL segment recovered at start (scan, torn tails, truncation).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| raftkv::fuzzing::wal(data));
