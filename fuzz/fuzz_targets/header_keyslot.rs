//! The plaintext layouts a hostile file controls: the header and the keyslots. Decoding never
//! panics, anything that decodes re-encodes to the same bytes, and KDF parameters that decode
//! are range-checked without panicking (a slot must not be able to ask for 4 TiB).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tresor::testing::{HEADER_LEN, Header, KeyslotRecord, SLOT_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::decode(data) {
        assert_eq!(data.len(), HEADER_LEN);
        assert_eq!(&h.encode()[..], data);
    }
    let id = data.first().copied().map_or(0, u32::from);
    if let Ok(slot) = KeyslotRecord::decode(data, id) {
        assert_eq!(data.len(), SLOT_LEN);
        assert_eq!(&slot.encode()[..], data);
        if let Some(p) = slot.kdf {
            let strict = p.check(false);
            let lax = p.check(true);
            // The floor only ever narrows what is accepted.
            assert!(strict.is_err() || lax.is_ok());
        }
        // An arbitrary slot never unwraps under a key the fuzzer cannot know.
        let kek = tresor::testing::Key::from_bytes([0x42; 32]);
        assert!(
            slot.unwrap_key(&kek, &data[..data.len().min(28)], id)
                .is_none()
        );
    }
});
