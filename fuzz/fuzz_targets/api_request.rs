//! API request bodies and query strings: the first byte picks the operation (in
//! `operations!` order), the rest is its JSON body or query string.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((&which, rest)) = data.split_first() {
        let _ = tresor::fuzzing::api_request(which, rest);
    }
});
