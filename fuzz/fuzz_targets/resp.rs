//! Redis-protocol commands read one after another, as a RESP connection does, and
//! replies as a RESP client reads them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| raftkv::fuzzing::resp(data));
