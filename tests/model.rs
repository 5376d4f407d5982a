//! Model-based test: random sequences of set, set_many, get, delete, rollback and reopen run
//! against the store and against a `BTreeMap`; every answer must agree.
//!
//! Runs 24 cases with a fixed seed so that `cargo test` is fast and deterministic; explore more
//! with `PROPTEST_CASES=2000 PROPTEST_RNG_SEED=$RANDOM cargo test --test model`.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{TestStore, owner};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tresor::{Error, SecretBytes, SetRequest, Store};

const NAMES: [&str; 4] = ["n0", "team/n1", "n2.x", "n3-y"];

#[derive(Clone, Debug)]
enum Op {
    Set {
        name: usize,
        value: Vec<u8>,
        max_versions: Option<u32>,
    },
    SetMany(Vec<(usize, Vec<u8>)>),
    Get {
        name: usize,
        back: Option<u64>,
    },
    Delete {
        name: usize,
    },
    Rollback {
        name: usize,
        back: u64,
    },
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    let name = 0..NAMES.len();
    let val = proptest::collection::vec(any::<u8>(), 1..24);
    prop_oneof![
        4 => (name.clone(), val.clone(), proptest::option::weighted(0.2, 1u32..4))
            .prop_map(|(name, value, max_versions)| Op::Set { name, value, max_versions }),
        1 => proptest::collection::vec((name.clone(), val), 1..5).prop_map(Op::SetMany),
        4 => (name.clone(), proptest::option::weighted(0.3, 0u64..4))
            .prop_map(|(name, back)| Op::Get { name, back }),
        1 => name.clone().prop_map(|name| Op::Delete { name }),
        1 => (name, 0u64..4).prop_map(|(name, back)| Op::Rollback { name, back }),
        1 => Just(Op::Reopen),
    ]
}

/// One secret in the model: its kept versions and how many to keep.
#[derive(Debug)]
struct Secret {
    versions: BTreeMap<u64, Vec<u8>>,
    current: u64,
    max: u32,
}

impl Secret {
    fn publish(&mut self, value: Vec<u8>) {
        self.current += 1;
        self.versions.insert(self.current, value);
        self.prune();
    }
    fn prune(&mut self) {
        while self.versions.len() > self.max as usize {
            self.versions.pop_first();
        }
    }
}

#[derive(Default, Debug)]
struct Model(BTreeMap<&'static str, Secret>);

impl Model {
    fn set(&mut self, name: &'static str, value: Vec<u8>, max_versions: Option<u32>) {
        let s = self.0.entry(name).or_insert(Secret {
            versions: BTreeMap::new(),
            current: 0,
            max: 10,
        });
        if let Some(m) = max_versions {
            s.max = m;
        }
        s.publish(value);
    }
}

fn req(value: &[u8], max_versions: Option<u32>) -> SetRequest {
    SetRequest {
        value: Some(SecretBytes::new(value.to_vec())),
        max_versions,
        ..SetRequest::default()
    }
}

fn config() -> Config {
    let base = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            base.cases
        } else {
            24
        },
        rng_seed: if std::env::var_os("PROPTEST_RNG_SEED").is_some() {
            base.rng_seed
        } else {
            RngSeed::Fixed(0x7e50_0001)
        },
        failure_persistence: None,
        ..base
    }
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let (t, store) = TestStore::create();
    let mut store: Option<Store> = Some(store);
    let mut model = Model::default();
    for (i, op) in ops.iter().enumerate() {
        let s = store.as_ref().unwrap();
        match op {
            Op::Set {
                name,
                value,
                max_versions,
            } => {
                let m = s
                    .set(&owner(), NAMES[*name], req(value, *max_versions))
                    .unwrap();
                model.set(NAMES[*name], value.clone(), *max_versions);
                prop_assert_eq!(m.version, model.0[NAMES[*name]].current, "op {}", i);
            }
            Op::SetMany(items) => {
                let batch = items
                    .iter()
                    .map(|(n, v)| (NAMES[*n].to_owned(), req(v, None)))
                    .collect();
                prop_assert_eq!(s.set_many(&owner(), batch).unwrap(), items.len());
                for (n, v) in items {
                    model.set(NAMES[*n], v.clone(), None);
                }
            }
            Op::Get { name, back } => {
                let want = model.0.get(NAMES[*name]);
                let version = back.map(|b| want.map_or(1, |w| w.current.saturating_sub(b)));
                let got = s.get_value(&owner(), NAMES[*name], None, version);
                let expected = want.and_then(|w| w.versions.get(&version.unwrap_or(w.current)));
                match (got, expected) {
                    (Ok(v), Some(e)) => {
                        prop_assert!(v.value.expose() == e.as_slice(), "op {}: wrong value", i);
                    }
                    (Err(Error::NotFound { .. }), None) => {}
                    (Ok(_), None) => prop_assert!(false, "op {}: read what the model lacks", i),
                    (Err(e), _) => prop_assert!(false, "op {}: {}", i, e),
                }
                if let Some(w) = want {
                    let kept: Vec<u64> = s
                        .versions(&owner(), NAMES[*name], None)
                        .unwrap()
                        .iter()
                        .map(|v| v.version)
                        .collect();
                    let model_kept: Vec<u64> = w.versions.keys().copied().collect();
                    prop_assert_eq!(kept, model_kept, "op {}", i);
                }
            }
            Op::Delete { name } => {
                let got = s.delete(&owner(), NAMES[*name], None, false);
                match model.0.remove(NAMES[*name]) {
                    Some(_) => prop_assert!(got.is_ok(), "op {}", i),
                    None => prop_assert!(matches!(got, Err(Error::NotFound { .. })), "op {}", i),
                }
            }
            Op::Rollback { name, back } => {
                let entry = model.0.get_mut(NAMES[*name]);
                let to = entry
                    .as_ref()
                    .map_or(1, |w| w.current.saturating_sub(*back));
                let got = s.rollback(&owner(), NAMES[*name], None, to);
                match entry.and_then(|w| w.versions.get(&to).cloned().map(|v| (w, v))) {
                    Some((w, v)) => {
                        w.publish(v);
                        prop_assert_eq!(got.unwrap().version, w.current, "op {}", i);
                    }
                    None => prop_assert!(
                        matches!(got, Err(Error::NotFound { .. })),
                        "op {}: rollback to a version the model lacks",
                        i
                    ),
                }
            }
            Op::Reopen => {
                drop(store.take());
                store = Some(t.unlock());
            }
        }
    }
    // At the end every secret reads as the model says, and the chain verifies.
    let s = store.as_ref().unwrap();
    prop_assert_eq!(s.count().unwrap(), model.0.len() as u64);
    for (name, w) in &model.0 {
        let v = s.get_value(&owner(), name, None, None).unwrap();
        prop_assert!(v.value.expose() == w.versions[&w.current].as_slice());
    }
    prop_assert!(s.audit_verify().unwrap().ok);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn store_agrees_with_a_btreemap(ops in proptest::collection::vec(op(), 1..30)) {
        run(&ops)?;
    }
}
