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
//! - every request entity, whether reachable or not, and the static parents of each.
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

use std::collections::HashMap;

use cedar_policy::{Entities, Entity, EntityUid, Schema};

use super::reach::entity_refs;

/// The static entities of a loaded set, with the entity uids each one's attributes and tags
/// hold.
#[derive(Debug)]
pub(crate) struct StaticEntities {
    entities: Entities,
    /// Only entities whose attributes or tags hold entity uids are listed.
    refs: HashMap<EntityUid, Box<[EntityUid]>>,
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
        Self { entities, refs }
    }

    /// The whole store, for requests that bring no entities.
    pub(crate) fn entities(&self) -> &Entities {
        &self.entities
    }
}

/// Builds the slice of one request, in rounds: the entities reached since the last round
/// are added to the slice each time [`Slicer::entities`] is called.
pub(crate) struct Slicer<'s> {
    store: &'s StaticEntities,
    /// Uids looked at, and whether the uids their attributes and tags hold were followed.
    seen: HashMap<EntityUid, bool>,
    /// Entities reached and not yet added to the slice.
    picked: Vec<Entity>,
    /// Uids to look at, and whether to follow what their attributes and tags hold.
    pending: Vec<(EntityUid, bool)>,
}

impl<'s> Slicer<'s> {
    /// Checks the request's entities as merging them into the store would (schema,
    /// duplicates) and starts a slice with those that are not static ones, and the static
    /// parents of each.
    pub(crate) fn new(
        store: &'s StaticEntities,
        added: Vec<Entity>,
        schema: Option<&Schema>,
    ) -> Result<Self, String> {
        // Merging checks each entity against the schema and refuses duplicates and cycles
        // among the request's entities; closing them alone does the same, and gives each
        // one's ancestors among them and its parents.
        let closed = Entities::empty()
            .add_entities(added.iter().cloned(), schema)
            .map_err(|e| e.to_string())?;
        let mut slicer = Self {
            store,
            seen: HashMap::new(),
            picked: Vec::new(),
            pending: Vec::new(),
        };
        let mut request: HashMap<EntityUid, usize> = HashMap::new();
        for entity in added {
            let uid = entity.uid();
            let occupant = store
                .entities
                .get(&uid)
                .or_else(|| request.get(&uid).and_then(|&i| slicer.picked.get(i)));
            match occupant {
                Some(occupant) if occupant.deep_eq(&entity) => {}
                Some(_) => return Err(format!("duplicate entity entry `{uid}`")),
                None => {
                    let ancestors = closed.ancestors(&uid).into_iter().flatten();
                    slicer
                        .pending
                        .extend(ancestors.map(|uid| (uid.clone(), false)));
                    slicer
                        .pending
                        .extend(entity_refs(&entity).into_iter().map(|uid| (uid, true)));
                    slicer.seen.insert(uid.clone(), true);
                    request.insert(uid, slicer.picked.len());
                    slicer.picked.push(entity);
                }
            }
        }
        Ok(slicer)
    }

    /// Puts the entities of `uids` in the slice, with every entity their attributes and tags
    /// lead to.
    pub(crate) fn reach<'u>(&mut self, uids: impl IntoIterator<Item = &'u EntityUid>) {
        self.pending
            .extend(uids.into_iter().map(|uid| (uid.clone(), true)));
    }

    /// The slice so far: `base` (the slice of the previous round) with the entities reached
    /// since, closed.
    ///
    /// # Errors
    /// Cedar's message when the request's entities make the hierarchy cyclic.
    pub(crate) fn entities(&mut self, base: Option<Entities>) -> Result<Entities, String> {
        self.drain();
        let picked = std::mem::take(&mut self.picked);
        match base {
            None => Entities::from_entities(picked, None),
            Some(base) if picked.is_empty() => Ok(base),
            Some(base) => base.add_entities(picked, None),
        }
        .map_err(|e| e.to_string())
    }

    fn drain(&mut self) {
        while let Some((uid, follow)) = self.pending.pop() {
            let before = self.seen.get(&uid).copied();
            if before == Some(true) || (before.is_some() && !follow) {
                continue;
            }
            if before.is_none()
                && let Some(entity) = self.store.entities.get(&uid)
            {
                self.picked.push(entity.clone());
            }
            if follow && let Some(refs) = self.store.refs.get(&uid) {
                self.pending
                    .extend(refs.iter().map(|uid| (uid.clone(), true)));
            }
            self.seen.insert(uid, follow);
        }
    }
}
