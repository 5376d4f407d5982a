//! Group commit under load: 16 concurrent clients x 500 value reads each give exactly 8,000
//! `read` audit records, every read is answered, and the chain verifies.
#![allow(clippy::unwrap_used)]

// The daemon tests keep their helpers apart from the store tests' `tests/common`.
#[path = "daemon_common/mod.rs"]
mod common;

use common::{TestDaemon, put};
use tresor::Api;
use tresor::{Action, AuditQuery, Outcome};

#[test]
fn sixteen_clients_times_500_reads_are_each_audited_once() {
    const CLIENTS: usize = 16;
    const READS: usize = 500;
    let d = TestDaemon::start(|s| {
        for i in 0..CLIENTS {
            put(s, &format!("secret-{i}"), &format!("value-{i}"));
        }
    });
    let socket = d.socket.clone();
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let c = tresor::Client::new(&socket).unwrap();
                let want = format!("value-{i}");
                for _ in 0..READS {
                    let v = c.get_value(&format!("secret-{i}"), None, None).unwrap();
                    assert_eq!(v.value.expose(), want.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let c = d.client();
    let reads = c
        .audit(&AuditQuery {
            action: Some(Action::Read),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(reads.len(), CLIENTS * READS);
    assert!(reads.iter().all(|r| r.outcome == Outcome::Ok));
    for i in 0..CLIENTS {
        let name = format!("secret-{i}");
        assert_eq!(
            reads
                .iter()
                .filter(|r| r.name.as_deref() == Some(&name))
                .count(),
            READS
        );
    }
    let report = c.audit_verify().unwrap();
    assert!(report.ok, "{report:?}");
    assert!(
        c.list(&tresor::ListFilter::default())
            .unwrap()
            .iter()
            .all(|m| m.last_used.is_some())
    );
}
