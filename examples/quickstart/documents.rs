//! The service's data: two documents and their owners, and the Cedar entities the policies
//! read about them.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::response::Response;
use http::StatusCode;
use http::header::{CONTENT_TYPE, HeaderValue};
use meshguard::policy::{Entities, Entity, EntityUid};
use serde_json::{Value, json};

use crate::BoxError;

/// The documents, and the Cedar actions the handlers ask the policies about.
#[derive(Clone)]
pub(crate) struct Store {
    documents: Arc<Mutex<BTreeMap<String, Document>>>,
    /// `Action::"read"`.
    pub(crate) read: EntityUid,
    /// `Action::"delete"`.
    pub(crate) delete: EntityUid,
}

/// A document, and what the policies know of it.
#[derive(Clone)]
pub(crate) struct Document {
    id: &'static str,
    title: &'static str,
    owner: &'static str,
    /// `Document::"<id>"`.
    pub(crate) uid: EntityUid,
    /// The document as a Cedar entity, with its owner as an attribute.
    entity: Entity,
}

impl Store {
    pub(crate) fn new() -> Result<Self, BoxError> {
        let mut documents = BTreeMap::new();
        for (id, title, owner) in [
            ("d1", "Alice's notes", "alice"),
            ("d2", "Bob's plans", "bob"),
        ] {
            let uid = EntityUid::new("Document", id)?;
            let owner_uid = json!({ "__entity": { "type": "User", "id": owner } });
            let entity = Entity::builder(uid.clone())
                .attribute("owner", &owner_uid)?
                .build()?;
            let document = Document {
                id,
                title,
                owner,
                uid,
                entity,
            };
            documents.insert(id.to_owned(), document);
        }
        Ok(Self {
            documents: Arc::new(Mutex::new(documents)),
            read: EntityUid::new("Action", "read")?,
            delete: EntityUid::new("Action", "delete")?,
        })
    }

    /// The document `id`, if there is one.
    pub(crate) fn get(&self, id: &str) -> Option<Document> {
        self.documents().get(id).cloned()
    }

    /// Every document, as JSON.
    pub(crate) fn list(&self) -> Value {
        self.documents().values().map(Document::json).collect()
    }

    pub(crate) fn remove(&self, id: &str) {
        self.documents().remove(id);
    }

    fn documents(&self) -> MutexGuard<'_, BTreeMap<String, Document>> {
        // The map is valid after any panic of a holder: entries are replaced whole.
        self.documents
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Document {
    pub(crate) fn json(&self) -> Value {
        json!({ "id": self.id, "title": self.title, "owner": self.owner })
    }

    /// What the policies may read about the document: the document itself.
    pub(crate) fn entities(&self) -> Entities {
        Entities::from_iter([self.entity.clone()])
    }
}

/// 404 for a document that does not exist.
pub(crate) fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({ "error": "no such document" }),
    )
}

/// 200 with `body`.
pub(crate) fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

/// A JSON response.
fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    let json = HeaderValue::from_static("application/json");
    response.headers_mut().insert(CONTENT_TYPE, json);
    response
}
