//! Model-based store fuzzing: arbitrary sequences of set, set_many, get, delete, rollback and
//! reopen against a `BTreeMap`, as in `tests/model.rs` but driven by libFuzzer. Names come
//! from the fuzzer too, so name validation is exercised: a name the store refuses must be one
//! the model never holds.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tresor::{
    Actor, Error, KdfChoice, Passphrase, SecretBytes, SetRequest, Store, UnlockSecret,
    validate_name,
};

#[derive(Arbitrary, Debug)]
enum Op {
    Set {
        name: Name,
        value: Vec<u8>,
        max_versions: Option<u8>,
    },
    SetMany(Vec<(Name, Vec<u8>)>),
    Get {
        name: Name,
        back: Option<u8>,
    },
    Delete {
        name: Name,
    },
    Rollback {
        name: Name,
        back: u8,
    },
    Reopen,
}

/// Mostly one of a few valid names (so operations meet each other), sometimes anything.
#[derive(Arbitrary, Debug)]
enum Name {
    Known(u8),
    Any(String),
}

impl Name {
    fn get(&self) -> String {
        match self {
            Self::Known(i) => ["a", "b/c", "d.e-f", "g_h"][usize::from(*i) % 4].to_owned(),
            Self::Any(s) => s.clone(),
        }
    }
}

struct Secret {
    versions: BTreeMap<u64, Vec<u8>>,
    current: u64,
    max: u32,
}

impl Secret {
    fn publish(&mut self, v: Vec<u8>) {
        self.current += 1;
        self.versions.insert(self.current, v);
        while self.versions.len() > self.max as usize {
            self.versions.pop_first();
        }
    }
}

fn set(model: &mut BTreeMap<String, Secret>, name: String, v: Vec<u8>, max: Option<u32>) {
    let s = model.entry(name).or_insert(Secret {
        versions: BTreeMap::new(),
        current: 0,
        max: 10,
    });
    if let Some(m) = max {
        s.max = m;
    }
    s.publish(v);
}

fn req(v: &[u8], max_versions: Option<u32>) -> SetRequest {
    SetRequest {
        value: Some(SecretBytes::new(v.to_vec())),
        max_versions,
        ..SetRequest::default()
    }
}

fuzz_target!(|ops: Vec<Op>| {
    if ops.len() > 64 {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.tresor");
    let me = Actor::direct_owner();
    let pass = Passphrase::from("fuzz");
    let mut store = Some(Store::create(&path, &pass, &KdfChoice::Insecure, &me).unwrap());
    let mut model: BTreeMap<String, Secret> = BTreeMap::new();
    for op in &ops {
        let s = store.as_ref().unwrap();
        match op {
            Op::Set {
                name,
                value,
                max_versions,
            } => {
                let n = name.get();
                let max = max_versions.map(|m| u32::from(m % 5) + 1);
                match s.set(&me, &n, req(value, max)) {
                    Ok(m) => {
                        set(&mut model, n.clone(), value.clone(), max);
                        assert_eq!(m.version, model[&n].current);
                    }
                    Err(Error::InvalidArgument { .. }) => {
                        assert!(value.is_empty() || validate_name(&n).is_err());
                    }
                    Err(e) => panic!("set: {e}"),
                }
            }
            Op::SetMany(items) => {
                let batch = items.iter().map(|(n, v)| (n.get(), req(v, None))).collect();
                match s.set_many(&me, batch) {
                    Ok(k) => {
                        assert_eq!(k, items.len());
                        for (n, v) in items {
                            set(&mut model, n.get(), v.clone(), None);
                        }
                    }
                    Err(Error::InvalidArgument { .. }) => assert!(
                        items
                            .iter()
                            .any(|(n, v)| v.is_empty() || validate_name(&n.get()).is_err())
                    ),
                    Err(e) => panic!("set_many: {e}"),
                }
            }
            Op::Get { name, back } => {
                let n = name.get();
                let want = model.get(&n);
                let version =
                    back.map(|b| want.map_or(1, |w| w.current.saturating_sub(u64::from(b))));
                let expected = want.and_then(|w| w.versions.get(&version.unwrap_or(w.current)));
                match (s.get_value(&me, &n, None, version), expected) {
                    (Ok(v), Some(e)) => assert!(v.value.expose() == e.as_slice(), "wrong value"),
                    (Err(Error::NotFound { .. } | Error::InvalidArgument { .. }), None) => {}
                    (Ok(_), None) => panic!("read a secret the model lacks"),
                    (Err(e), Some(_)) => panic!("get: {e}"),
                    (Err(e), None) => panic!("get of a missing secret: {e}"),
                }
            }
            Op::Delete { name } => {
                let n = name.get();
                let got = s.delete(&me, &n, None, false);
                match model.remove(&n) {
                    Some(_) => assert!(got.is_ok()),
                    None => assert!(matches!(
                        got,
                        Err(Error::NotFound { .. } | Error::InvalidArgument { .. })
                    )),
                }
            }
            Op::Rollback { name, back } => {
                let n = name.get();
                let entry = model.get_mut(&n);
                let to = entry
                    .as_ref()
                    .map_or(1, |w| w.current.saturating_sub(u64::from(*back)));
                let got = s.rollback(&me, &n, None, to);
                match entry.and_then(|w| w.versions.get(&to).cloned().map(|v| (w, v))) {
                    Some((w, v)) => {
                        w.publish(v);
                        assert_eq!(got.unwrap().version, w.current);
                    }
                    None => assert!(matches!(
                        got,
                        Err(Error::NotFound { .. } | Error::InvalidArgument { .. })
                    )),
                }
            }
            Op::Reopen => {
                drop(store.take());
                let locked = Store::open(&path).unwrap();
                store = Some(
                    locked
                        .unlock(&UnlockSecret::Passphrase(pass.clone()), &me)
                        .unwrap(),
                );
            }
        }
    }
    let s = store.as_ref().unwrap();
    assert_eq!(s.count().unwrap(), model.len() as u64);
    assert!(s.audit_verify().unwrap().ok);
});
