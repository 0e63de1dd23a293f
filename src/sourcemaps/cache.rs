//! Parsed source maps kept between events, bounded by bytes (SPEC §10, "Speed").
//!
//! Written here rather than taken from an LRU crate because an entry is a slot that one
//! loader fills while later askers of the same map wait on it (so a 10 MiB map is fetched
//! and parsed once however many events need it at once), its weight is known only once
//! filled, and a failed lookup expires after a while: the bookkeeping is a map and a use
//! counter, and eviction scans the entries, which are few (one per map in use).

use super::mapping::ParsedMap;
use super::resolve::Lookup;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// What a lookup gave: the parsed map, or why there is none.
pub(crate) type Found = Result<Arc<ParsedMap>, String>;

/// A slot filled once by the first asker.
pub(crate) type Slot = Arc<OnceCell<Found>>;

/// How long a failed lookup is remembered: an upload under way is seen soon, while a burst
/// of events of a file that has no map costs one lookup, not one per event.
pub(crate) const NEGATIVE_FOR: Duration = Duration::from_secs(5);

/// The cache key: a project's lookup.
pub(crate) type Key = (i64, Lookup);

struct Entry {
    slot: Slot,
    /// The project's artifacts' last change when the slot was made: a newer upload may
    /// give another answer, so the entry is then dropped.
    stamp: Option<i64>,
    made: Instant,
    used: u64,
    weight: usize,
}

/// The cache; its user holds it under a short mutex (no `.await` inside).
pub(crate) struct MapCache {
    entries: HashMap<Key, Entry>,
    budget: usize,
    held: usize,
    clock: u64,
}

impl MapCache {
    /// An empty cache of at most `budget` bytes of parsed maps.
    pub(crate) fn new(budget: usize) -> MapCache {
        MapCache {
            entries: HashMap::new(),
            budget,
            held: 0,
            clock: 0,
        }
    }

    /// Changes the bound (evicting at once if it shrank).
    pub(crate) fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
        self.evict();
    }

    /// Bytes of parsed maps held now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// The slot for `key`, made afresh when missing, made before the project's last
    /// change (`stamp`), or a failure older than [`NEGATIVE_FOR`].
    pub(crate) fn slot(&mut self, key: &Key, stamp: Option<i64>, now: Instant) -> Slot {
        self.clock += 1;
        let clock = self.clock;
        if let Some(e) = self.entries.get_mut(key) {
            let failed_long_ago =
                matches!(e.slot.get(), Some(Err(_))) && now.duration_since(e.made) > NEGATIVE_FOR;
            if e.stamp == stamp && !failed_long_ago {
                e.used = clock;
                return e.slot.clone();
            }
            self.held -= e.weight;
            self.entries.remove(key);
        }
        let slot = Slot::default();
        let entry = Entry {
            slot: slot.clone(),
            stamp,
            made: now,
            used: clock,
            weight: 0,
        };
        self.entries.insert(key.clone(), entry);
        slot
    }

    /// Counts `key`'s filled slot at its weight, then evicts the least recently used
    /// entries while over the bound (the one just filled last of all).
    pub(crate) fn filled(&mut self, key: &Key) {
        if let Some(e) = self.entries.get_mut(key)
            && e.weight == 0
            && let Some(found) = e.slot.get()
        {
            e.weight = match found {
                Ok(map) => map.weight,
                Err(why) => why.len() + 64,
            };
            self.held += e.weight;
        }
        self.evict();
    }

    fn evict(&mut self) {
        while self.held > self.budget {
            let Some(oldest) = self
                .entries
                .iter()
                .filter(|(_, e)| e.weight > 0)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                return;
            };
            if let Some(e) = self.entries.remove(&oldest) {
                self.held -= e.weight;
            }
        }
        // Slots never filled (their loader gave up) would otherwise stay forever.
        if self.entries.len() > 4096 {
            self.entries.retain(|_, e| e.slot.initialized());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> Key {
        (1, Lookup::DebugId(format!("id-{n}")))
    }

    fn fill(cache: &mut MapCache, k: &Key, weight_of_map: usize, now: Instant) -> Slot {
        let slot = cache.slot(k, Some(1), now);
        let map = r#"{"version":3,"sources":[],"names":[],"mappings":""}"#;
        let mut parsed = ParsedMap::parse(map.as_bytes(), None, "m".into()).unwrap();
        parsed.weight = weight_of_map;
        assert!(slot.set(Ok(Arc::new(parsed))).is_ok());
        cache.filled(k);
        slot
    }

    #[test]
    fn a_filled_slot_is_shared_until_the_project_changes() {
        let now = Instant::now();
        let mut cache = MapCache::new(1000);
        let first = fill(&mut cache, &key(1), 100, now);
        assert!(Arc::ptr_eq(&first, &cache.slot(&key(1), Some(1), now)));
        assert!(!Arc::ptr_eq(&first, &cache.slot(&key(1), Some(2), now)));
        assert_eq!(cache.held(), 0);
    }

    #[test]
    fn the_least_recently_used_go_first_past_the_bound() {
        let now = Instant::now();
        let mut cache = MapCache::new(250);
        fill(&mut cache, &key(1), 100, now);
        fill(&mut cache, &key(2), 100, now);
        cache.slot(&key(1), Some(1), now); // 1 used after 2
        fill(&mut cache, &key(3), 100, now);
        assert_eq!(cache.held(), 200);
        assert!(cache.slot(&key(1), Some(1), now).initialized());
        assert!(!cache.slot(&key(2), Some(1), now).initialized());
    }

    #[test]
    fn a_failure_is_remembered_briefly() {
        let now = Instant::now();
        let mut cache = MapCache::new(1000);
        let slot = cache.slot(&key(1), None, now);
        assert!(slot.set(Err("no".into())).is_ok());
        cache.filled(&key(1));
        assert!(
            cache
                .slot(&key(1), None, now + Duration::from_secs(1))
                .initialized()
        );
        let later = now + NEGATIVE_FOR + Duration::from_secs(1);
        assert!(!cache.slot(&key(1), None, later).initialized());
    }
}
