//! What goes in comes out: every field of a secret, binary values, versions and their
//! pruning, rollback, delete, metadata-only updates, and name validation.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{Table, TestStore, owner, read, rows, value};
use tresor::{Error, ReadRequest, Scope, SecretBytes, SecretType, SetRequest, Store, VersionInfo};

fn versions(store: &Store, name: &str) -> Vec<u64> {
    store
        .versions(&owner(), name, None)
        .unwrap()
        .iter()
        .map(|v: &VersionInfo| v.version)
        .collect()
}

#[test]
fn every_type_round_trips() {
    let (_t, store) = TestStore::create();
    for ty in SecretType::ALL {
        let name = format!("typed-{ty}");
        let req = SetRequest {
            secret_type: Some(ty),
            ..value(format!("value of {ty}"))
        };
        store.set(&owner(), &name, req).unwrap();
        let meta = store.show(&owner(), &name, None).unwrap();
        assert_eq!(meta.secret_type, ty);
        let v = store.get_value(&owner(), &name, None, None).unwrap();
        assert_eq!(v.secret_type, ty);
        assert_eq!(v.value.expose(), format!("value of {ty}").as_bytes());
    }
}

#[test]
fn metadata_fields_round_trip_and_survive_reopen() {
    let (t, store) = TestStore::create();
    let meta: BTreeMap<String, String> = [("env", "prod"), ("owner", "platform team")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let req = SetRequest {
        secret_type: Some(SecretType::Token),
        description: Some("GitHub PAT for the deploy bot".into()),
        integration: Some("github".into()),
        meta: meta.clone(),
        max_age_days: Some(60),
        max_versions: Some(4),
        ..value("ghp_x")
    };
    store.set(&owner(), "github-pat", req).unwrap();
    drop(store);
    let store = t.unlock();
    let m = store.show(&owner(), "github-pat", None).unwrap();
    assert_eq!(m.name, "github-pat");
    assert_eq!(m.scope, Scope::Org);
    assert_eq!(m.secret_type, SecretType::Token);
    assert_eq!(
        m.description.as_deref(),
        Some("GitHub PAT for the deploy bot")
    );
    assert_eq!(m.integration.as_deref(), Some("github"));
    assert_eq!(m.meta, meta);
    assert_eq!(m.max_age_days, Some(60));
    assert_eq!(m.max_versions, 4);
    assert_eq!(m.version, 1);
    assert_eq!(m.created_by, owner().principal);
    assert_eq!(m.updated_by, owner().principal);
    assert_eq!(m.created_at, m.updated_at);
    assert!(m.last_used.is_none(), "never read yet");
    assert_eq!(m.versions.len(), 1);
    assert_eq!(m.versions[0].size, 5);
}

#[test]
fn scopes_are_separate_and_lookup_prefers_user_then_org() {
    let (_t, store) = TestStore::create();
    let me = Scope::User(owner().principal);
    let team = Scope::Team("ops".into());
    for (scope, v) in [
        (Scope::Org, "org value"),
        (team.clone(), "team value"),
        (me.clone(), "my value"),
    ] {
        let req = SetRequest { scope, ..value(v) };
        store.set(&owner(), "db-password", req).unwrap();
    }
    let get = |scope: Option<&Scope>| {
        store
            .get_value(&owner(), "db-password", scope, None)
            .unwrap()
            .value
            .expose()
            .to_vec()
    };
    assert_eq!(get(Some(&Scope::Org)), b"org value");
    assert_eq!(get(Some(&team)), b"team value");
    assert_eq!(get(Some(&me)), b"my value");
    // No scope: user:<caller> first (the owner is in no team).
    assert_eq!(get(None), b"my value");
    store
        .delete(&owner(), "db-password", Some(&me), false)
        .unwrap();
    assert_eq!(get(None), b"org value");
    assert_eq!(
        store
            .list(&owner(), &tresor::ListFilter::default())
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn fields_and_binary_values_round_trip() {
    let (_t, store) = TestStore::create();
    let binary: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    let fields: BTreeMap<String, SecretBytes> = [
        ("username", b"svc-deploy".to_vec()),
        ("password", vec![0, 159, 146, 150, 255]),
        ("client_id", b"abc.def".to_vec()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), SecretBytes::new(v)))
    .collect();
    let req = SetRequest {
        secret_type: Some(SecretType::Credentials),
        fields: fields.clone(),
        ..value(binary.clone())
    };
    store.set(&owner(), "svc/deploy", req).unwrap();
    let v = store.get_value(&owner(), "svc/deploy", None, None).unwrap();
    assert_eq!(v.value.expose(), binary.as_slice());
    assert_eq!(v.fields, fields);
    assert_eq!(
        store.show(&owner(), "svc/deploy", None).unwrap().fields,
        vec!["client_id", "password", "username"]
    );

    // NAME#field reads one field as the value.
    let one = store.read_batch(&[ReadRequest {
        actor: owner(),
        name: "svc/deploy".into(),
        scope: None,
        version: None,
        field: Some("password".into()),
    }]);
    let one = one.into_iter().next().unwrap().unwrap();
    assert_eq!(one.value.expose(), &[0, 159, 146, 150, 255]);
    assert!(
        one.fields.is_empty(),
        "a field read returns that field only"
    );

    // Fields only, no value.
    let req = SetRequest {
        fields: [("token".to_owned(), SecretBytes::from("t0k"))].into(),
        value: None,
        ..SetRequest::default()
    };
    store.set(&owner(), "fields-only", req).unwrap();
    let v = store
        .get_value(&owner(), "fields-only", None, None)
        .unwrap();
    assert!(v.value.is_empty());
    assert_eq!(v.fields["token"].expose(), b"t0k");
}

#[test]
fn missing_field_is_not_found() {
    let (_t, store) = TestStore::create();
    store.set(&owner(), "x", value("v")).unwrap();
    let r = store.read_batch(&[ReadRequest {
        actor: owner(),
        name: "x".into(),
        scope: None,
        version: None,
        field: Some("nope".into()),
    }]);
    assert!(matches!(
        r.into_iter().next().unwrap(),
        Err(Error::NotFound { what: "field", .. })
    ));
}

#[test]
fn versions_are_kept_up_to_max_versions_and_pruned_rows_are_gone() {
    let (t, store) = TestStore::create();
    let first = SetRequest {
        max_versions: Some(3),
        ..value("v1")
    };
    store.set(&owner(), "rotating", first).unwrap();
    for i in 2..=5 {
        store
            .set(&owner(), "rotating", value(format!("v{i}")))
            .unwrap();
    }
    assert_eq!(versions(&store, "rotating"), vec![3, 4, 5]);
    assert_eq!(read(&store, "rotating").unwrap(), b"v5");
    for kept in 3..=5u64 {
        let v = store
            .get_value(&owner(), "rotating", None, Some(kept))
            .unwrap();
        assert_eq!(v.value.expose(), format!("v{kept}").as_bytes());
        assert_eq!(v.version, kept);
    }
    for pruned in 1..=2u64 {
        let r = store.get_value(&owner(), "rotating", None, Some(pruned));
        assert!(matches!(
            r,
            Err(Error::NotFound {
                what: "version",
                ..
            })
        ));
    }
    drop(store);
    // The pruned versions' rows are gone from the file, not just unlisted: 3 and 4 are left
    // (format 2 keeps the current version, 5, in the secret's own record).
    assert_eq!(rows(&t.path, Table::Values).len(), 2);

    // Lowering max_versions in a metadata-only update prunes too.
    let store = t.unlock();
    let shrink = SetRequest {
        max_versions: Some(1),
        ..SetRequest::default()
    };
    store.set(&owner(), "rotating", shrink).unwrap();
    assert_eq!(versions(&store, "rotating"), vec![5]);
    drop(store);
    assert_eq!(rows(&t.path, Table::Values).len(), 0);
}

#[test]
fn default_keeps_ten_versions() {
    let (_t, store) = TestStore::create();
    for i in 1..=12 {
        store.set(&owner(), "many", value(format!("v{i}"))).unwrap();
    }
    assert_eq!(versions(&store, "many"), (3..=12).collect::<Vec<_>>());
}

#[test]
fn rollback_republishes_an_old_version() {
    let (_t, store) = TestStore::create();
    let req = SetRequest {
        fields: [("user".to_owned(), SecretBytes::from("alice"))].into(),
        ..value("first")
    };
    store.set(&owner(), "api-key", req).unwrap();
    store.set(&owner(), "api-key", value("second")).unwrap();
    let m = store.rollback(&owner(), "api-key", None, 1).unwrap();
    assert_eq!(m.version, 3);
    let last = m.versions.last().unwrap();
    assert_eq!(last.rolled_back_from, Some(1));
    assert_eq!(last.fields, vec!["user"]);
    let v = store.get_value(&owner(), "api-key", None, None).unwrap();
    assert_eq!(v.version, 3);
    assert_eq!(v.value.expose(), b"first");
    assert_eq!(v.fields["user"].expose(), b"alice");
    // Version 2 is still there.
    let v2 = store.get_value(&owner(), "api-key", None, Some(2)).unwrap();
    assert_eq!(v2.value.expose(), b"second");
    // Rolling back to a version that never existed is not found, and changes nothing.
    let r = store.rollback(&owner(), "api-key", None, 9);
    assert!(matches!(
        r,
        Err(Error::NotFound {
            what: "version",
            ..
        })
    ));
    assert_eq!(versions(&store, "api-key"), vec![1, 2, 3]);
}

#[test]
fn rollback_honours_max_versions() {
    let (t, store) = TestStore::create();
    let req = SetRequest {
        max_versions: Some(2),
        ..value("a")
    };
    store.set(&owner(), "k", req).unwrap();
    store.set(&owner(), "k", value("b")).unwrap();
    store.rollback(&owner(), "k", None, 1).unwrap();
    assert_eq!(versions(&store, "k"), vec![2, 3]);
    assert_eq!(read(&store, "k").unwrap(), b"a");
    drop(store);
    // Version 2 (3 is current, in its record).
    assert_eq!(rows(&t.path, Table::Values).len(), 1);
}

#[test]
fn rm_deletes_the_secret_and_every_version() {
    let (t, store) = TestStore::create();
    store.set(&owner(), "keep", value("k")).unwrap();
    for i in 0..4 {
        store
            .set(&owner(), "doomed", value(format!("d{i}")))
            .unwrap();
    }
    store.delete(&owner(), "doomed", None, false).unwrap();
    assert!(matches!(
        read(&store, "doomed"),
        Err(Error::NotFound { what: "secret", .. })
    ));
    assert!(matches!(
        store.show(&owner(), "doomed", None),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.delete(&owner(), "doomed", None, false),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(read(&store, "keep").unwrap(), b"k");
    drop(store);
    assert_eq!(rows(&t.path, Table::Secrets).len(), 1);
    // `keep` has one version, held in its record: no history rows at all.
    assert_eq!(rows(&t.path, Table::Values).len(), 0);
    // A new secret by the same name starts again at version 1.
    let store = t.unlock();
    let m = store.set(&owner(), "doomed", value("again")).unwrap();
    assert_eq!(m.version, 1);
}

#[test]
fn metadata_only_update_keeps_value_and_version() {
    let (_t, store) = TestStore::create();
    let req = SetRequest {
        description: Some("old".into()),
        meta: [("a".to_owned(), "1".to_owned())].into(),
        ..value("the value")
    };
    store.set(&owner(), "svc", req).unwrap();
    let before = store.show(&owner(), "svc", None).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let update = SetRequest {
        description: Some("new".into()),
        integration: Some("aws".into()),
        meta: [("b".to_owned(), "2".to_owned())].into(),
        secret_type: Some(SecretType::Url),
        ..SetRequest::default()
    };
    let after = store.set(&owner(), "svc", update).unwrap();
    assert_eq!(after.version, 1, "no new version for a metadata change");
    assert_eq!(after.versions.len(), 1);
    assert_eq!(after.description.as_deref(), Some("new"));
    assert_eq!(after.integration.as_deref(), Some("aws"));
    assert_eq!(after.secret_type, SecretType::Url);
    assert_eq!(after.meta.len(), 2, "labels merge");
    assert!(after.updated_at > before.updated_at);
    assert_eq!(after.created_at, before.created_at);
    assert_eq!(read(&store, "svc").unwrap(), b"the value");
}

#[test]
fn metadata_only_update_of_a_missing_secret_is_refused() {
    let (_t, store) = TestStore::create();
    let req = SetRequest {
        description: Some("d".into()),
        ..SetRequest::default()
    };
    // `not_found` since issue 7's schemathesis pass (it was `invalid_argument`): the secret
    // to update does not exist; the message still says a new one needs a value.
    assert!(matches!(
        store.set(&owner(), "ghost", req),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn empty_value_is_refused_unless_allowed() {
    let (_t, store) = TestStore::create();
    let err = store.set(&owner(), "empty", value("")).unwrap_err();
    assert!(matches!(&err, Error::InvalidArgument { field, .. } if field == "value"));
    assert!(err.to_string().contains("allow-empty"), "{err}");
    assert!(store.show(&owner(), "empty", None).is_err());
    let req = SetRequest {
        allow_empty: true,
        ..value("")
    };
    store.set(&owner(), "empty", req).unwrap();
    assert_eq!(read(&store, "empty").unwrap(), b"");
}

#[test]
fn last_used_moves_on_every_read_and_only_then() {
    let (t, store) = TestStore::create();
    store.set(&owner(), "used", value("u")).unwrap();
    assert!(
        store
            .show(&owner(), "used", None)
            .unwrap()
            .last_used
            .is_none()
    );
    store
        .list(&owner(), &tresor::ListFilter::default())
        .unwrap();
    assert!(
        store
            .show(&owner(), "used", None)
            .unwrap()
            .last_used
            .is_none(),
        "metadata reads do not count"
    );
    read(&store, "used").unwrap();
    let first = store
        .show(&owner(), "used", None)
        .unwrap()
        .last_used
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    read(&store, "used").unwrap();
    let second = store
        .show(&owner(), "used", None)
        .unwrap()
        .last_used
        .unwrap();
    assert!(second > first);
    drop(store);
    let store = t.unlock();
    assert_eq!(
        store.show(&owner(), "used", None).unwrap().last_used,
        Some(second),
        "last_used is durable"
    );
    assert_eq!(store.show(&owner(), "used", None).unwrap().version, 1);
}

#[test]
fn names_are_validated_and_the_error_names_the_character() {
    let (_t, store) = TestStore::create();
    let cases: &[(&str, &str)] = &[
        ("bad$name", "'$' at byte 3"),
        ("with space", "U+0020 at byte 4"),
        ("-leading-dash", "'-' at byte 0"),
        ("caf\u{e9}", "U+00E9 at byte 3"),
        ("a/../b", "'..' segment"),
        ("trailing/", "trailing '/'"),
        ("", "empty"),
    ];
    for (name, said) in cases {
        let err = store.set(&owner(), name, value("v")).unwrap_err();
        match &err {
            Error::InvalidArgument { field, reason } => {
                assert_eq!(field, "name");
                assert!(reason.contains(said), "{name:?}: {reason}");
            }
            other => panic!("{name:?}: expected invalid_argument, got {other}"),
        }
        assert!(matches!(
            store.get_value(&owner(), name, None, None),
            Err(Error::InvalidArgument { .. })
        ));
    }
    let long = "a".repeat(129);
    let err = store.set(&owner(), &long, value("v")).unwrap_err();
    assert!(err.to_string().contains("129 bytes"), "{err}");
    // The longest and the fanciest legal names work.
    for ok in [
        "a".repeat(128).as_str(),
        "A0._/-z",
        "ci/deploy/key.v2",
        "x..y",
    ] {
        store.set(&owner(), ok, value("v")).unwrap();
        assert_eq!(read(&store, ok).unwrap(), b"v");
    }
}

#[test]
fn set_many_imports_in_one_transaction_and_refuses_all_on_one_bad_item() {
    let (_t, store) = TestStore::create();
    let items: Vec<(String, SetRequest)> = (0..50)
        .map(|i| (format!("imp-{i:03}"), value(format!("val-{i}"))))
        .collect();
    assert_eq!(store.set_many(&owner(), items).unwrap(), 50);
    assert_eq!(store.count().unwrap(), 50);
    assert_eq!(read(&store, "imp-042").unwrap(), b"val-42");

    let bad = vec![
        ("fine-1".to_owned(), value("a")),
        ("not fine".to_owned(), value("b")),
    ];
    assert!(store.set_many(&owner(), bad).is_err());
    assert!(
        store.show(&owner(), "fine-1", None).is_err(),
        "nothing written"
    );
}
