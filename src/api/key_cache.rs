//! The per-process cache of API keys in front of the database.
//!
//! Replicas share no memory, so a key revoked or rotated on one replica is seen by the others
//! only when their cached copy runs out: found keys are trusted for [`FOUND_TTL`], which bounds
//! how long a revoked key keeps working anywhere. Expiry needs no invalidation at all: the
//! cached key carries its expiry, checked on every use by the authenticator.
//!
//! Unknown key ids are remembered too, for [`UNKNOWN_TTL`], so a caller repeating a made-up id
//! costs one query per period instead of one per call. Key ids are 64 random bits, so an id
//! remembered as unknown is never issued later; the replica that issues a key forgets the id
//! anyway.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    domain::{tenant::StoredKey, Timestamp},
    store::{tenants::LAST_USED_RESOLUTION, Store, StoreError},
};

/// How long a found key is trusted without asking the database again: the longest a key
/// revoked on another replica keeps working on this one.
pub(crate) const FOUND_TTL: Duration = Duration::from_secs(2);
/// How long an unknown key id is answered from memory.
pub(crate) const UNKNOWN_TTL: Duration = Duration::from_secs(30);
/// Upper bound on remembered key ids (found or unknown), so a flood of made-up ids cannot grow
/// memory without limit.
const CAPACITY: usize = 10_000;

#[derive(Clone, Debug)]
struct Looked {
    at: Instant,
    key: Option<StoredKey>,
}

impl Looked {
    fn fresh(&self) -> bool {
        let ttl = if self.key.is_some() {
            FOUND_TTL
        } else {
            UNKNOWN_TTL
        };
        self.at.elapsed() < ttl
    }
}

/// Keys by id, found or known to be missing, and when each key's use was last recorded.
#[derive(Clone, Debug, Default)]
pub(crate) struct KeyCache {
    looked: Arc<Mutex<HashMap<String, Looked>>>,
    recorded_use: Arc<Mutex<HashMap<String, Instant>>>,
}

impl KeyCache {
    /// The key with this id, from memory while fresh, else from the database.
    pub(crate) async fn lookup(
        &self,
        store: &Store,
        key_id: &str,
    ) -> Result<Option<StoredKey>, StoreError> {
        if let Some(looked) = self.remembered(key_id) {
            return Ok(looked.key);
        }
        let found = store.find_key(key_id).await?;
        if let Ok(mut looked) = self.looked.lock() {
            make_room(&mut looked, |entry| entry.fresh());
            looked.insert(
                key_id.to_owned(),
                Looked {
                    at: Instant::now(),
                    key: found.clone(),
                },
            );
        }
        Ok(found)
    }

    /// Drops what this process remembers of a key, after this process changed it.
    pub(crate) fn forget(&self, key_id: &str) {
        if let Ok(mut looked) = self.looked.lock() {
            looked.remove(key_id);
        }
    }

    /// Records that a key was used, at most once per [`LAST_USED_RESOLUTION`] per key and
    /// process, off the caller's path: "last used" is coarse and never costs a write per call.
    pub(crate) fn note_use(&self, store: &Store, key_id: &str) {
        let due = match self.recorded_use.lock() {
            Ok(mut recorded) => {
                let due = recorded
                    .get(key_id)
                    .is_none_or(|at| at.elapsed() >= LAST_USED_RESOLUTION);
                if due {
                    make_room(&mut recorded, |at| at.elapsed() < LAST_USED_RESOLUTION);
                    recorded.insert(key_id.to_owned(), Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if !due {
            return;
        }
        let store = store.clone();
        let key_id = key_id.to_owned();
        tokio::spawn(async move {
            if let Err(error) = store.touch_key(&key_id, Timestamp::now()).await {
                tracing::warn!(%key_id, %error, "recording a key's last use failed");
            }
        });
    }

    fn remembered(&self, key_id: &str) -> Option<Looked> {
        let looked = self.looked.lock().ok()?;
        looked.get(key_id).filter(|entry| entry.fresh()).cloned()
    }
}

/// Makes room for one more entry: drops stale entries first, and everything when the map is
/// still full (a flood of distinct ids), so memory stays bounded.
fn make_room<V>(map: &mut HashMap<String, V>, keep: impl Fn(&V) -> bool) {
    if map.len() < CAPACITY {
        return;
    }
    map.retain(|_, value| keep(value));
    if map.len() >= CAPACITY {
        map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_stale_entries_first() {
        let mut map: HashMap<String, bool> =
            (0..CAPACITY).map(|n| (n.to_string(), n == 0)).collect();
        make_room(&mut map, |fresh| *fresh);
        assert_eq!(map.len(), 1);
        let mut full: HashMap<String, bool> =
            (0..CAPACITY).map(|n| (n.to_string(), true)).collect();
        make_room(&mut full, |fresh| *fresh);
        assert!(full.is_empty());
    }
}
