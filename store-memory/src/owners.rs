//! The owner index: each owner's session ids, and the owner's live
//! sessions read through it. Kept beside the cache, not in it, because moka
//! cannot look entries up by anything but their id.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::record::Record;
use crate::store::MemoryStore;

/// Each owner's session ids. It may name a session that has just ended,
/// never miss a live one: a bind adds the id before it returns, and every
/// reader checks the session itself.
#[derive(Default)]
pub(crate) struct Owners(Mutex<HashMap<Arc<str>, HashSet<String>>>);

impl Owners {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, HashSet<String>>> {
        // Each change is one insert or remove: a panic elsewhere cannot
        // leave the map half-changed.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn add(&self, owner: &Arc<str>, id: &str) {
        self.lock()
            .entry(owner.clone())
            .or_default()
            .insert(id.to_owned());
    }

    pub(crate) fn remove(&self, owner: &str, id: &str) {
        let mut owners = self.lock();
        if let Some(ids) = owners.get_mut(owner) {
            ids.remove(id);
            if ids.is_empty() {
                owners.remove(owner);
            }
        }
    }

    pub(crate) fn ids(&self, owner: &str) -> Vec<String> {
        self.lock()
            .get(owner)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }
}

impl MemoryStore {
    /// The live sessions of `owner`, with their ids; prunes dead entries.
    pub(crate) async fn owned(&self, owner: &str) -> Vec<(String, Arc<Record>)> {
        let mut live = Vec::new();
        for id in self.owners.ids(owner) {
            match self.peek(&id).await {
                Some(record) if record.owner.as_deref() == Some(owner) => live.push((id, record)),
                // Not yet bound (a bind in flight added the entry first), or
                // bound elsewhere since (that bind drops the entry): kept.
                Some(_) => {}
                None => {
                    self.owners.remove(owner, &id);
                    // Dropped, then looked at again: a regenerate indexes
                    // its new id before the session is there, and again
                    // after; if this drop came in between, it is here now.
                    if let Some(record) = self.peek(&id).await {
                        if record.owner.as_deref() == Some(owner) {
                            self.owners.add(&Arc::from(owner), &id);
                            live.push((id, record));
                        }
                    }
                }
            }
        }
        live
    }
}
