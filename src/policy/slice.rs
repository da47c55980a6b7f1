//! A request's entities decided without copying the static store: each request that brings
//! entities is evaluated against a small entity store, its *slice*, that holds every entity
//! the evaluation can read, with exactly the ancestors it has in the static store merged
//! with the request's entities.
//!
//! # Why the slice decides as the merged store does
//!
//! Cedar's `Authorizer` needs a concrete `Entities`, a map from uid to entity whose ancestor
//! sets are transitively closed. Merging the request's entities into the static store (what
//! `Entities::add_entities` does) costs a copy of the map and a repair of the closure, which
//! grows with the store. An evaluation, though, reads an entity only through an attribute or
//! tag access or the left side of `in` (see `reach.rs`), so a store that holds every entity
//! the evaluation can reach, each with its merged ancestors, gives the same results, errors
//! included: an entity missing from the slice is missing from the merged store too.
//!
//! The slice holds:
//! - the principal, action and resource; the entity literals that the evaluated policies'
//!   conditions may dereference; the entity uids in the context when a condition reads it;
//!   and, transitively, every entity uid held in an attribute or tag of an entity in the
//!   slice (precomputed per static entity when the store is loaded);
//! - every request entity, whether reachable or not, and the static parents of each (with
//!   what their attributes hold: one rule for every entity keeps the slice simple, and more
//!   entities never change a result).
//!
//! Ancestors: the static store is closed (its closure also lists parents that are not static
//! entities). Merging can only add ancestors through request entities, and every request
//! entity is in the slice with its static parents, each carrying its closed ancestors, so
//! closing the slice gives each of its entities the ancestors it has in the merged store. This
//! covers a static entity whose parent is a request entity: its closure names that entity,
//! which is in the slice, and Cedar's closure of the slice extends through it, as the merge
//! would. A cycle in the merged hierarchy passes through a request entity, so it is in the
//! slice too, and closing the slice refuses it as the merge would.
//!
//! Duplicates: Cedar keeps an entity already in the store when an added one is structurally
//! equal to it (same attributes, tags and ancestor set, compared before closure) and refuses
//! any other entity with the same uid. The slice applies the same rule in the same order,
//! request entity by request entity, against the static store and the earlier request
//! entities. With a schema, every request entity is checked against it, as the merge does.
//!
//! # Cost and reuse
//!
//! Building a slice costs what the request's entities and the entities reachable from them
//! hold, never the size of the store. The part that depends only on the request's entities
//! and its principal, action and resource (checks, closure, the scope variables' reach) is
//! kept per distinct request in a bounded cache of the loaded set, keyed by the content of
//! the request's entities, so a caller seen before costs two hash lookups and a comparison;
//! a reload starts a new cache with the new store.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use cedar_policy::{Entities, Entity, EntityUid, Schema};

use super::cache::Bounded;
use super::reach::entity_refs;

/// The static entities of a loaded set, with the entity uids each one's attributes and tags
/// hold, and the slices of recent requests.
#[derive(Debug)]
pub(crate) struct StaticEntities {
    entities: Entities,
    /// Only entities whose attributes or tags hold entity uids are listed.
    refs: HashMap<EntityUid, Box<[EntityUid]>>,
    cache: Bounded<SliceKey, Entities>,
}

impl StaticEntities {
    pub(crate) fn new(entities: Entities) -> Self {
        let refs = entities
            .iter()
            .filter_map(|entity| {
                let refs = entity_refs(entity);
                (!refs.is_empty()).then(|| (entity.uid(), refs.into_boxed_slice()))
            })
            .collect();
        Self {
            entities,
            refs,
            cache: Bounded::new(),
        }
    }

    /// The whole store, for requests that bring no entities.
    pub(crate) fn entities(&self) -> &Entities {
        &self.entities
    }

    /// The slice for a request that brings `added` and names `uids` (principal, action,
    /// resource): the request's entities checked and merged as the whole store would merge
    /// them, with everything the scope variables reach.
    ///
    /// # Errors
    /// Cedar's message when an entity does not conform to the schema, conflicts with a
    /// static entity or another request entity, or makes the hierarchy cyclic.
    pub(crate) fn slice(
        &self,
        added: Vec<Entity>,
        uids: [&EntityUid; 3],
        schema: Option<&Schema>,
    ) -> Result<Arc<Entities>, String> {
        let key = SliceKey {
            entities: added.into_iter().map(ByContent).collect(),
            uids: uids.map(Clone::clone),
        };
        if let Some(slice) = self.cache.get(&key) {
            return Ok(slice);
        }
        let mut slicer = Slicer::new(self, &key.entities, schema)?;
        slicer.pending.extend(key.uids.iter().cloned());
        slicer.drain(None);
        let slice =
            Arc::new(Entities::from_entities(slicer.picked, None).map_err(|e| e.to_string())?);
        let weight = slice.len() + key.entities.len();
        self.cache.insert(key, slice.clone(), weight);
        Ok(slice)
    }

    /// `slice` with the entities `uids` reach that it does not hold yet, or `None` when it
    /// holds them all.
    ///
    /// # Errors
    /// Cedar's message if closing the wider slice fails (it cannot: the entities added are
    /// static and the slice already holds every request entity).
    pub(crate) fn widen<'u>(
        &self,
        slice: &Entities,
        uids: impl IntoIterator<Item = &'u EntityUid>,
    ) -> Result<Option<Entities>, String> {
        let mut slicer = Slicer {
            store: self,
            seen: HashSet::new(),
            picked: Vec::new(),
            pending: uids.into_iter().cloned().collect(),
        };
        slicer.drain(Some(slice));
        if slicer.picked.is_empty() {
            return Ok(None);
        }
        slice
            .clone()
            .add_entities(slicer.picked, None)
            .map(Some)
            .map_err(|e| e.to_string())
    }
}

/// What a slice of the scope variables depends on besides the loaded set.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SliceKey {
    entities: Vec<ByContent>,
    uids: [EntityUid; 3],
}

/// An entity compared by content: uid, attributes, tags and ancestors, which for a request
/// entity are its parents (cedar-policy's own equality compares uids only).
#[derive(Debug)]
struct ByContent(Entity);

impl PartialEq for ByContent {
    fn eq(&self, other: &Self) -> bool {
        self.0.deep_eq(&other.0)
    }
}

impl Eq for ByContent {}

impl Hash for ByContent {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.uid().hash(state);
    }
}

/// Collects the entities of one slice.
struct Slicer<'s> {
    store: &'s StaticEntities,
    /// Uids looked at.
    seen: HashSet<EntityUid>,
    /// Entities reached.
    picked: Vec<Entity>,
    /// Uids to look at.
    pending: Vec<EntityUid>,
}

impl<'s> Slicer<'s> {
    /// Checks the request's entities as merging them into the store would (schema,
    /// duplicates, cycles among them) and starts a slice with those that are not static
    /// ones, their ancestors and what their attributes and tags hold.
    fn new(
        store: &'s StaticEntities,
        added: &[ByContent],
        schema: Option<&Schema>,
    ) -> Result<Self, String> {
        // Merging checks each entity against the schema and refuses duplicates and cycles
        // among the request's entities; closing them alone does the same, and gives each
        // one's ancestors among them and its parents.
        let closed = Entities::empty()
            .add_entities(added.iter().map(|entity| entity.0.clone()), schema)
            .map_err(|e| e.to_string())?;
        let mut slicer = Self {
            store,
            seen: HashSet::new(),
            picked: Vec::new(),
            pending: Vec::new(),
        };
        let mut request: HashMap<EntityUid, usize> = HashMap::new();
        for ByContent(entity) in added {
            let uid = entity.uid();
            let occupant = store
                .entities
                .get(&uid)
                .or_else(|| request.get(&uid).and_then(|&i| slicer.picked.get(i)));
            match occupant {
                Some(occupant) if occupant.deep_eq(entity) => {}
                Some(_) => return Err(format!("duplicate entity entry `{uid}`")),
                None => {
                    let ancestors = closed.ancestors(&uid).into_iter().flatten();
                    slicer.pending.extend(ancestors.cloned());
                    slicer.pending.extend(entity_refs(entity));
                    slicer.seen.insert(uid.clone());
                    request.insert(uid, slicer.picked.len());
                    slicer.picked.push(entity.clone());
                }
            }
        }
        Ok(slicer)
    }

    /// Picks the static entities of the pending uids and of every uid their attributes and
    /// tags lead to, except those `held` already.
    fn drain(&mut self, held: Option<&Entities>) {
        while let Some(uid) = self.pending.pop() {
            if held.is_some_and(|held| held.get(&uid).is_some()) || !self.seen.insert(uid.clone()) {
                continue;
            }
            if let Some(entity) = self.store.entities.get(&uid) {
                self.picked.push(entity.clone());
            }
            if let Some(refs) = self.store.refs.get(&uid) {
                self.pending.extend(refs.iter().cloned());
            }
        }
    }
}
