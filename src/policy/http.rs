//! From an HTTP or gRPC request to the action, resource and context Cedar decides on.
//!
//! The default mapping follows Cedar's HTTP conventions: the action is
//! `Action::"<METHOD> <route template>"` (such as `Action::"GET /orders/{id}"`), the resource
//! is `Application::"<service name>"`, and the context is
//!
//! | field | Cedar type | value |
//! | --- | --- | --- |
//! | `method` | `String` | `GET` |
//! | `path` | `String` | `/orders/42` |
//! | `path_params` | record of `String` | `{"id": "42"}`, percent-decoded |
//! | `query` | record of `String` | `{"expand": "items"}`, percent-decoded; a repeated name is an error |
//! | `client_ip` | `ipaddr` | the socket peer, or what a trusted proxy reported; only when known |
//! | `time` | `datetime` | the request's time, UTC, millisecond precision |
//!
//! With a schema, declare these fields in each action's context (`client_ip?: ipaddr`);
//! Cedar records are closed, so a query parameter that the schema does not declare makes
//! the request invalid (denied). Use [`HttpMapping::omit_query`] when policies don't look at
//! the query. For gRPC ([`HttpMapping::grpc`]) the action is the full method path
//! (`Action::"/shop.Orders/Get"`) and the context holds `service`, `method`, `time` and
//! `client_ip`. Anything else is a [`HttpMapping::custom`] closure away.
//!
//! # Example
//! ```
//! use std::time::{Duration, SystemTime};
//! use meshguard::policy::{HttpInput, HttpMapping};
//!
//! let request = http::Request::get("/orders/42?expand=items").body(())?;
//! let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let input = HttpInput::from_request(&request, now).with_route("/orders/{id}");
//! let mapped = HttpMapping::conventions("orders").map(&input)?;
//! assert_eq!(mapped.action().to_string(), r#"Action::"GET /orders/{id}""#);
//! assert_eq!(mapped.resource().to_string(), r#"Application::"orders""#);
//! let context = mapped.context().as_json().unwrap();
//! assert_eq!(context["path_params"]["id"], "42");
//! assert_eq!(context["query"]["expand"], "items");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::SystemTime;

use http::{HeaderMap, Method, Uri};
use serde_json::{Map, Value, json};

use super::engine::Request;
use super::values::{Context, EntityUid};
use crate::route::{PathError, RequestPath, Template, decode_all};

/// Longest request target (path and query) mapped: 8 KiB.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;
/// Most query parameters mapped.
pub const MAX_QUERY_PARAMETERS: usize = 64;

/// The parts of an HTTP request a mapping reads.
#[derive(Debug, Clone, Copy)]
pub struct HttpInput<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: Option<&'a HeaderMap>,
    route: Option<&'a str>,
    client_ip: Option<IpAddr>,
    now: SystemTime,
}

impl<'a> HttpInput<'a> {
    /// A request with this method and URI, received at `now`.
    #[must_use]
    pub fn new(method: &'a Method, uri: &'a Uri, now: SystemTime) -> Self {
        Self {
            method,
            uri,
            headers: None,
            route: None,
            client_ip: None,
            now,
        }
    }

    /// The method, URI and headers of `request`, received at `now`.
    #[must_use]
    pub fn from_request<B>(request: &'a http::Request<B>, now: SystemTime) -> Self {
        Self {
            headers: Some(request.headers()),
            ..Self::new(request.method(), request.uri(), now)
        }
    }

    /// The route template the router matched, such as `/orders/{id}` (axum's
    /// `MatchedPath`). Without one, the action uses the literal path.
    #[must_use]
    pub fn with_route(mut self, template: &'a str) -> Self {
        self.route = Some(template);
        self
    }

    /// The client's IP address. The guard gives the socket peer's address, or, when its
    /// [`PeerIdentityLayer`](crate::peer::PeerIdentityLayer) takes the
    /// [`client_address`](crate::peer::PeerIdentityLayer::client_address) from trusted
    /// proxies and the direct peer is one, the address that proxy reported (none when it
    /// named no client).
    #[must_use]
    pub fn with_client_ip(mut self, ip: IpAddr) -> Self {
        self.client_ip = Some(ip);
        self
    }

    /// The method.
    #[must_use]
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The URI.
    #[must_use]
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// The headers, when given.
    #[must_use]
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.headers
    }

    /// The route template, when given.
    #[must_use]
    pub fn route(&self) -> Option<&str> {
        self.route
    }

    /// The client IP, when given.
    #[must_use]
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.client_ip
    }

    /// When the request was received.
    #[must_use]
    pub fn now(&self) -> SystemTime {
        self.now
    }
}

/// The action, resource and context of a mapped request.
#[derive(Debug, Clone)]
pub struct MappedRequest {
    action: EntityUid,
    resource: EntityUid,
    context: Context,
}

impl MappedRequest {
    /// Assembles a mapped request (for custom mappings).
    #[must_use]
    pub fn new(action: EntityUid, resource: EntityUid, context: Context) -> Self {
        Self {
            action,
            resource,
            context,
        }
    }

    /// The action.
    #[must_use]
    pub fn action(&self) -> &EntityUid {
        &self.action
    }

    /// The resource.
    #[must_use]
    pub fn resource(&self) -> &EntityUid {
        &self.resource
    }

    /// The context.
    #[must_use]
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// The context, to add fields.
    pub fn context_mut(&mut self) -> &mut Context {
        &mut self.context
    }

    /// The engine request for this principal.
    #[must_use]
    pub fn into_request(self, principal: EntityUid) -> Request {
        Request::new(principal, self.action, self.resource).with_context(self.context)
    }

    /// Replaces the action, keeping resource and context.
    #[must_use]
    pub fn with_action(mut self, action: EntityUid) -> Self {
        self.action = action;
        self
    }

    /// The action, resource and context.
    #[must_use]
    pub fn into_parts(self) -> (EntityUid, EntityUid, Context) {
        (self.action, self.resource, self.context)
    }
}

/// Why a request could not be mapped; the request is then rejected as malformed (400) or
/// denied, never decided on a guess.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MappingError {
    /// The path has empty, `.` or `..` segments, which could make one resource look like
    /// another; or a gRPC path is not `/package.Service/Method`.
    #[error("request path is not canonical: {reason}")]
    InvalidPath {
        /// Why.
        reason: &'static str,
    },
    /// The path does not match the route template given.
    #[error("path does not match route template `{template}`")]
    RouteMismatch {
        /// The template.
        template: String,
    },
    /// A query parameter appears more than once; policies and handlers could read different
    /// values.
    #[error("query parameter `{name}` is repeated")]
    DuplicateQueryParameter {
        /// The (decoded) name.
        name: String,
    },
    /// More than [`MAX_QUERY_PARAMETERS`] query parameters, or a target longer than
    /// [`MAX_TARGET_BYTES`].
    #[error("request target too large")]
    TooLarge,
    /// Percent-encoding that is malformed or does not decode to UTF-8.
    #[error("malformed percent-encoding")]
    BadEncoding,
    /// The clock is before 1970 or after 9999.
    #[error("request time out of range")]
    TimeOutOfRange,
    /// A custom mapping failed.
    #[error("{message}")]
    Custom {
        /// Why.
        message: String,
    },
}

impl MappingError {
    /// A short, stable, machine-readable name of the error.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidPath { .. } => "invalid_path",
            Self::RouteMismatch { .. } => "route_mismatch",
            Self::DuplicateQueryParameter { .. } => "duplicate_query_parameter",
            Self::TooLarge => "too_large",
            Self::BadEncoding => "bad_encoding",
            Self::TimeOutOfRange => "time_out_of_range",
            Self::Custom { .. } => "custom",
        }
    }

    /// How the request is answered: 400 (gRPC INVALID_ARGUMENT) without a bearer challenge.
    #[must_use]
    pub fn refusal(&self) -> crate::response::Refusal {
        crate::response::Refusal::new(
            crate::response::Stage::Request,
            ::http::StatusCode::BAD_REQUEST,
            self.reason(),
            "the request cannot be mapped to a policy request",
        )
    }
}

type MapFn = dyn Fn(&HttpInput<'_>) -> Result<MappedRequest, MappingError> + Send + Sync;

/// How requests become Cedar actions, resources and contexts.
#[derive(Clone)]
pub struct HttpMapping(Repr);

#[derive(Clone)]
enum Repr {
    Conventions { resource: EntityUid, query: bool },
    Grpc { resource: EntityUid },
    Custom(Arc<MapFn>),
}

impl HttpMapping {
    /// Cedar's HTTP conventions for the service named `service` (see the module docs).
    #[must_use]
    pub fn conventions(service: &str) -> Self {
        Self(Repr::Conventions {
            resource: application(service),
            query: true,
        })
    }

    /// gRPC: the action is the full method path, such as `Action::"/shop.Orders/Get"`.
    #[must_use]
    pub fn grpc(service: &str) -> Self {
        Self(Repr::Grpc {
            resource: application(service),
        })
    }

    /// A mapping of your own; it may start from [`HttpMapping::conventions`]'s result.
    #[must_use]
    pub fn custom<F>(map: F) -> Self
    where
        F: Fn(&HttpInput<'_>) -> Result<MappedRequest, MappingError> + Send + Sync + 'static,
    {
        Self(Repr::Custom(Arc::new(map)))
    }

    /// Leaves the query out of the context (for schemas that do not declare it).
    /// Has no effect on gRPC and custom mappings.
    #[must_use]
    pub fn omit_query(mut self) -> Self {
        if let Repr::Conventions { query, .. } = &mut self.0 {
            *query = false;
        }
        self
    }

    /// Maps one request.
    ///
    /// # Errors
    /// Any [`MappingError`]: non-canonical paths, a path that does not match its route,
    /// repeated or too many query parameters, bad percent-encoding, or a custom failure.
    pub fn map(&self, input: &HttpInput<'_>) -> Result<MappedRequest, MappingError> {
        match &self.0 {
            Repr::Conventions { resource, query } => conventions(input, resource, *query),
            Repr::Grpc { resource } => grpc(input, resource),
            Repr::Custom(map) => map(input),
        }
    }
}

impl fmt::Debug for HttpMapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Conventions { resource, query } => f
                .debug_struct("Conventions")
                .field("resource", resource)
                .field("query", query)
                .finish(),
            Repr::Grpc { resource } => f.debug_struct("Grpc").field("resource", resource).finish(),
            Repr::Custom(_) => f.write_str("Custom"),
        }
    }
}

#[expect(
    clippy::expect_used,
    reason = "`Application` is a constant, valid Cedar type name and any string is a valid id"
)]
fn application(service: &str) -> EntityUid {
    EntityUid::new("Application", service).expect("valid type name")
}

fn conventions(
    input: &HttpInput<'_>,
    resource: &EntityUid,
    with_query: bool,
) -> Result<MappedRequest, MappingError> {
    check_target(input.uri)?;
    let path = RequestPath::parse(input.uri.path()).map_err(path_error)?;
    let decoded = path.decoded();
    let params = match input.route {
        Some(template) => path_params(template, &path)?,
        None => Map::new(),
    };
    let route = input.route.unwrap_or(&decoded);
    let method = policy_method(input.method);
    let action = action_uid(&format!("{method} {route}"));
    let mut context = Map::new();
    context.insert("method".to_owned(), json!(method));
    context.insert("path".to_owned(), json!(decoded));
    context.insert("path_params".to_owned(), Value::Object(params));
    if with_query {
        context.insert("query".to_owned(), Value::Object(query(input.uri.query())?));
    }
    common_context(input, &mut context)?;
    Ok(MappedRequest::new(
        action,
        resource.clone(),
        context_of(context),
    ))
}

/// The method policies see: HEAD is decided as GET, since routers answer HEAD with the GET
/// handler (its side effects run and its headers come back).
fn policy_method(method: &Method) -> &str {
    if *method == Method::HEAD {
        Method::GET.as_str()
    } else {
        method.as_str()
    }
}

fn path_error(error: PathError) -> MappingError {
    match error {
        PathError::BadEncoding => MappingError::BadEncoding,
        other => MappingError::InvalidPath {
            reason: other.describe(),
        },
    }
}

fn grpc(input: &HttpInput<'_>, resource: &EntityUid) -> Result<MappedRequest, MappingError> {
    let path = input.uri.path();
    check_target(input.uri)?;
    let not_grpc = MappingError::InvalidPath {
        reason: "a gRPC path is /package.Service/Method",
    };
    let (service, method) = path
        .strip_prefix('/')
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| not_grpc.clone())?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return Err(not_grpc);
    }
    let mut context = Map::new();
    context.insert("service".to_owned(), json!(service));
    context.insert("method".to_owned(), json!(method));
    common_context(input, &mut context)?;
    Ok(MappedRequest::new(
        action_uid(path),
        resource.clone(),
        context_of(context),
    ))
}

/// `Action`, parsed once: every mapped request names an action.
#[expect(
    clippy::expect_used,
    reason = "`Action` is a constant, valid Cedar type name"
)]
static ACTION: LazyLock<cedar_policy::EntityTypeName> =
    LazyLock::new(|| cedar_policy::EntityTypeName::from_str("Action").expect("valid type name"));

fn action_uid(id: &str) -> EntityUid {
    EntityUid::of_type(&ACTION, id)
}

fn context_of(fields: Map<String, Value>) -> Context {
    // A map is always an object, so this cannot fail; an empty context is the safe fallback.
    Context::from_json(Value::Object(fields)).unwrap_or_default()
}

fn common_context(
    input: &HttpInput<'_>,
    context: &mut Map<String, Value>,
) -> Result<(), MappingError> {
    if let Some(ip) = input.client_ip {
        context.insert(
            "client_ip".to_owned(),
            json!({"__extn": {"fn": "ip", "arg": ip.to_string()}}),
        );
    }
    context.insert(
        "time".to_owned(),
        json!({"__extn": {"fn": "datetime", "arg": rfc3339(input.now)?}}),
    );
    Ok(())
}

fn check_target(uri: &Uri) -> Result<(), MappingError> {
    let length = uri.path().len() + uri.query().map_or(0, str::len);
    if length > MAX_TARGET_BYTES {
        return Err(MappingError::TooLarge);
    }
    Ok(())
}

/// Matches a route template (`/orders/{id}`, `/files/{*rest}`) against the path, with the
/// parameters percent-decoded.
fn path_params(template: &str, path: &RequestPath<'_>) -> Result<Map<String, Value>, MappingError> {
    let mismatch = || MappingError::RouteMismatch {
        template: template.to_owned(),
    };
    let template = Template::parse_routed(template).ok_or_else(mismatch)?;
    let captures = template.captures(path).ok_or_else(mismatch)?;
    Ok(captures
        .into_iter()
        .map(|(name, value)| (name.to_owned(), Value::String(value)))
        .collect())
}

fn query(raw: Option<&str>) -> Result<Map<String, Value>, MappingError> {
    let mut out = Map::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        if out.len() >= MAX_QUERY_PARAMETERS {
            return Err(MappingError::TooLarge);
        }
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = percent_decode(&name.replace('+', " "))?;
        let value = percent_decode(&value.replace('+', " "))?;
        if out.contains_key(&name) {
            return Err(MappingError::DuplicateQueryParameter { name });
        }
        out.insert(name, Value::String(value));
    }
    Ok(out)
}

fn percent_decode(text: &str) -> Result<String, MappingError> {
    decode_all(text)
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| MappingError::BadEncoding)
}

/// `YYYY-MM-DDThh:mm:ss.sssZ`, the form Cedar's `datetime` accepts.
fn rfc3339(time: SystemTime) -> Result<String, MappingError> {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(|_| MappingError::TimeOutOfRange)?;
    let seconds = since.as_secs();
    let days = i64::try_from(seconds / 86_400).map_err(|_| MappingError::TimeOutOfRange)?;
    let (year, month, day) = civil_from_days(days);
    if year > 9999 {
        return Err(MappingError::TimeOutOfRange);
    }
    let of_day = seconds % 86_400;
    // Written digit by digit: `format!` was a fifth of mapping a request.
    let mut text = String::with_capacity(24);
    let year = u64::try_from(year).map_err(|_| MappingError::TimeOutOfRange)?;
    for (value, width, after) in [
        (year, 4, '-'),
        (u64::from(month), 2, '-'),
        (u64::from(day), 2, 'T'),
        (of_day / 3600, 2, ':'),
        (of_day % 3600 / 60, 2, ':'),
        (of_day % 60, 2, '.'),
        (u64::from(since.subsec_millis()), 3, 'Z'),
    ] {
        push_digits(&mut text, value, width);
        text.push(after);
    }
    Ok(text)
}

/// Pushes the last `width` decimal digits of `value`, zero-padded.
fn push_digits(out: &mut String, value: u64, width: u32) {
    for position in (0..width).rev() {
        let digit = value / 10u64.pow(position) % 10;
        out.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days` algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(seconds: u64, millis: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_millis(millis)
    }

    #[test]
    fn times_render_as_cedar_datetimes() {
        assert_eq!(rfc3339(at(0, 0)).unwrap(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(at(951_782_400, 5)).unwrap(),
            "2000-02-29T00:00:00.005Z"
        );
        assert_eq!(
            rfc3339(at(1_700_000_000, 0)).unwrap(),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            rfc3339(at(4_102_444_799, 999)).unwrap(),
            "2099-12-31T23:59:59.999Z"
        );
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH - Duration::from_secs(1)).unwrap_err(),
            MappingError::TimeOutOfRange
        );
        // Every field at every width, against the formatter, over 1970–9999.
        let mut seconds = 0u64;
        while seconds < 253_402_300_800 {
            let millis = seconds % 1000;
            let days = i64::try_from(seconds / 86_400).unwrap();
            let (year, month, day) = civil_from_days(days);
            let of_day = seconds % 86_400;
            let expected = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
                of_day / 3600,
                of_day % 3600 / 60,
                of_day % 60,
            );
            assert_eq!(rfc3339(at(seconds, millis)).unwrap(), expected);
            seconds += 7_919_993;
        }
        assert_eq!(
            rfc3339(at(253_402_300_800, 0)).unwrap_err(),
            MappingError::TimeOutOfRange
        );
    }

    #[test]
    fn percent_decoding_rejects_malformed_and_non_utf8() {
        assert_eq!(percent_decode("a%20b%2F").unwrap(), "a b/");
        for bad in ["%", "%2", "%zz", "%ff"] {
            assert_eq!(
                percent_decode(bad).unwrap_err(),
                MappingError::BadEncoding,
                "{bad}"
            );
        }
    }

    #[test]
    fn non_canonical_paths_are_rejected() {
        for bad in [
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/a/%2e%2E/b",
            "/a/%2f",
            "relative",
        ] {
            let error = path_error(RequestPath::parse(bad).unwrap_err());
            assert_eq!(error.reason(), "invalid_path", "{bad}");
        }
        assert_eq!(RequestPath::parse("/").unwrap().decoded(), "/");
        assert_eq!(RequestPath::parse("/a/.b/").unwrap().decoded(), "/a/.b/");
    }

    #[test]
    fn templates_match_segments() {
        let path = RequestPath::parse("/files/a%20b/c").unwrap();
        let params = path_params("/files/{*rest}", &path).unwrap();
        assert_eq!(params["rest"], "a b/c");
        for template in ["/files/{id}", "/other/{a}/{b}", "/files/{a}/{b}/{c}"] {
            assert_eq!(
                path_params(template, &path).unwrap_err().reason(),
                "route_mismatch",
                "{template}"
            );
        }
        assert_eq!(path_params("/files/{a}/{b}", &path).unwrap()["b"], "c");
    }

    #[test]
    fn query_parameters_are_bounded_and_unique() {
        assert_eq!(query(Some("a=1&b=x+y&c")).unwrap()["b"], "x y");
        assert_eq!(
            query(Some("a=1&a=2")).unwrap_err().reason(),
            "duplicate_query_parameter"
        );
        assert_eq!(query(Some("a%3D=1&a==2")).unwrap()["a="], "1");
        let many: Vec<String> = (0..=MAX_QUERY_PARAMETERS)
            .map(|i| format!("p{i}=1"))
            .collect();
        assert_eq!(
            query(Some(&many.join("&"))).unwrap_err(),
            MappingError::TooLarge
        );
    }
}
