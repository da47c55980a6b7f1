//! RFC 8693 token exchange: the inbound user's token traded at the authorization server for
//! one meant for the service called next, cached per subject token.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use http::HeaderValue;
use zeroize::Zeroizing;

use super::InboundBearer;
use super::cell::{Fetch, TokenCell};
use super::client_credentials::TokenSource;
use super::config::{Grant, grant_methods};
use super::destination::check_destination;
use super::endpoint::{Failure, TokenEndpoint};
use super::error::{OutgoingBuilderError, OutgoingError};
use super::response::IssuedToken;
use crate::token::client_auth::{ClientAuth, encode_into};

/// RFC 8693's grant type.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of the subject (an access token) and, by default, of the token asked for.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// How many subjects' exchanged tokens are kept: 10,000.
pub const DEFAULT_EXCHANGE_CACHE: usize = 10_000;

/// How inbound tokens are exchanged for tokens to the next service (RFC 8693).
///
/// Built with [`TokenExchange::new`]; name the target with [`audience`](Self::audience),
/// [`resource`](Self::resource) and/or [`scope`](Self::scope). The subject token is the
/// inbound request's [`InboundBearer`]; exchanged tokens are kept per subject token (by its
/// SHA-256; the audience, resource and scope are this configuration's), never past their
/// own expiry nor the subject's.
#[derive(Clone, Debug)]
pub struct TokenExchange {
    grant: Grant,
    requested_token_type: String,
    actor: Option<TokenSource>,
    capacity: usize,
}

impl TokenExchange {
    /// Exchanges at the token endpoint `endpoint`, authenticating as `auth`.
    pub fn new(endpoint: impl Into<String>, auth: ClientAuth) -> Self {
        TokenExchange {
            grant: Grant::new(endpoint.into(), auth),
            requested_token_type: ACCESS_TOKEN_TYPE.to_owned(),
            actor: None,
            capacity: DEFAULT_EXCHANGE_CACHE,
        }
    }

    /// Sends this service's own token from `actor` (client credentials) as the
    /// `actor_token`: the exchanged token then says this service acts for the user
    /// (delegation, RFC 8693 §1.1). Defaults to none (impersonation).
    pub fn actor(mut self, actor: TokenSource) -> Self {
        self.actor = Some(actor);
        self
    }

    /// The `requested_token_type`; the answer's `issued_token_type` must equal it. Defaults
    /// to [`ACCESS_TOKEN_TYPE`].
    pub fn requested_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.requested_token_type = token_type.into();
        self
    }

    /// How many subjects' tokens are kept; when full, the oldest go, and expired ones are
    /// swept out first once per `capacity` new subjects (so that making room costs a
    /// constant amortized time, not a pass over the cache per new subject). Defaults to
    /// [`DEFAULT_EXCHANGE_CACHE`].
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// Checks the endpoint and sets up the client.
    ///
    /// # Errors
    ///
    /// As [`ClientCredentials::build`](super::ClientCredentials::build).
    pub fn build(self) -> Result<TokenExchanger, OutgoingBuilderError> {
        let endpoint = TokenEndpoint::new(&self.grant.endpoint)?;
        Ok(TokenExchanger {
            inner: Arc::new(Inner {
                endpoint: Arc::new(endpoint),
                requested: Arc::from(self.requested_token_type.as_str()),
                config: self,
                cells: Mutex::new(Cells::default()),
            }),
        })
    }
}

grant_methods!(TokenExchange);

/// A [`TokenExchange`] after `build()`. Cloning is cheap and shares the cache.
#[derive(Clone)]
pub struct TokenExchanger {
    inner: Arc<Inner>,
}

struct Inner {
    config: TokenExchange,
    endpoint: Arc<TokenEndpoint>,
    requested: Arc<str>,
    cells: Mutex<Cells>,
}

/// The kept cells by subject-token hash, and their keys oldest first.
#[derive(Default)]
struct Cells {
    map: HashMap<[u8; 32], Arc<TokenCell>>,
    /// The keys of `map` in insertion order: always the same set as `map`'s.
    order: VecDeque<[u8; 32]>,
    /// Insertions since the last sweep of dead cells.
    since_sweep: usize,
}

impl Cells {
    /// Keeps `cell` for `key`, first making room below `capacity`: dead cells (by
    /// `is_live`) are swept out when full and at least `capacity` insertions came since the
    /// last sweep, so a sweep's pass over the map is paid once per `capacity` insertions;
    /// then the oldest go.
    fn insert(
        &mut self,
        key: [u8; 32],
        cell: Arc<TokenCell>,
        capacity: usize,
        mut is_live: impl FnMut(&TokenCell) -> bool,
    ) {
        if self.map.len() >= capacity && self.since_sweep >= capacity {
            self.since_sweep = 0;
            self.map.retain(|_, cell| is_live(cell));
            let map = &self.map;
            self.order.retain(|key| map.contains_key(key));
        }
        while self.map.len() >= capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&oldest);
        }
        self.since_sweep = self.since_sweep.saturating_add(1);
        self.map.insert(key, cell);
        self.order.push_back(key);
    }
}

impl TokenExchanger {
    /// The `Authorization` value of the token exchanged for `subject`, for a request to
    /// `destination`: for clients that are not tower services, such as reqwest.
    ///
    /// # Errors
    ///
    /// [`OutgoingError::Destination`] for a destination that is not `https://` (nor
    /// `http://` to loopback); otherwise as [`authorization_header`](Self::authorization_header).
    pub async fn authorization(
        &self,
        subject: &InboundBearer,
        destination: &str,
    ) -> Result<HeaderValue, OutgoingError> {
        check_destination(destination)?;
        self.authorization_header(subject).await
    }

    /// The `Authorization` value of the token exchanged for `subject`, without a
    /// destination to check.
    ///
    /// # Errors
    ///
    /// The endpoint's refusal or unavailability, an answer that is not a bearer token of
    /// the requested type, a back-off after a recent failure, the wait's timeout, or a
    /// subject token that already expired.
    pub async fn authorization_header(
        &self,
        subject: &InboundBearer,
    ) -> Result<HeaderValue, OutgoingError> {
        let cell = self.inner.cell(subject)?;
        if let Some(header) = cell.ready(|| self.inner.fetch(subject)) {
            return Ok(header);
        }
        cell.wait(self.inner.config.grant.wait, || self.inner.fetch(subject))
            .await
    }

    /// How many exchanges were started for the subjects whose tokens are kept now.
    pub fn fetches(&self) -> u64 {
        lock(&self.inner.cells)
            .map
            .values()
            .map(|cell| cell.fetches())
            .sum()
    }

    /// The header for `subject` without waiting, when a usable one is kept.
    pub(crate) fn ready(&self, subject: &InboundBearer) -> Option<HeaderValue> {
        let cell = self.inner.cell(subject).ok()?;
        cell.ready(|| self.inner.fetch(subject))
    }
}

impl Inner {
    /// The cell for `subject`: the kept one, or a new one in room made for it.
    fn cell(&self, subject: &InboundBearer) -> Result<Arc<TokenCell>, OutgoingError> {
        let clock = &self.config.grant.clock;
        let now = clock.unix_seconds();
        let not_after = subject.expires_at().unwrap_or(i64::MAX);
        if now >= not_after {
            return Err(OutgoingError::InboundExpired);
        }
        let mut cells = lock(&self.cells);
        if let Some(cell) = cells.map.get(subject.hash()) {
            return Ok(Arc::clone(cell));
        }
        let cell = TokenCell::new(Arc::clone(clock), not_after);
        cells.insert(
            *subject.hash(),
            Arc::clone(&cell),
            self.config.capacity,
            |cell| cell.is_live(now),
        );
        Ok(cell)
    }

    fn fetch(&self, subject: &InboundBearer) -> Fetch {
        let endpoint = Arc::clone(&self.endpoint);
        let requested = Arc::clone(&self.requested);
        let actor = self.config.actor.clone();
        let token = Arc::clone(subject.token());
        let mut form = self.config.grant.form(GRANT_TYPE, token.len());
        form.push_str("&subject_token=");
        encode_into(&token, &mut form);
        form.push_str("&subject_token_type=");
        encode_into(ACCESS_TOKEN_TYPE, &mut form);
        form.push_str("&requested_token_type=");
        encode_into(&requested, &mut form);
        Box::pin(exchange(endpoint, requested, actor, form))
    }
}

/// One exchange: the actor token added to `form` when there is an actor, the request, and
/// the issued type checked.
async fn exchange(
    endpoint: Arc<TokenEndpoint>,
    requested: Arc<str>,
    actor: Option<TokenSource>,
    mut form: Zeroizing<String>,
) -> Result<IssuedToken, Failure> {
    if let Some(actor) = actor {
        let header = actor.authorization_header().await?;
        let actor_token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or(OutgoingError::InvalidResponse(
                "the actor token is unreadable",
            ))?;
        form.push_str("&actor_token=");
        encode_into(actor_token, &mut form);
        form.push_str("&actor_token_type=");
        encode_into(ACCESS_TOKEN_TYPE, &mut form);
    }
    let issued = endpoint.request(form).await?;
    if issued.issued_token_type() != Some(&*requested) {
        return Err(Failure::from(OutgoingError::InvalidResponse(
            "`issued_token_type` is not the requested type",
        )));
    }
    Ok(issued)
}

impl fmt::Debug for TokenExchanger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchanger")
            .field("endpoint", &self.inner.endpoint.url().as_str())
            .field("auth", &self.inner.config.grant.endpoint.auth)
            .finish_non_exhaustive()
    }
}

/// The lock, even if a thread panicked holding it: the map stays consistent at every step.
fn lock(mutex: &Mutex<Cells>) -> MutexGuard<'_, Cells> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::SystemClock;

    fn key(n: usize) -> [u8; 32] {
        let mut key = [0; 32];
        key[..8].copy_from_slice(&n.to_le_bytes());
        key
    }

    #[test]
    fn making_room_costs_constant_amortized_time_and_the_oldest_go() {
        let capacity = 100;
        let inserts = 10_000;
        let mut cells = Cells::default();
        let mut checked = 0_usize;
        for n in 0..inserts {
            let cell = TokenCell::new(Arc::new(SystemClock), i64::MAX);
            cells.insert(key(n), cell, capacity, |_| {
                checked += 1;
                true
            });
        }
        // A sweep per insertion once full would check a million cells.
        assert!(checked <= 2 * inserts, "{checked} liveness checks");
        assert_eq!(cells.map.len(), capacity);
        assert_eq!(cells.order.len(), capacity);
        assert!((inserts - capacity..inserts).all(|n| cells.map.contains_key(&key(n))));
    }

    #[test]
    fn dead_cells_are_swept_before_live_ones_go() {
        let mut cells = Cells::default();
        let first = TokenCell::new(Arc::new(SystemClock), i64::MAX);
        cells.insert(key(0), Arc::clone(&first), 4, |_| true);
        for n in 1..4 {
            let cell = TokenCell::new(Arc::new(SystemClock), i64::MAX);
            cells.insert(key(n), cell, 4, |_| true);
        }
        // Full after 4 insertions: the sweep runs, and only the first cell is dead.
        let cell = TokenCell::new(Arc::new(SystemClock), i64::MAX);
        cells.insert(key(4), cell, 4, |cell| !std::ptr::eq(cell, &*first));
        assert!((1..=4).all(|n| cells.map.contains_key(&key(n))));
        assert_eq!(cells.map.len(), 4);
        assert_eq!(cells.order, (1..=4).map(key).collect::<VecDeque<_>>());
    }
}
