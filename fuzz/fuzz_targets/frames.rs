//! Frames of peer messages read one after another, as a peer connection does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| raftkv::fuzzing::frames(data));
