//! Entry points for the fuzz targets in `fuzz/` (feature `test-util`): every parser a user or
//! a client feeds, reached without making the modules that hold them public. Each function
//! parses and throws the result away; a panic or a hang is the bug the fuzzer looks for.
//! Not an API: hidden from the documentation and free to change.

/// A duration as `--idle-lock` and `expires` take it (`90s`, `15m`, `1h30m`).
pub fn duration(text: &str) -> bool {
    crate::types::parse_duration(text).is_ok()
}

/// A `tresor://` reference.
pub fn value_ref(text: &str) -> bool {
    crate::types::ValueRef::parse(text).is_ok()
}

/// A request body of operation number `which` (in the order of [`crate::ops::ROUTES`]'
/// operations), as the daemon decodes it: JSON, or the query string for a GET or DELETE.
#[cfg(feature = "daemon")]
pub fn api_request(which: u8, data: &[u8]) -> bool {
    macro_rules! decoders {
        ($($op:ty),*) => {
            const DECODERS: &[fn(&[u8]) -> bool] = &[$(decode::<$op>),*];
        };
    }
    crate::ops::operations!(decoders);
    DECODERS[usize::from(which) % DECODERS.len()](data)
}

#[cfg(feature = "daemon")]
fn decode<O: crate::ops::Operation>(data: &[u8]) -> bool {
    if O::METHOD.has_body() {
        return serde_json::from_slice::<O>(data).is_ok();
    }
    let Ok(query) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(uri) = format!("/?{query}").parse::<axum::http::Uri>() else {
        return false;
    };
    axum::extract::Query::<O>::try_from_uri(&uri).is_ok()
}

/// A `tresor.toml` manifest (`tresor apply`).
#[cfg(feature = "cli")]
pub fn manifest(text: &str) -> bool {
    crate::cli::parsers::manifest(
        text,
        "fuzz.toml".into(),
        std::path::Path::new("/nonexistent"),
    )
    .is_ok()
}

/// A dotenv file (`tresor import`), which may hold `tresor://` references.
#[cfg(feature = "cli")]
pub fn dotenv(text: &str) -> bool {
    let Ok(entries) = crate::cli::parsers::dotenv("fuzz.env", text) else {
        return false;
    };
    for e in &entries {
        let _ = crate::cli::parsers::valid_key(&e.key);
        if let Some(text) = e
            .value
            .as_str()
            .filter(|t| t.starts_with(crate::types::SCHEME))
        {
            let _ = crate::types::ValueRef::parse(text);
        }
    }
    true
}

/// A template (`tresor inject`).
#[cfg(feature = "cli")]
pub fn template(data: &[u8]) -> bool {
    crate::cli::parsers::template("fuzz.tpl", data).is_ok()
}

/// A requirements file (`tresor check --file`).
#[cfg(feature = "cli")]
pub fn requirements(text: &str) -> crate::Result<usize> {
    crate::cli::parsers::requirements("fuzz.toml", text).map(|r| r.len())
}

/// An integrations file (`tresor report integrations`).
#[cfg(feature = "cli")]
pub fn integrations(text: &str) -> crate::Result<usize> {
    crate::cli::parsers::integrations("fuzz.toml", text).map(|r| r.len())
}

/// A fixed store identity for the air-gap targets (made once per process).
fn fuzz_identity() -> &'static crate::crypto::identity::StoreIdentity {
    static ID: std::sync::OnceLock<crate::crypto::identity::StoreIdentity> =
        std::sync::OnceLock::new();
    ID.get_or_init(|| {
        crate::crypto::identity::StoreIdentity::generate().expect("the OS has randomness")
    })
}

/// A sealed bundle as `bundle apply` reads it: age decryption of the file, then (for the
/// plaintext layout) the signed layout, the signature check and the postcard payload.
pub fn bundle(data: &[u8]) -> bool {
    use crate::format::bundle::{SignedBundle, bundle_message, decode_bundle_payload};
    let _ = fuzz_identity().decrypt("bundle", data, 1 << 20);
    let Ok(layout) = SignedBundle::decode(data) else {
        return false;
    };
    let signed = crate::crypto::identity::verify(
        &layout.signer,
        &bundle_message(&layout.signer, layout.payload),
        &layout.signature,
    );
    decode_bundle_payload(layout.payload).is_ok() && signed
}

/// An inbox submission: age decryption of the file, and the JSON envelope parser.
pub fn submission(data: &[u8]) -> bool {
    let _ = fuzz_identity().decrypt("inbox", data, crate::format::bundle::SUBMISSION_MAX);
    crate::format::bundle::parse_submission(data).is_ok()
}
