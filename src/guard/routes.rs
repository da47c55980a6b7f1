//! Per-route rules: which requests are public, which take an optional token, which map to
//! an action of their own or need scopes.

use http::Method;

use crate::policy::EntityUid;

/// How much identity a route demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Every configured check applies. The default for routes no rule names.
    Required,
    /// A token is verified when present; without one the request passes anonymously and
    /// the policies are not asked.
    OptionalToken,
    /// No check runs and nothing is added to the request.
    Public,
}

/// What a [`Guard`](super::Guard) does on the routes a pattern matches.
///
/// # Example
/// ```
/// use meshguard::guard::RouteRule;
///
/// // `DELETE /orders/{id}` is decided as `Action::"delete_order"` and needs a scope.
/// let rule = RouteRule::new().action("delete_order").scopes(["orders:write"]);
/// # let _ = rule;
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RouteRule {
    pub(crate) access: Access,
    pub(crate) action: Option<String>,
    pub(crate) scopes: Vec<String>,
}

impl Default for RouteRule {
    fn default() -> Self {
        Self::new()
    }
}

impl RouteRule {
    /// Every configured check applies; the action comes from the guard's
    /// [`HttpMapping`](crate::policy::HttpMapping).
    pub fn new() -> Self {
        Self {
            access: Access::Required,
            action: None,
            scopes: Vec::new(),
        }
    }

    /// No check runs: health probes, metrics, public documents.
    pub fn public() -> Self {
        Self {
            access: Access::Public,
            ..Self::new()
        }
    }

    /// A token is verified when present (an invalid one is still refused); a request
    /// without any passes with no [`Caller`](crate::caller::Caller) and is not decided by
    /// the policies: the handler decides what anonymous callers see.
    pub fn optional_token(mut self) -> Self {
        self.access = Access::OptionalToken;
        self
    }

    /// Decides the route's requests as `Action::"<name>"` instead of the mapped action;
    /// the mapped context is kept.
    pub fn action(mut self, name: impl Into<String>) -> Self {
        self.action = Some(name.into());
        self
    }

    /// The token must carry every one of `scopes`; otherwise 403 with
    /// `error="insufficient_scope"` and `scope="..."` (RFC 6750 §3.1), before the policies
    /// are asked.
    pub fn scopes<I, T>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

/// A rule bound to its pattern, checked once at build time.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    method: Option<Method>,
    template: String,
    pub(crate) access: Access,
    pub(crate) action: Option<EntityUid>,
    pub(crate) scopes: Vec<String>,
    pub(crate) scope_text: Option<String>,
}

impl Route {
    /// Parses `pattern`: an optional method and a path template in axum's syntax, such as
    /// `GET /orders/{id}` or `/docs/{*rest}`.
    pub(crate) fn new(pattern: &str, rule: RouteRule) -> Result<Self, String> {
        let (method, template) = match pattern.split_once(' ') {
            Some((method, template)) => {
                let method = Method::from_bytes(method.as_bytes())
                    .map_err(|_| format!("`{method}` is not an HTTP method"))?;
                (Some(method), template)
            }
            None => (None, pattern),
        };
        check_template(template)?;
        let action = match rule.action {
            Some(name) => {
                Some(EntityUid::new("Action", &name).map_err(|e| format!("action `{name}`: {e}"))?)
            }
            None => None,
        };
        if rule.scopes.iter().any(|s| !is_scope_token(s)) {
            return Err(
                "a scope is empty or holds characters outside RFC 6749's scope-token".into(),
            );
        }
        let scope_text = (!rule.scopes.is_empty()).then(|| rule.scopes.join(" "));
        Ok(Self {
            method,
            template: template.to_owned(),
            access: rule.access,
            action,
            scopes: rule.scopes,
            scope_text,
        })
    }

    /// The path template, for the policy mapping's `path_params`.
    pub(crate) fn template(&self) -> &str {
        &self.template
    }

    fn matches(&self, method: &Method, path: &str) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        let mut segments = path.split('/').skip(1);
        for part in self.template.split('/').skip(1) {
            if part.starts_with("{*") {
                return segments.next().is_some_and(|s| !s.is_empty());
            }
            match segments.next() {
                Some(segment) if part.starts_with('{') => {
                    if segment.is_empty() {
                        return false;
                    }
                }
                Some(segment) if segment == part => {}
                _ => return false,
            }
        }
        segments.next().is_none()
    }
}

/// The routes of a guard, first match wins.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    pub(crate) fn push(&mut self, route: Route) {
        self.routes.push(route);
    }

    /// The index of the first route matching the request. A path that is not in canonical
    /// form (empty, `.` or `..` segments, an encoded `/`, `.` or `%`) matches no route, so
    /// that a public or optional rule cannot be reached by a path a proxy or the router
    /// would read differently.
    pub(crate) fn find(&self, method: &Method, path: &str) -> Option<usize> {
        if self.routes.is_empty() || !is_canonical(path) {
            return None;
        }
        self.routes
            .iter()
            .position(|route| route.matches(method, path))
    }

    pub(crate) fn get(&self, index: Option<usize>) -> Option<&Route> {
        index.and_then(|i| self.routes.get(i))
    }
}

fn check_template(template: &str) -> Result<(), String> {
    let Some(rest) = template.strip_prefix('/') else {
        return Err(format!("`{template}` does not start with `/`"));
    };
    let parts: Vec<&str> = rest.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let is_param = part.starts_with('{') || part.ends_with('}');
        if let Some(name) = part.strip_prefix("{*").and_then(|p| p.strip_suffix('}')) {
            if name.is_empty() || i + 1 != parts.len() {
                return Err(format!(
                    "`{template}`: a wildcard must be named and come last"
                ));
            }
        } else if is_param {
            let name = part.strip_prefix('{').and_then(|p| p.strip_suffix('}'));
            if name.is_none_or(|n| n.is_empty() || n.contains(['{', '}'])) {
                return Err(format!("`{template}`: `{part}` is not a parameter"));
            }
        } else if part.is_empty() && parts.len() > 1 {
            return Err(format!("`{template}` has an empty segment"));
        }
    }
    Ok(())
}

fn is_canonical(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    rest.split('/').all(|segment| {
        !segment.is_empty() && segment != "." && segment != ".." && {
            let lower = segment.to_ascii_lowercase();
            !lower.contains("%2f")
                && !lower.contains("%2e")
                && !lower.contains("%25")
                && !lower.contains("%5c")
                && !segment.contains('\\')
        }
    })
}

/// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(pattern: &str) -> Route {
        Route::new(pattern, RouteRule::public()).unwrap()
    }

    #[test]
    fn templates_match_like_axum_routes() {
        let get = Method::GET;
        assert!(route("/health").matches(&get, "/health"));
        assert!(!route("/health").matches(&get, "/health/x"));
        assert!(!route("/health").matches(&get, "/healthz"));
        assert!(route("/orders/{id}").matches(&get, "/orders/42"));
        assert!(!route("/orders/{id}").matches(&get, "/orders/"));
        assert!(!route("/orders/{id}").matches(&get, "/orders"));
        assert!(route("/docs/{*rest}").matches(&get, "/docs/a/b"));
        assert!(!route("/docs/{*rest}").matches(&get, "/docs"));
        assert!(route("/").matches(&get, "/"));
        assert!(route("GET /x").matches(&get, "/x"));
        assert!(!route("GET /x").matches(&Method::POST, "/x"));
    }

    #[test]
    fn non_canonical_paths_match_no_rule() {
        let mut routes = Routes::default();
        routes.push(route("/public/{*rest}"));
        let get = Method::GET;
        assert_eq!(routes.find(&get, "/public/a"), Some(0));
        for path in [
            "/public/../admin",
            "/public/./a",
            "/public//a",
            "/public/%2e%2e/admin",
            "/public/a%2Fb",
            "/public/a\\b",
        ] {
            assert_eq!(routes.find(&get, path), None, "{path}");
        }
    }

    #[test]
    fn bad_patterns_and_scopes_are_refused() {
        for pattern in [
            "health",
            "/a/{*rest}/b",
            "/a/{}",
            "/a//b",
            "FO O /x",
            "/a/{x",
        ] {
            assert!(Route::new(pattern, RouteRule::new()).is_err(), "{pattern}");
        }
        assert!(Route::new("/a", RouteRule::new().scopes(["a b"])).is_err());
        assert!(Route::new("/a", RouteRule::new().scopes([""])).is_err());
        assert!(Route::new("/a", RouteRule::new().scopes(["orders:read"])).is_ok());
    }
}
