//! Introspection answers kept per token, and one request in flight per token.
//!
//! Keyed by the SHA-256 of the token, so the cache never holds a credential. Each entry is
//! a cell that the first request for a token fills while every concurrent request for the
//! same token waits on it: N requests bringing one new token cost one POST.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ring::digest::{SHA256, digest};
use tokio::sync::OnceCell;

use super::error::IntrospectionError;
use super::response::Answer;

/// What introspecting a token led to: an answer (or a refusal of it) worth keeping, or the
/// endpoint's unavailability, which is never kept.
pub(crate) type Outcome = Result<Answer, IntrospectionError>;

/// The SHA-256 of a token.
pub(crate) type Key = [u8; 32];

/// The key for `token`.
pub(crate) fn key(token: &str) -> Key {
    let mut key = [0; 32];
    key.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    key
}

/// A bounded map from token hashes to introspection outcomes.
pub(crate) struct AnswerCache {
    capacity: usize,
    slots: Mutex<Slots>,
}

struct Slots {
    map: HashMap<Key, Arc<Slot>>,
    /// Counts insertions, to find the oldest entry.
    next: u64,
}

struct Slot {
    /// The outcome and, in Unix seconds, the instant it stops being valid.
    cell: OnceCell<(Outcome, i64)>,
    inserted: u64,
}

impl Slot {
    fn is_expired(&self, now: i64) -> bool {
        self.cell.get().is_some_and(|(_, until)| *until <= now)
    }
}

impl AnswerCache {
    /// A cache of at most `capacity` tokens; 0 keeps nothing (and joins no requests).
    pub(crate) fn new(capacity: usize) -> Self {
        AnswerCache {
            capacity,
            slots: Mutex::new(Slots {
                map: HashMap::new(),
                next: 0,
            }),
        }
    }

    /// The kept outcome for `key` while valid at `now`; else the outcome of the request in
    /// flight for it, or of `fetch`, which returns the outcome and until when it is valid.
    /// An unavailable endpoint's outcome reaches the requests waiting for it and is then
    /// dropped, so the next request asks again.
    pub(crate) async fn get_or_fetch<F, Fut>(&self, key: Key, now: i64, fetch: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = (Outcome, i64)>,
    {
        if self.capacity == 0 {
            return fetch().await.0;
        }
        let slot = self.slot(key, now);
        let (outcome, _) = slot.cell.get_or_init(fetch).await;
        if matches!(outcome, Err(IntrospectionError::Unavailable(_))) {
            let mut slots = lock(&self.slots);
            if slots
                .map
                .get(&key)
                .is_some_and(|held| Arc::ptr_eq(held, &slot))
            {
                slots.map.remove(&key);
            }
        }
        outcome.clone()
    }

    /// The slot for `key`: the held one unless it expired, else a new one, making room for
    /// it by dropping expired entries first, then the oldest. Scanning for room costs a pass
    /// over the entries, and only when the cache is full.
    fn slot(&self, key: Key, now: i64) -> Arc<Slot> {
        let mut slots = lock(&self.slots);
        if let Some(held) = slots.map.get(&key)
            && !held.is_expired(now)
        {
            return Arc::clone(held);
        }
        slots.map.remove(&key);
        if slots.map.len() >= self.capacity {
            slots.map.retain(|_, slot| !slot.is_expired(now));
        }
        while slots.map.len() >= self.capacity {
            let oldest = slots
                .map
                .iter()
                .min_by_key(|(_, slot)| slot.inserted)
                .map(|(key, _)| *key);
            match oldest {
                Some(oldest) => slots.map.remove(&oldest),
                None => break,
            };
        }
        let slot = Arc::new(Slot {
            cell: OnceCell::new(),
            inserted: slots.next,
        });
        slots.next = slots.next.wrapping_add(1);
        slots.map.insert(key, Arc::clone(&slot));
        slot
    }

    /// How many tokens are held.
    #[cfg(test)]
    fn len(&self) -> usize {
        lock(&self.slots).map.len()
    }
}

/// The lock, even if a thread panicked holding it: the map stays consistent at every step.
fn lock(mutex: &Mutex<Slots>) -> MutexGuard<'_, Slots> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn inactive(until: i64) -> (Outcome, i64) {
        (Ok(Answer::Inactive), until)
    }

    async fn ask(cache: &AnswerCache, token: &str, now: i64, calls: &AtomicUsize) -> Outcome {
        cache
            .get_or_fetch(key(token), now, || async {
                calls.fetch_add(1, Ordering::SeqCst);
                inactive(now + 10)
            })
            .await
    }

    #[tokio::test]
    async fn an_answer_is_kept_until_it_expires() {
        let cache = AnswerCache::new(4);
        let calls = AtomicUsize::new(0);
        ask(&cache, "t", 100, &calls).await.unwrap();
        ask(&cache, "t", 109, &calls).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        ask(&cache, "t", 110, &calls).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn unavailability_is_not_kept() {
        let cache = AnswerCache::new(4);
        for _ in 0..2 {
            let outcome = cache
                .get_or_fetch(key("t"), 100, || async {
                    (Err(IntrospectionError::Unavailable("down".into())), 1000)
                })
                .await;
            assert_eq!(outcome.unwrap_err().reason(), "introspection_unavailable");
            assert_eq!(cache.len(), 0);
        }
    }

    #[tokio::test]
    async fn expired_entries_go_first_then_the_oldest() {
        let cache = AnswerCache::new(2);
        let calls = AtomicUsize::new(0);
        cache
            .get_or_fetch(key("short"), 100, || async { inactive(101) })
            .await
            .unwrap();
        ask(&cache, "a", 100, &calls).await.unwrap();
        // "short" expired: it makes room, "a" stays.
        ask(&cache, "b", 105, &calls).await.unwrap();
        assert_eq!(cache.len(), 2);
        ask(&cache, "a", 105, &calls).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Full of live entries: the oldest ("a") goes.
        ask(&cache, "c", 105, &calls).await.unwrap();
        ask(&cache, "b", 105, &calls).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        ask(&cache, "a", 105, &calls).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_key_is_the_token_hash() {
        assert_ne!(key("a"), key("b"));
        assert_eq!(key("a"), key("a"));
    }
}
