//! Templates (`tresor inject`): `{{ tresor://... }}` placeholders in arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tresor::fuzzing::template(data);
});
