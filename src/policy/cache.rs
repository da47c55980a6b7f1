//! A small bounded map for what the engine derives per distinct request (entity slices,
//! policy subsets), kept with a loaded set and dropped with it on reload.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Most entries kept.
const MAX_ENTRIES: usize = 4096;

/// Most weight kept (entities or policies, summed over the entries), so that a few large
/// entries cannot hold much memory either.
const MAX_WEIGHT: usize = 65_536;

/// Entries by key, emptied whenever one more would pass a bound: what requests bring is
/// untrusted and varied, so a full map is cheaper to start over than to order for eviction.
#[derive(Debug)]
pub(crate) struct Bounded<K, V> {
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    entries: HashMap<K, Arc<V>>,
    weight: usize,
}

impl<K: Eq + Hash, V> Bounded<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                weight: 0,
            }),
        }
    }

    pub(crate) fn get(&self, key: &K) -> Option<Arc<V>> {
        self.lock().entries.get(key).cloned()
    }

    /// Keeps `value` under `key`, unless its `weight` alone passes the bound.
    pub(crate) fn insert(&self, key: K, value: Arc<V>, weight: usize) {
        if weight > MAX_WEIGHT {
            return;
        }
        let mut inner = self.lock();
        if inner.entries.len() >= MAX_ENTRIES || inner.weight + weight > MAX_WEIGHT {
            inner.entries.clear();
            inner.weight = 0;
        }
        inner.weight += weight;
        inner.entries.insert(key, value);
    }

    fn lock(&self) -> MutexGuard<'_, Inner<K, V>> {
        // Entries are whole when inserted, so a panic elsewhere cannot leave the map torn.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_starts_over_when_a_bound_would_be_passed() {
        let cache = Bounded::new();
        cache.insert(1, Arc::new("one"), MAX_WEIGHT - 1);
        assert!(cache.get(&1).is_some());
        cache.insert(2, Arc::new("two"), 2);
        assert!(cache.get(&1).is_none());
        assert!(cache.get(&2).is_some());
        cache.insert(3, Arc::new("three"), MAX_WEIGHT + 1);
        assert!(cache.get(&3).is_none());
        for key in 0..MAX_ENTRIES + 1 {
            cache.insert(key + 10, Arc::new("many"), 0);
        }
        assert!(cache.get(&10).is_none());
        assert!(cache.get(&(MAX_ENTRIES + 10)).is_some());
    }
}
