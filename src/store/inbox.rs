//! The write-only inbox (SPEC §7): anyone holding the store's age recipient may drop a value;
//! nothing can be read back through it. Submissions wait, encrypted to the store, until the
//! store is unlocked, and are then applied one by one, each in its own transaction with its
//! audit record; a bad one (not decryptable, malformed, replayed, stale, oversized) is moved to
//! the quarantine directory with a `.reason` file and never half-applied.
//!
//! Two ways in:
//!
//! - the `inbox` table, written by the daemon for `POST /v1/inbox` (also while locked):
//!
//!   ```text
//!   key: arrival counter (u64)
//!   offset  size  field                (plain: nothing here is secret)
//!        0     8  arrival time (µs since the epoch)
//!        8     4  uid of the submitter
//!       12     4  pid of the submitter
//!       16     1  principal name length n
//!       17     n  principal name (UTF-8)
//!     17+n     m  the submission: an age file encrypted to the store's recipient
//!   ```
//!
//! - the inbox directory, `<store file>.inbox/` (see [`inbox_dir`]): any regular file whose
//!   name does not start with `.` is a submission (write to `.name`, then rename); the file's
//!   owner uid is recorded as who dropped it. Quarantine: `<store file>.inbox/quarantine/`.

use std::path::{Path, PathBuf};

use redb::{ReadableTable, TableDefinition};

use super::records::{SecretRec, ValueRec, VersionRec, now_us};
use super::{LockedStore, SECRETS, Store, VALUES, audit};
use crate::error::{Error, Result};
use crate::format::TableId;
use crate::format::bundle::{
    ParsedSubmission, SUBMISSION_FILE_MAX, SUBMISSION_MAX, parse_submission,
};
use crate::types::{Action, Actor, AuditEntry, InboxOutcome, Outcome};

pub(super) const INBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("inbox");
/// Versions kept for a secret created through the inbox.
const NEW_MAX_VERSIONS: u32 = 10;

/// The inbox directory of a store file: `<store file>.inbox`.
pub fn inbox_dir(store: &Path) -> PathBuf {
    let mut s = store.as_os_str().to_owned();
    s.push(".inbox");
    PathBuf::from(s)
}

/// One submission waiting.
struct Pending {
    label: String,
    actor: Actor,
    bytes: Vec<u8>,
    /// Where it came from: a table row, or a file in the inbox directory.
    from: Source,
}

enum Source {
    Row(u64),
    File(PathBuf),
}

impl Pending {
    /// A row came through the daemon's socket; a file was dropped on the file system.
    fn channel(&self) -> crate::types::Channel {
        match self.from {
            Source::Row(_) => crate::types::Channel::Socket,
            Source::File(_) => crate::types::Channel::Direct,
        }
    }
}

fn encode_row(actor: &Actor, bytes: &[u8]) -> Vec<u8> {
    let name = actor.principal.as_bytes();
    let n = name.len().min(255);
    let mut out = Vec::with_capacity(17 + n + bytes.len());
    out.extend_from_slice(&now_us().to_be_bytes());
    out.extend_from_slice(&actor.uid.to_be_bytes());
    out.extend_from_slice(&actor.pid.to_be_bytes());
    out.push(u8::try_from(n).unwrap_or(u8::MAX));
    out.extend_from_slice(&name[..n]);
    out.extend_from_slice(bytes);
    out
}

fn decode_row(key: u64, b: &[u8]) -> Pending {
    let label = format!("row-{key}");
    let mut actor = Actor::default();
    let mut bytes = Vec::new();
    if b.len() >= 17 {
        actor.uid = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        actor.pid = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
        let n = usize::from(b[16]);
        if b.len() >= 17 + n {
            actor.principal = String::from_utf8_lossy(&b[17..17 + n]).into_owned();
            bytes = b[17 + n..].to_vec();
        }
    }
    if actor.principal.is_empty() {
        actor.principal = format!("uid-{}", actor.uid);
    }
    Pending {
        label,
        actor,
        bytes,
        from: Source::Row(key),
    }
}

fn check_size(bytes: &[u8]) -> Result<()> {
    if bytes.len() as u64 > SUBMISSION_FILE_MAX {
        return Err(Error::PayloadTooLarge {
            size: bytes.len() as u64,
            limit: SUBMISSION_FILE_MAX,
        });
    }
    Ok(())
}

fn drop_row(db: &super::db::Db, actor: &Actor, bytes: &[u8]) -> Result<()> {
    check_size(bytes)?;
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(INBOX)?;
        let next = t.last()?.map_or(1, |(k, _)| k.value() + 1);
        t.insert(next, encode_row(actor, bytes).as_slice())?;
    }
    db.commit(txn)?;
    Ok(())
}

impl LockedStore {
    /// Keeps a submission (an age file for this store) for the next unlock. Anyone may.
    ///
    /// # Errors
    /// `PayloadTooLarge` over the limit; storage errors.
    pub fn inbox_drop(&self, actor: &Actor, bytes: &[u8]) -> Result<()> {
        drop_row(&self.db, actor, bytes)
    }
}

impl Store {
    /// Takes a submission and applies it at once (with any others waiting). Anyone may: the
    /// value is write-only, and the outcome names no value.
    ///
    /// # Errors
    /// `PayloadTooLarge` over the limit; storage errors. A bad submission is quarantined and
    /// reported in the outcome, not an error.
    pub fn inbox_submit(&self, actor: &Actor, bytes: &[u8]) -> Result<Vec<InboxOutcome>> {
        drop_row(&self.db, actor, bytes)?;
        self.inbox_process()
    }

    /// Applies every waiting submission (table rows, then files in the inbox directory, in
    /// name order). Each good one is a new version written in its own transaction, audited as
    /// `set` by who dropped it; each bad one is quarantined with its reason and audited with
    /// outcome `error`.
    ///
    /// # Errors
    /// Storage errors; the submissions not yet handled stay waiting.
    pub fn inbox_process(&self) -> Result<Vec<InboxOutcome>> {
        let mut pending = Vec::new();
        {
            let txn = self.db.begin_read()?;
            match txn.open_table(INBOX) {
                Ok(t) => {
                    for row in t.iter()? {
                        let (k, v) = row?;
                        pending.push(decode_row(k.value(), v.value()));
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        pending.extend(self.inbox_files());
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let identity = self.identity(&crate::types::Actor::daemon())?;
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            let result = check_size(&p.bytes)
                .and_then(|()| identity.decrypt("inbox", &p.bytes, SUBMISSION_MAX))
                .and_then(|plain| parse_submission(&plain));
            let outcome = match result {
                Ok(sub) => self.apply_submission(&p, &sub)?,
                Err(e) => self.quarantine(&p, &reason_of(&e), None)?,
            };
            out.push(outcome);
        }
        Ok(out)
    }

    fn inbox_files(&self) -> Vec<Pending> {
        let dir = inbox_dir(&self.path);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut names: Vec<_> = rd.filter_map(std::result::Result::ok).collect();
        names.sort_by_key(std::fs::DirEntry::file_name);
        let mut out = Vec::new();
        for e in names {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if let Some(p) = read_dropped(&e.path(), name) {
                out.push(p);
            }
        }
        out
    }

    fn apply_submission(&self, p: &Pending, sub: &ParsedSubmission) -> Result<InboxOutcome> {
        let replay_key = match &sub.id {
            Some(id) => blake3::hash(format!("id:{id}").as_bytes()),
            None => blake3::hash(&p.bytes),
        };
        let replay_key = *replay_key.as_bytes();
        let h = self.secret_hash(&sub.scope, &sub.name);
        let label = format!("{}/{}", sub.scope, sub.name);
        let txn = self.db.begin_write()?;
        let mut state = self.airgap_state(&txn)?;
        let now = now_us();
        let version;
        {
            let mut secrets = txn.open_table(SECRETS)?;
            let existing: Option<SecretRec> = match secrets.get(&h)? {
                Some(raw) => Some(self.open_row(TableId::Secrets, &h, raw.value())?),
                None => None,
            };
            let refusal = if state.seen(&replay_key) {
                Some("replayed: this submission was applied already")
            } else if let (Some(t), Some(r)) = (sub.time, &existing)
                && t.as_microsecond() < r.updated_at
            {
                Some("stale: older than the secret's last change")
            } else {
                None
            };
            if let Some(why) = refusal {
                drop(secrets);
                txn.abort()?;
                return self.quarantine(p, why, Some(label));
            }
            let prev = existing.as_ref().map(|r| r.version);
            let mut rec = existing.unwrap_or_else(|| new_rec(sub, &p.actor.principal, now));
            if let Some(t) = sub.secret_type {
                rec.stype = t;
            }
            if sub.description.is_some() {
                rec.description.clone_from(&sub.description);
            }
            rec.version += 1;
            rec.updated_at = now;
            rec.updated_by.clone_from(&p.actor.principal);
            rec.versions.push(VersionRec {
                version: rec.version,
                at: now,
                by: p.actor.principal.clone(),
                fields: Vec::new(),
                size: sub.value.len() as u64,
                from: None,
            });
            let val = ValueRec {
                value: sub.value.clone(),
                fields: Vec::new(),
            };
            let writes = vec![(rec.version, val)];
            self.settle_versions(&mut txn.open_table(VALUES)?, &h, &mut rec, prev, writes)?;
            secrets.insert(&h, self.seal_row(TableId::Secrets, &h, &rec)?.as_slice())?;
            version = rec.version;
        }
        state.remember(replay_key, now);
        self.put_airgap_state(&txn, &state)?;
        forget(&txn, p)?;
        let mut e = AuditEntry::new(&p.actor, Action::Set, Outcome::Ok).secret(
            &sub.scope,
            &sub.name,
            Some(version),
        );
        e.channel = p.channel();
        e.exe = Some(format!("inbox {}", p.label));
        audit::append(self, &txn, &[e])?;
        self.db.commit(txn)?;
        if let Source::File(f) = &p.from {
            let _ = std::fs::remove_file(f);
        }
        Ok(InboxOutcome {
            file: p.label.clone(),
            secret: Some(label),
            version: Some(version),
            quarantined: None,
        })
    }

    /// Moves a bad submission to the quarantine directory with a `.reason` file, and audits it.
    fn quarantine(&self, p: &Pending, why: &str, secret: Option<String>) -> Result<InboxOutcome> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let qdir = inbox_dir(&self.path).join("quarantine");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&qdir)?;
        let base = format!("{}-{}", now_us(), sanitize(&p.label));
        let write = |name: String, bytes: &[u8]| -> Result<()> {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(qdir.join(name))?;
            f.write_all(bytes)?;
            Ok(())
        };
        let reason = format!(
            "submission {} dropped by {} (uid {}): {why}\n",
            p.label, p.actor.principal, p.actor.uid
        );
        match &p.from {
            Source::File(f) => {
                if std::fs::rename(f, qdir.join(&base)).is_err() {
                    let _ = std::fs::remove_file(f);
                }
            }
            Source::Row(_) => write(base.clone(), &p.bytes)?,
        }
        write(format!("{base}.reason"), reason.as_bytes())?;
        let txn = self.db.begin_write()?;
        forget(&txn, p)?;
        let mut e = AuditEntry::new(&p.actor, Action::Set, Outcome::Error)
            .named(format!("inbox {}: quarantined ({why})", p.label));
        e.channel = p.channel();
        audit::append(self, &txn, &[e])?;
        self.db.commit(txn)?;
        Ok(InboxOutcome {
            file: base,
            secret,
            version: None,
            quarantined: Some(why.to_owned()),
        })
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The reason written for a quarantined submission: the error's message, which names the
/// field or the failure and never a value.
fn reason_of(e: &Error) -> String {
    match e {
        Error::Integrity { record, .. } => format!("integrity: {record}"),
        Error::PayloadTooLarge { limit, .. } => format!("oversized: over {limit} bytes"),
        other => format!("malformed: {other}"),
    }
}

fn forget(txn: &redb::WriteTransaction, p: &Pending) -> Result<()> {
    if let Source::Row(k) = p.from {
        txn.open_table(INBOX)?.remove(k)?;
    }
    Ok(())
}

/// The record of a secret created by a submission.
fn new_rec(sub: &ParsedSubmission, by: &str, now: i64) -> SecretRec {
    SecretRec {
        name: sub.name.clone(),
        scope: sub.scope.clone(),
        stype: sub.secret_type.unwrap_or_default(),
        description: None,
        integration: None,
        meta: std::collections::BTreeMap::new(),
        created_at: now,
        created_by: by.to_owned(),
        updated_at: now,
        updated_by: by.to_owned(),
        version: 0,
        max_versions: NEW_MAX_VERSIONS,
        max_age_days: None,
        versions: Vec::new(),
        current: ValueRec::default(),
        current_in_values: false,
    }
}

/// Reads one dropped file: opened without following a symlink and without blocking (a FIFO
/// swapped in after listing cannot hang the unlock), checked to be a regular file on the open
/// descriptor, read up to one byte over the limit. `None` for anything else.
fn read_dropped(path: &Path, label: String) -> Option<Pending> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).ok()?)
        .open(path)
        .ok()?;
    let md = f.metadata().ok()?;
    if !md.is_file() {
        return None;
    }
    let mut bytes = Vec::new();
    f.take(SUBMISSION_FILE_MAX + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    let actor = Actor {
        uid: md.uid(),
        gid: md.gid(),
        principal: crate::sys::user_name(md.uid()).unwrap_or_else(|| format!("uid-{}", md.uid())),
        ..Actor::default()
    };
    Some(Pending {
        label,
        actor,
        bytes,
        from: Source::File(path.to_owned()),
    })
}
