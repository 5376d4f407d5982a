//! Nothing a user writes is readable in the file without the key (SPEC §4.1): not a name, a
//! value, a field, a description, a label, an integration tag, a principal, a team or a grant.
#![allow(clippy::unwrap_used, clippy::too_many_lines)] // one fixture, checked end to end

mod common;

use std::collections::BTreeMap;

use common::{TestStore, owner, value};
use tresor::{Grant, PrincipalSpec, Role, Scope, SecretBytes, SecretType, SetRequest};

/// Finds `needle` in `hay`; the error names what leaked, never a value's bytes beyond the
/// test's own marker strings.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_file_holds_no_plaintext() {
    let (t, store) = TestStore::create();
    // Every marker is long and odd enough not to occur by chance in ciphertext.
    let mut written: Vec<String> = Vec::new();
    let mut mark = |s: &str| {
        written.push(s.to_owned());
        s.to_owned()
    };
    let team = mark("zqteam-platform-7731");
    let agent = mark("zqagent-deploy-bot-4410");
    let member = mark("zqmember-alice-9120");
    for i in 0..20 {
        let name = mark(&format!("zqname-github-pat-{i:02}"));
        let val = mark(&format!("zqvalue-ghp_{i:02}_Xa9sLq2"));
        let fields: BTreeMap<String, SecretBytes> = [(
            mark(&format!("zqfield-user{i:02}")),
            SecretBytes::from(mark(&format!("zqfieldvalue-{i:02}-pw")).as_str()),
        )]
        .into();
        let meta: BTreeMap<String, String> = [(
            mark(&format!("zqlabel-key-{i:02}")),
            mark(&format!("zqlabel-value-{i:02}")),
        )]
        .into();
        let req = SetRequest {
            scope: if i % 3 == 0 {
                Scope::Team(team.clone())
            } else {
                Scope::Org
            },
            secret_type: Some(SecretType::Credentials),
            description: Some(mark(&format!("zqdescription for secret {i:02}"))),
            integration: Some(mark(&format!("zqintegration-{i:02}"))),
            meta,
            fields,
            ..value(val.as_str())
        };
        store.set(&owner(), &name, req).unwrap();
        // Each read and write also leaves an audit record naming the secret.
        store
            .get_value(
                &owner(),
                &name,
                Some(&if i % 3 == 0 {
                    Scope::Team(team.clone())
                } else {
                    Scope::Org
                }),
                None,
            )
            .unwrap();
    }
    // Bulk import, a second version, and a deleted secret.
    let items: Vec<(String, SetRequest)> = (0..10)
        .map(|i| {
            (
                mark(&format!("zqimported-{i:02}")),
                value(mark(&format!("zqimportvalue-{i:02}-k")).as_str()),
            )
        })
        .collect();
    store.set_many(&owner(), items).unwrap();
    store
        .set(
            &owner(),
            "zqname-github-pat-01",
            value(mark("zqsecondversion-v2")),
        )
        .unwrap();
    let doomed = mark("zqdeleted-secret-name");
    store
        .set(&owner(), &doomed, value(mark("zqdeleted-value-xx")))
        .unwrap();
    store.delete(&owner(), &doomed, None, true).unwrap();
    // Binary values (searched for as bytes).
    let binary = vec![0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0xc0, 0xde, 0x42, 0x99];
    store
        .set(&owner(), "zqname-binary", value(binary.clone()))
        .unwrap();

    // Principals, a team with members, a grant.
    for (name, role, uid) in [(&agent, Role::Agent, 4410), (&member, Role::Member, 9120)] {
        store
            .principal_add(
                &owner(),
                &PrincipalSpec {
                    name: name.clone(),
                    role,
                    uid: Some(uid),
                    gid: None,
                    token: true,
                },
            )
            .unwrap();
    }
    store.team_add(&owner(), &team).unwrap();
    store.team_join(&owner(), &team, &member).unwrap();
    let pattern = mark("zqgrant-pattern-*");
    store
        .grant(
            &owner(),
            &agent,
            &Grant {
                pattern,
                scope: None,
                expires: None,
            },
        )
        .unwrap();
    drop(store);

    // Both the file as written and after compaction.
    let live = std::fs::read(&t.path).unwrap();
    let mut store = t.unlock();
    store.compact().unwrap();
    drop(store);
    let mut bytes = std::fs::read(&t.path).unwrap();
    assert!(bytes.len() > 4096);
    bytes.extend_from_slice(&live);
    let mut leaked: Vec<&str> = written
        .iter()
        .filter(|w| contains(&bytes, w.as_bytes()))
        .map(String::as_str)
        .collect();
    if contains(&bytes, &binary) {
        leaked.push("<binary value>");
    }
    assert!(leaked.is_empty(), "readable in the file: {leaked:?}");
    // The test would notice a leak: the header magic is there in the clear.
    assert!(contains(&bytes, b"TRESORDB"));
}
