//! WAL records with correct checksums recovered at start (entry decoding, index
//! order, torn tails): see `raftkv::fuzzing::wal_records`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| raftkv::fuzzing::wal_records(data));
