//! Listings: metadata of the secrets a principal may see, in listing order, whole or in
//! pages of bounded memory.

use redb::ReadableTable;

use super::records::SecretRec;
use super::{SECRETS, Store};
use crate::error::Result;
use crate::format::TableId;
use crate::policy::{Op, decide};
use crate::types::{Actor, ListFilter, Scope, SecretMeta};

impl Store {
    /// Metadata of every secret the actor may see, sorted by scope and name. Each record opened
    /// holds its current value too (format 2); it is dropped (wiped) unreturned.
    ///
    /// # Errors
    /// `Integrity` when a record fails to open.
    pub fn list(&self, actor: &Actor, filter: &ListFilter) -> Result<Vec<SecretMeta>> {
        self.list_page(actor, filter, None, None)
            .map(|(page, _)| page)
    }

    /// One page of [`Store::list`]: the first `limit` secrets after `after` (a scope and a
    /// name) in listing order, and whether more remain. Holds at most `limit + 1` entries
    /// however large the store (a bounded heap over one pass), so a daemon serving pages
    /// never builds the whole listing.
    ///
    /// # Errors
    /// As [`Store::list`].
    pub fn list_page(
        &self,
        actor: &Actor,
        filter: &ListFilter,
        after: Option<&(Scope, String)>,
        limit: Option<usize>,
    ) -> Result<(Vec<SecretMeta>, bool)> {
        self.list_page_as(actor, filter, after, limit, false)
    }

    /// As [`Store::list_page`]; with `fingerprints`, each row carries its value's keyed
    /// fingerprint (one MAC of the current value per secret, so only `report duplicates` asks).
    ///
    /// # Errors
    /// As [`Store::list`].
    pub fn list_page_as(
        &self,
        actor: &Actor,
        filter: &ListFilter,
        after: Option<&(Scope, String)>,
        limit: Option<usize>,
        fingerprints: bool,
    ) -> Result<(Vec<SecretMeta>, bool)> {
        /// Ordered by scope and name only (a max-heap keeps the `limit + 1` smallest).
        struct ByName(SecretMeta);
        impl PartialEq for ByName {
            fn eq(&self, o: &Self) -> bool {
                self.cmp(o).is_eq()
            }
        }
        impl Eq for ByName {}
        impl PartialOrd for ByName {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl Ord for ByName {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                (&self.0.scope, &self.0.name).cmp(&(&o.0.scope, &o.0.name))
            }
        }
        let (who, teams) = self.principal_for(actor)?;
        let now = crate::sys::now();
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SECRETS)?;
        let mut heap = std::collections::BinaryHeap::new();
        for row in table.iter()? {
            let (k, v) = row?;
            let rec: SecretRec = self.open_row(TableId::Secrets, k.value(), v.value())?;
            let keep = after.is_none_or(|(s, n)| (&rec.scope, &rec.name) > (s, n))
                && filter.scope.as_ref().is_none_or(|s| *s == rec.scope)
                && filter.secret_type.is_none_or(|t| t == rec.stype)
                && filter
                    .integration
                    .as_ref()
                    .is_none_or(|i| rec.integration.as_ref() == Some(i))
                && filter
                    .query
                    .as_ref()
                    .is_none_or(|q| rec.name.contains(q.as_str()))
                && decide(
                    &who,
                    &teams,
                    Op::ReadMeta,
                    Some((&rec.scope, &rec.name)),
                    now,
                )
                .is_allow();
            if keep {
                let mut meta = self.meta_of(k.value(), &rec);
                if fingerprints {
                    meta.fingerprint = rec.fingerprint(&self.keys).map(|fp| super::hex(&fp[..16]));
                }
                heap.push(ByName(meta));
                if limit.is_some_and(|l| heap.len() > l.saturating_add(1)) {
                    heap.pop();
                }
            }
        }
        let mut out: Vec<SecretMeta> = heap.into_sorted_vec().into_iter().map(|b| b.0).collect();
        let more = limit.is_some_and(|l| out.len() > l);
        if let Some(l) = limit {
            out.truncate(l);
        }
        Ok((out, more))
    }
}
