//! The optional decision cache: a request whose inputs equal, exactly, those of a request
//! decided shortly before under the same loaded set gets that decision again without
//! evaluating anything.
//!
//! # What the key holds, and why a hit decides as an evaluation would
//!
//! A decision depends on the loaded set (policies, shadow set, schema, static entities), the
//! request's principal, action and resource, its context and the entities it brings (the
//! principal's entity with its attributes and parents, what an
//! [`EntityProvider`](super::EntityProvider) added). The cache belongs to one loaded set and
//! is dropped with it, so a reload — the only way policies or static entities change —
//! retires every entry. The key holds everything else: the three uids, every request entity
//! (in order; built ones compared by content as the slice cache compares them, JSON ones
//! value for value with object members in order) and the context, of which it keeps the
//! names of all fields and the values of the fields the set's conditions can read (see
//! `reach::ContextFields`; every field when one reads the context whole).
//!
//! A field no condition reads cannot change an evaluation, but it can still make a request
//! invalid (a value with no Cedar equivalent, a type the schema refuses). So a hit is
//! returned only after the request's context has been built and checked exactly as an
//! evaluation builds it, and only decisions of requests that passed that check are kept.
//! Field names are kept because Cedar's error for a missing field lists those present.
//!
//! Entries are found by a 64-bit fingerprint of the key (SipHash with keys drawn per
//! cache) and returned only when the stored key equals the request's: two keys with the
//! same fingerprint replace each other, they never answer for each other. Contexts made
//! with [`cedar::from_context`](super::cedar::from_context) and values nested deeper than
//! [`MAX_DATA_NESTING`](super::MAX_DATA_NESTING) are decided without the cache.
//!
//! # Bounds
//!
//! Entries are spread over shards, each behind its own lock held for a map operation only.
//! A shard holds at most its share of the capacity and of the weight (JSON values in the
//! key, entities, policy ids and errors); when an entry would pass a bound, expired entries
//! go first, and if that frees less than half the shard, the whole shard.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::decision::Decision;
use super::reach::ContextFields;
use super::values::{Context, Entities, EntityUid};

/// Most shards of a cache: enough that cores rarely wait on each other.
const SHARDS: usize = 16;

/// Weight allowed per entry of capacity, by default.
const WEIGHT_PER_ENTRY: usize = 64;

/// How an engine keeps recent decisions: at most `capacity` of them, each for at most `ttl`.
///
/// # Example
/// ```
/// use std::time::Duration;
/// use meshguard::policy::{DecisionCacheConfig, PolicyEngine, PolicySource};
///
/// let engine = PolicyEngine::builder(PolicySource::text("permit(principal, action, resource);"))
///     .decision_cache(DecisionCacheConfig::new(10_000, Duration::from_secs(5)))
///     .build()?;
/// # let _ = engine;
/// # Ok::<(), meshguard::policy::PolicyError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct DecisionCacheConfig {
    capacity: usize,
    ttl: Duration,
    max_weight: usize,
}

impl DecisionCacheConfig {
    /// At most `capacity` decisions, each kept for at most `ttl`. A capacity of zero or a
    /// zero `ttl` keeps nothing.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            capacity,
            ttl,
            max_weight: capacity.saturating_mul(WEIGHT_PER_ENTRY),
        }
    }

    /// Most weight kept over all entries: one per JSON value (each array element and object
    /// member counts) in the kept context fields and request entities, one per built entity,
    /// determining policy and error. An entry heavier than a shard's share (the weight
    /// divided by the smaller of 16 and the capacity) is not kept. Defaults to 64 per entry
    /// of capacity.
    pub fn max_weight(mut self, weight: usize) -> Self {
        self.max_weight = weight;
        self
    }

    /// The capacity.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How long a decision is kept.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// The decisions of one loaded set.
#[derive(Debug)]
pub(crate) struct DecisionCache {
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    /// The context fields the set's conditions (enforced and shadow) can read.
    fields: ContextFields,
    ttl: Duration,
    shard_entries: usize,
    shard_weight: usize,
    clock: Ticks,
    /// Makes every fingerprint equal, to show that equal fingerprints never share a decision.
    #[cfg(test)]
    collide: bool,
}

/// What [`DecisionCache::look_up`] found.
pub(crate) enum Lookup {
    /// The request cannot be cached; decide it as usual.
    Uncacheable,
    /// Its decision, to be returned once the request's context checks out.
    Hit(Arc<Entry>),
    /// Not kept: decide it, then [`DecisionCache::insert`] with this key.
    Miss(Box<Key>),
}

/// A kept decision.
#[derive(Debug)]
pub(crate) struct Entry {
    key: Key,
    pub(crate) decision: Decision,
    expires: Duration,
    weight: usize,
}

/// Everything a decision depends on besides the loaded set.
#[derive(Debug)]
pub(crate) struct Key {
    fingerprint: u64,
    principal: EntityUid,
    action: EntityUid,
    resource: EntityUid,
    /// Every context field by name, in order, with its value when conditions can read it.
    context: Vec<(String, Option<Value>)>,
    entities: Entities,
    /// JSON values in the key.
    weight: usize,
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<u64, Arc<Entry>, BuildHasherDefault<Fingerprint>>,
    weight: usize,
}

impl DecisionCache {
    /// A cache for a set whose conditions read `fields` of the context; `None` when the
    /// configuration keeps nothing.
    pub(crate) fn new(config: &DecisionCacheConfig, fields: ContextFields) -> Option<Self> {
        if config.capacity == 0 || config.ttl.is_zero() {
            return None;
        }
        // No more shards than entries, and each shard's share rounded down, so that the
        // shards together never hold more than the capacity.
        let shards = config.capacity.min(SHARDS);
        Some(Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            fields,
            ttl: config.ttl,
            shard_entries: config.capacity / shards,
            shard_weight: config.max_weight / shards,
            clock: Ticks::Monotonic(Instant::now()),
            #[cfg(test)]
            collide: false,
        })
    }

    /// Finds the decision kept for this request, if any.
    pub(crate) fn look_up(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        context: &Context,
        entities: &Entities,
    ) -> Lookup {
        let Some(fields) = context.as_json() else {
            return Lookup::Uncacheable;
        };
        let mut hasher = self.hasher.build_hasher();
        (principal, action, resource).hash(&mut hasher);
        let Some(weight) = self.hash_parts(fields, entities, &mut hasher) else {
            return Lookup::Uncacheable;
        };
        let fingerprint = self.fingerprint(hasher.finish());
        let found = self
            .shard(fingerprint)
            .and_then(|shard| shard.entries.get(&fingerprint).cloned());
        if let Some(entry) = found
            && entry.expires > self.clock.now()
            && entry
                .key
                .matches(principal, action, resource, fields, &self.fields, entities)
        {
            return Lookup::Hit(entry);
        }
        Lookup::Miss(Box::new(Key {
            fingerprint,
            principal: principal.clone(),
            action: action.clone(),
            resource: resource.clone(),
            context: fields
                .iter()
                .map(|(name, value)| (name.clone(), self.reads(name).then(|| value.clone())))
                .collect(),
            entities: entities.clone(),
            weight,
        }))
    }

    /// Keeps `decision` under `key`, within the bounds.
    pub(crate) fn insert(&self, key: Box<Key>, decision: &Decision) {
        let weight = 1 + key.weight + decision.policy_ids().len() + decision.errors().len();
        if weight > self.shard_weight {
            return;
        }
        let now = self.clock.now();
        let fingerprint = key.fingerprint;
        let entry = Arc::new(Entry {
            key: *key,
            decision: decision.clone(),
            expires: now.saturating_add(self.ttl),
            weight,
        });
        let Some(mut shard) = self.shard(fingerprint) else {
            return;
        };
        if let Some(replaced) = shard.entries.remove(&fingerprint) {
            shard.weight -= replaced.weight;
        }
        if shard.entries.len() >= self.shard_entries || shard.weight + weight > self.shard_weight {
            shard.entries.retain(|_, entry| entry.expires > now);
            shard.weight = shard.entries.values().map(|entry| entry.weight).sum();
            if shard.entries.len() > self.shard_entries / 2 || shard.weight > self.shard_weight / 2
            {
                shard.entries.clear();
                shard.weight = 0;
            }
        }
        shard.weight += weight;
        shard.entries.insert(fingerprint, entry);
    }

    /// Whether conditions can read the field `name`.
    fn reads(&self, name: &str) -> bool {
        match &self.fields {
            ContextFields::Whole => true,
            ContextFields::Named(names) => names.contains(name),
        }
    }

    /// Hashes the context (names, and the values conditions read) and the entities; the
    /// weight of their JSON values, or `None` past the nesting bound.
    fn hash_parts(
        &self,
        context: &Map<String, Value>,
        entities: &Entities,
        hasher: &mut impl Hasher,
    ) -> Option<usize> {
        let mut weight = 0;
        context.len().hash(hasher);
        for (name, value) in context {
            name.hash(hasher);
            if self.reads(name) {
                weight += hash_value(value, hasher, super::MAX_DATA_NESTING)?;
            }
        }
        let (built, json) = entities.parts();
        built.len().hash(hasher);
        for entity in built {
            entity.uid().hash(hasher);
        }
        weight += built.len();
        json.len().hash(hasher);
        for value in json {
            weight += hash_value(value, hasher, super::MAX_DATA_NESTING)?;
        }
        Some(weight)
    }

    fn fingerprint(&self, hash: u64) -> u64 {
        #[cfg(test)]
        if self.collide {
            return 0;
        }
        hash
    }

    /// The shard of a fingerprint; `None` cannot happen (there is at least one shard).
    fn shard(&self, fingerprint: u64) -> Option<MutexGuard<'_, Shard>> {
        // The high bits pick the shard; the map's own hash uses the whole fingerprint.
        let index = usize::try_from(fingerprint >> 32).unwrap_or(0) % self.shards.len().max(1);
        // A shard is whole between operations, so a panic elsewhere cannot leave it torn.
        let shard = self.shards.get(index)?;
        Some(shard.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Key {
    /// Whether this key is the request's: uids, every context field name in order with the
    /// value of each field conditions read, and every entity.
    fn matches(
        &self,
        principal: &EntityUid,
        action: &EntityUid,
        resource: &EntityUid,
        context: &Map<String, Value>,
        fields: &ContextFields,
        entities: &Entities,
    ) -> bool {
        let read = |name: &str| match fields {
            ContextFields::Whole => true,
            ContextFields::Named(names) => names.contains(name),
        };
        self.principal == *principal
            && self.action == *action
            && self.resource == *resource
            && self.context.len() == context.len()
            && self
                .context
                .iter()
                .zip(context)
                .all(|((mine, kept), (name, value))| {
                    mine == name
                        && match kept {
                            Some(kept) => same(kept, value),
                            None => !read(name),
                        }
                })
            && same_entities(&self.entities, entities)
    }
}

/// The entities equal, in order: built ones by content, JSON ones value for value.
fn same_entities(mine: &Entities, theirs: &Entities) -> bool {
    let ((my_built, my_json), (their_built, their_json)) = (mine.parts(), theirs.parts());
    my_built.len() == their_built.len()
        && my_built.iter().zip(their_built).all(|(a, b)| a.deep_eq(b))
        && my_json.len() == their_json.len()
        && my_json.iter().zip(their_json).all(|(a, b)| same(a, b))
}

/// JSON equality that also compares the order of object members (serde_json's does not
/// when its members keep their order, and Cedar may report the first bad member it meets).
/// Only values [`hash_value`] accepted reach it, so the recursion is bounded.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
        }
        (Value::Array(_) | Value::Object(_), _) | (_, Value::Array(_) | Value::Object(_)) => false,
        (a, b) => a == b,
    }
}

/// Hashes a JSON value, members in order; its number of values, or `None` when it nests
/// more than `depth` levels.
fn hash_value(value: &Value, hasher: &mut impl Hasher, depth: usize) -> Option<usize> {
    match value {
        Value::Null => 0u8.hash(hasher),
        Value::Bool(b) => (1u8, b).hash(hasher),
        Value::Number(n) => {
            (2u8, n.as_u64(), n.as_i64(), n.as_f64().map(f64::to_bits)).hash(hasher)
        }
        Value::String(s) => (3u8, s).hash(hasher),
        Value::Array(items) => {
            let depth = depth.checked_sub(1)?;
            (4u8, items.len()).hash(hasher);
            let mut weight = 1;
            for item in items {
                weight += hash_value(item, hasher, depth)?;
            }
            return Some(weight);
        }
        Value::Object(members) => {
            let depth = depth.checked_sub(1)?;
            (5u8, members.len()).hash(hasher);
            let mut weight = 1;
            for (name, item) in members {
                name.hash(hasher);
                weight += hash_value(item, hasher, depth)?;
            }
            return Some(weight);
        }
    }
    Some(1)
}

/// A hasher that passes a fingerprint through: it is already a keyed hash.
#[derive(Debug, Default)]
struct Fingerprint(u64);

impl Hasher for Fingerprint {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// Where expiry times come from: a monotonic clock in use, a hand-moved one in tests.
#[derive(Debug)]
enum Ticks {
    Monotonic(Instant),
    #[cfg(test)]
    Manual(Arc<std::sync::atomic::AtomicU64>),
}

impl Ticks {
    /// Time since the cache was made.
    fn now(&self) -> Duration {
        match self {
            Self::Monotonic(origin) => origin.elapsed(),
            #[cfg(test)]
            Self::Manual(millis) => {
                Duration::from_millis(millis.load(std::sync::atomic::Ordering::Relaxed))
            }
        }
    }
}

#[cfg(test)]
#[path = "decisions_tests.rs"]
mod tests;
