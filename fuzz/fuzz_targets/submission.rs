//! Inbox submissions (`POST /v1/inbox`, the inbox directory): arbitrary bytes through age
//! decryption and the one-line JSON envelope parser never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tresor::fuzzing::submission(data);
});
