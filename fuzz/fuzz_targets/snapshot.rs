//! A state machine snapshot, and a snapshot file recovered at start.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| raftkv::fuzzing::snapshot(data));
