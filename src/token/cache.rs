//! A bounded cache of verified tokens: a token seen again skips decoding, signature and
//! claim parsing, keeping only the checks that can change — the time claims, and whether
//! the keys it was verified with are still the issuer's keys.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
#[cfg(feature = "remote-jwks")]
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};

use super::claims::VerifiedToken;
use super::remote::source::KeysRef;

/// Separate locks, so that concurrent requests rarely wait for each other.
const SHARDS: usize = 16;

type Shard = Mutex<HashMap<Box<str>, Entry, RandomState>>;

/// The verified tokens, keyed by the whole token text.
pub(crate) struct TokenCache {
    shards: Box<[Shard]>,
    per_shard: usize,
    hasher: RandomState,
}

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) token: VerifiedToken,
    /// The index of the issuer that verified the token.
    pub(crate) issuer: usize,
    pub(crate) keys: KeysPin,
}

/// Which keys verified a token. A remote snapshot is kept alive by the entry, so a refresh
/// (a new snapshot at a new address) is always told apart from the one that verified it.
#[derive(Clone)]
pub(crate) enum KeysPin {
    Static,
    #[cfg(feature = "remote-jwks")]
    Remote(Arc<super::remote::Snapshot>),
}

impl KeysPin {
    pub(crate) fn of(keys: &KeysRef<'_>) -> Self {
        match keys {
            KeysRef::Static(_) => KeysPin::Static,
            #[cfg(feature = "remote-jwks")]
            KeysRef::Remote(snapshot) => KeysPin::Remote(Arc::clone(snapshot)),
        }
    }

    /// Whether `keys` are the keys this pin was taken from.
    pub(crate) fn is_current(&self, keys: &KeysRef<'_>) -> bool {
        match (self, keys) {
            (KeysPin::Static, KeysRef::Static(_)) => true,
            #[cfg(feature = "remote-jwks")]
            (KeysPin::Remote(pinned), KeysRef::Remote(current)) => Arc::ptr_eq(pinned, current),
            #[cfg(feature = "remote-jwks")]
            _ => false,
        }
    }
}

impl TokenCache {
    /// A cache holding about `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let hasher = RandomState::new();
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(HashMap::with_hasher(hasher.clone())))
            .collect();
        Self {
            shards,
            per_shard,
            hasher,
        }
    }

    fn shard(&self, token: &str) -> Option<&Shard> {
        let hash = self.hasher.hash_one(token);
        let index = usize::try_from(hash % SHARDS as u64).ok()?;
        self.shards.get(index)
    }

    pub(crate) fn get(&self, token: &str) -> Option<Entry> {
        let shard = self
            .shard(token)?
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(token).cloned()
    }

    pub(crate) fn remove(&self, token: &str) {
        if let Some(shard) = self.shard(token) {
            shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(token);
        }
    }

    /// Adds a verified token; a full shard first drops an arbitrary entry (the map's
    /// iteration order is randomized, so no caller can pick which).
    pub(crate) fn insert(&self, token: &str, entry: Entry) {
        let Some(shard) = self.shard(token) else {
            return;
        };
        let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.per_shard
            && let Some(victim) = shard.keys().next().cloned()
        {
            shard.remove(&victim);
        }
        shard.insert(Box::from(token), entry);
    }
}
