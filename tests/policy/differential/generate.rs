//! A seeded generator of Cedar worlds: a schema (or none), static entities, a policy set and
//! requests with their own entities, built to hit the corners of scope indexing and entity
//! slicing: every scope form, action groups, conditions that dereference attributes, tags,
//! entity literals and context entities, conditions that error, static entities whose parents
//! are request entities, request entities that duplicate static ones (equal or not), dangling
//! references and cycles through request entities.

use serde_json::{Value, json};

/// splitmix64: small, fast and good enough to spread cases; the seed reproduces a case.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Groups 0..5: a DAG among static groups (a group's parents have higher numbers); groups 4
/// and 5 are never static, so they are dangling parents or request entities.
const GROUPS: usize = 6;
const USERS: usize = 5;
const DOCS: usize = 4;
const FOLDERS: usize = 3;
const ACTIONS: usize = 4;
const ACTION_GROUPS: usize = 2;

pub(crate) fn group(i: usize) -> String {
    format!(r#"Group::"g{i}""#)
}
pub(crate) fn user(i: usize) -> String {
    format!(r#"User::"u{i}""#)
}
pub(crate) fn doc(i: usize) -> String {
    format!(r#"Doc::"d{i}""#)
}
pub(crate) fn folder(i: usize) -> String {
    format!(r#"Folder::"f{i}""#)
}
pub(crate) fn action(i: usize) -> String {
    format!(r#"Action::"a{i}""#)
}
pub(crate) fn action_group(i: usize) -> String {
    format!(r#"Action::"ag{i}""#)
}

fn uid_json(text: &str) -> Value {
    let (type_name, rest) = text.split_once("::").unwrap();
    json!({"type": type_name, "id": rest.trim_matches('"')})
}

fn entity_ref(text: &str) -> Value {
    json!({"__entity": uid_json(text)})
}

/// One generated world.
pub(crate) struct World {
    pub(crate) schema: Option<String>,
    /// Static entities, Cedar entities JSON.
    pub(crate) entities: Vec<Value>,
    /// `@id`-annotated policies, one per item.
    pub(crate) policies: Vec<String>,
    pub(crate) requests: Vec<GenRequest>,
}

pub(crate) struct GenRequest {
    pub(crate) principal: String,
    pub(crate) action: String,
    pub(crate) resource: String,
    pub(crate) context: Value,
    /// The request's entities, Cedar entities JSON.
    pub(crate) entities: Vec<Value>,
    /// An entity of `entities` copied from a static one, whose parents are to be replaced
    /// by the static entity's ancestors (so that it is structurally equal to it).
    pub(crate) closed_duplicate: Option<usize>,
}

/// Which action each action group holds, shared by the schema and the static entities.
fn action_parents(rng: &mut Rng) -> Vec<Vec<usize>> {
    (0..ACTIONS)
        .map(|_| (0..ACTION_GROUPS).filter(|_| rng.chance(45)).collect())
        .collect()
}

pub(crate) fn world(rng: &mut Rng) -> World {
    let with_schema = rng.chance(35);
    let tags = rng.chance(60);
    let memberships = action_parents(rng);
    let schema = with_schema.then(|| schema(rng, tags, &memberships));
    let entities = static_entities(rng, with_schema, tags, &memberships);
    let policies = (0..3 + rng.below(14)).map(|i| policy(rng, i)).collect();
    let mut requests: Vec<GenRequest> = (0..6).map(|_| request(rng, &entities, tags)).collect();
    // Requests that bring the same entities with other uids or context share the engine's
    // cached slice of the first: the cache must tell them apart exactly.
    for i in (1..requests.len()).step_by(2) {
        match rng.below(4) {
            0 | 1 => {
                requests[i].entities = requests[i - 1].entities.clone();
                requests[i].closed_duplicate = requests[i - 1].closed_duplicate;
            }
            // The same request but for one attribute of one of its entities.
            2 if !requests[i - 1].entities.is_empty() => {
                let (before, after) = requests.split_at_mut(i);
                let (first, second) = (&before[i - 1], &mut after[0]);
                second.principal = first.principal.clone();
                second.action = first.action.clone();
                second.resource = first.resource.clone();
                second.context = first.context.clone();
                second.entities = first.entities.clone();
                second.closed_duplicate = None;
                let changed = rng.below(second.entities.len());
                second.entities[changed]["attrs"]["level"] = json!(5 + rng.below(3));
            }
            _ => {}
        }
    }
    World {
        schema,
        entities,
        policies,
        requests,
    }
}

fn schema(rng: &mut Rng, tags: bool, memberships: &[Vec<usize>]) -> String {
    let tags = if tags { " tags Long" } else { "" };
    let mut text = format!(
        "entity Group in [Group] {{ level?: Long }};\n\
         entity User in [Group] {{ level?: Long, friend?: User }};\n\
         entity Folder in [Folder];\n\
         entity Doc in [Folder] {{ owner?: User, level?: Long }}{tags};\n"
    );
    for g in 0..ACTION_GROUPS {
        text.push_str(&format!("action ag{g};\n"));
    }
    for (a, groups) in memberships.iter().enumerate() {
        let member_of = if groups.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = groups.iter().map(|g| format!("ag{g}")).collect();
            format!(" in [{}]", names.join(", "))
        };
        let principals = if rng.chance(70) {
            "User, Group"
        } else {
            "User"
        };
        text.push_str(&format!(
            "action a{a}{member_of} appliesTo {{ principal: [{principals}], resource: [Doc, Folder], context: {{ k?: Long, who?: User }} }};\n"
        ));
    }
    text
}

fn entity(uid: &str, attrs: Value, parents: Vec<String>, tags: Option<Value>) -> Value {
    let parents: Vec<Value> = parents.iter().map(|p| uid_json(p)).collect();
    let mut item = json!({"uid": uid_json(uid), "attrs": attrs, "parents": parents});
    if let Some(tags) = tags {
        item["tags"] = tags;
    }
    item
}

fn user_attrs(rng: &mut Rng) -> Value {
    let mut attrs = json!({});
    if rng.chance(70) {
        attrs["level"] = json!(rng.below(4));
    }
    if rng.chance(40) {
        // Users 0..5, and u7 which never exists: a dangling reference.
        let friend = if rng.chance(20) { 7 } else { rng.below(USERS) };
        attrs["friend"] = entity_ref(&user(friend));
    }
    attrs
}

fn doc_attrs(rng: &mut Rng) -> Value {
    let mut attrs = json!({});
    if rng.chance(75) {
        let owner = if rng.chance(15) { 7 } else { rng.below(USERS) };
        attrs["owner"] = entity_ref(&user(owner));
    }
    if rng.chance(50) {
        attrs["level"] = json!(rng.below(4));
    }
    attrs
}

fn static_entities(
    rng: &mut Rng,
    with_schema: bool,
    tags: bool,
    memberships: &[Vec<usize>],
) -> Vec<Value> {
    let mut out = Vec::new();
    for g in 0..GROUPS - 2 {
        if rng.chance(80) {
            // Parents with higher numbers keep the static hierarchy acyclic; 4 and 5 are
            // never static, so they dangle until a request brings them.
            let parents = (g + 1..GROUPS)
                .filter(|_| rng.chance(35))
                .map(group)
                .collect();
            let attrs = if rng.chance(50) {
                json!({"level": rng.below(4)})
            } else {
                json!({})
            };
            out.push(entity(&group(g), attrs, parents, None));
        }
    }
    for u in 0..USERS {
        if rng.chance(60) {
            let parents = (0..GROUPS).filter(|_| rng.chance(30)).map(group).collect();
            out.push(entity(&user(u), user_attrs(rng), parents, None));
        }
    }
    for f in 0..FOLDERS {
        if rng.chance(70) {
            let parents = (f + 1..FOLDERS + 1)
                .filter(|_| rng.chance(40))
                .map(folder)
                .collect();
            out.push(entity(&folder(f), json!({}), parents, None));
        }
    }
    for d in 0..DOCS {
        if rng.chance(70) {
            let parents = (0..FOLDERS + 1)
                .filter(|_| rng.chance(40))
                .map(folder)
                .collect();
            let tags = (tags && rng.chance(60)).then(|| json!({"t": rng.below(3)}));
            out.push(entity(&doc(d), doc_attrs(rng), parents, tags));
        }
    }
    if !with_schema {
        // Without a schema the action hierarchy comes from the entities.
        for (a, groups) in memberships.iter().enumerate() {
            let parents = groups.iter().map(|&g| action_group(g)).collect();
            out.push(entity(&action(a), json!({}), parents, None));
        }
        for g in 0..ACTION_GROUPS {
            out.push(entity(&action_group(g), json!({}), Vec::new(), None));
        }
    }
    out
}

fn principal_scope(rng: &mut Rng) -> String {
    match rng.below(7) {
        0 | 1 => "principal".to_owned(),
        2 => format!("principal == {}", user(rng.below(USERS))),
        3 => format!("principal in {}", group(rng.below(GROUPS))),
        4 => "principal is User".to_owned(),
        5 => format!("principal is User in {}", group(rng.below(GROUPS))),
        _ => format!("principal in {}", user(rng.below(USERS))),
    }
}

fn action_scope(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => "action".to_owned(),
        1 | 2 => format!("action == {}", action(rng.below(ACTIONS))),
        3 => format!("action in {}", action_group(rng.below(ACTION_GROUPS))),
        4 => format!(
            "action in [{}, {}]",
            action(rng.below(ACTIONS)),
            action_group(rng.below(ACTION_GROUPS))
        ),
        _ => "action in []".to_owned(),
    }
}

fn resource_scope(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 | 1 => "resource".to_owned(),
        2 => format!("resource == {}", doc(rng.below(DOCS))),
        3 => format!("resource in {}", folder(rng.below(FOLDERS + 1))),
        4 => "resource is Doc".to_owned(),
        _ => format!("resource is Doc in {}", folder(rng.below(FOLDERS + 1))),
    }
}

/// A condition; many of them error on some requests (missing attributes or entities).
fn condition(rng: &mut Rng, depth: usize) -> String {
    if depth > 0 && rng.chance(30) {
        let left = condition(rng, depth - 1);
        let right = condition(rng, depth - 1);
        return match rng.below(3) {
            0 => format!("({left} && {right})"),
            1 => format!("({left} || {right})"),
            _ => format!("!({left})"),
        };
    }
    let n = rng.below(3);
    match rng.below(20) {
        0 => format!("principal.level > {n}"),
        1 => "principal has level".to_owned(),
        2 => "resource.owner == principal".to_owned(),
        3 => format!("resource.owner.level >= {n}"),
        4 => "principal in resource.owner".to_owned(),
        5 => format!("context.k == {n}"),
        6 => format!("context has who && context.who.level > {n}"),
        7 => format!("{}.level > {n}", user(rng.below(USERS + 3))),
        8 => format!(
            "{} in {}",
            group(rng.below(GROUPS)),
            group(rng.below(GROUPS))
        ),
        9 => format!(
            "principal in [{}, {}]",
            group(rng.below(GROUPS)),
            user(rng.below(USERS))
        ),
        10 => format!("resource.hasTag(\"t\") && resource.getTag(\"t\") == {n}"),
        11 => format!("principal.friend in {}", group(rng.below(GROUPS))),
        12 => format!("(if principal has friend then principal.friend.level > {n} else false)"),
        13 => format!("action in {}", action_group(rng.below(ACTION_GROUPS))),
        14 => "principal is User".to_owned(),
        15 => format!("resource.owner.friend in {}", group(rng.below(GROUPS))),
        16 => format!("context.who in {}", group(rng.below(GROUPS))),
        17 => format!("{}.friend == principal", user(rng.below(USERS))),
        18 => format!("resource.level < principal.level + {n}"),
        _ => "true".to_owned(),
    }
}

fn policy(rng: &mut Rng, i: usize) -> String {
    let effect = if rng.chance(65) { "permit" } else { "forbid" };
    let mut text = format!(
        "@id(\"p{i}\") {effect}({}, {}, {})",
        principal_scope(rng),
        action_scope(rng),
        resource_scope(rng)
    );
    for _ in 0..rng.below(3) {
        let kind = if rng.chance(70) { "when" } else { "unless" };
        text.push_str(&format!(" {kind} {{ {} }}", condition(rng, 2)));
    }
    text.push(';');
    text
}

fn request(rng: &mut Rng, statics: &[Value], tags: bool) -> GenRequest {
    let principal = match rng.below(10) {
        0 => group(rng.below(GROUPS)),
        1 => user(7),
        _ => user(rng.below(USERS + 2)),
    };
    let action = match rng.below(10) {
        0 => action_group(rng.below(ACTION_GROUPS)),
        1 => r#"Action::"unknown""#.to_owned(),
        _ => action(rng.below(ACTIONS)),
    };
    let resource = if rng.chance(80) {
        doc(rng.below(DOCS))
    } else {
        folder(rng.below(FOLDERS))
    };
    let mut context = json!({});
    if rng.chance(50) {
        context["k"] = json!(rng.below(3));
    }
    if rng.chance(40) {
        context["who"] = entity_ref(&user(rng.below(USERS + 1)));
    }
    let mut entities = Vec::new();
    let mut closed_duplicate = None;
    // A request entity of the same uid as a static one is mostly refused (unless equal), so
    // static principals and resources rarely come with the request.
    let is_static = |text: &str| statics.iter().any(|item| item["uid"] == uid_json(text));
    let bring = |rng: &mut Rng, text: &str| rng.chance(if is_static(text) { 8 } else { 80 });
    if bring(rng, &principal) && principal.starts_with("User") {
        let parents = (0..GROUPS).filter(|_| rng.chance(30)).map(group).collect();
        entities.push(entity(&principal, user_attrs(rng), parents, None));
    }
    if bring(rng, &resource) && resource.starts_with("Doc") {
        let parents = (0..FOLDERS + 1)
            .filter(|_| rng.chance(40))
            .map(folder)
            .collect();
        let tags = (tags && rng.chance(50)).then(|| json!({"t": rng.below(3)}));
        entities.push(entity(&resource, doc_attrs(rng), parents, tags));
    }
    if rng.chance(40) {
        // Groups 4 and 5 are never static: static entities may name them as parents, and
        // a request bringing one extends those entities' ancestors through it; a parent
        // among the static groups can close a cycle.
        let g = GROUPS - 1 - rng.below(2);
        let parents = (0..GROUPS)
            .filter(|&p| p != g && rng.chance(20))
            .map(group)
            .collect();
        entities.push(entity(&group(g), json!({}), parents, None));
    }
    if rng.chance(20) && !statics.is_empty() {
        // A duplicate of a static entity: the same (kept) or changed (refused).
        let mut copy = rng.pick(statics).clone();
        match rng.below(3) {
            0 => copy["attrs"]["level"] = json!(9),
            1 => closed_duplicate = Some(entities.len()),
            _ => {}
        }
        entities.push(copy);
    }
    if rng.chance(10) {
        // A user referring to a request entity through an attribute.
        let mut attrs = user_attrs(rng);
        attrs["friend"] = entity_ref(&user(6));
        entities.push(entity(&user(5), attrs, vec![group(GROUPS - 1)], None));
        entities.push(entity(&user(6), json!({"level": 2}), vec![group(0)], None));
    }
    if rng.chance(15) {
        let copy = entities.last().cloned();
        entities.extend(copy);
    }
    GenRequest {
        principal,
        action,
        resource,
        context,
        entities,
        closed_duplicate,
    }
}
