//! Sealed bundles (`tresor bundle apply`): arbitrary bytes through age decryption, the signed
//! layout, the signature check and the postcard payload never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tresor::fuzzing::bundle(data);
});
