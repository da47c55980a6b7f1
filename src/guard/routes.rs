//! Per-route rules: which requests are public, which take an optional token, which map to
//! an action of their own or need scopes.

use http::Method;

use crate::policy::EntityUid;
use crate::route::{Matcher, RequestPath, Template};

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
    /// The path reads as one rule's route undecoded and another's decoded: refused.
    Ambiguous,
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
    pub(crate) dpop: bool,
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
            dpop: false,
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

    /// The token must come with a DPoP proof (RFC 9449): `Authorization: DPoP` and a `DPoP`
    /// header, verified by the guard's [`DpopVerifier`](crate::token::dpop::DpopVerifier)
    /// (see [`GuardBuilder::dpop`](super::GuardBuilder::dpop), which `build` then requires).
    /// A bearer token is refused with 401 and a `WWW-Authenticate: DPoP` challenge, so a
    /// stolen copy of a token is useless here without the client's private key.
    pub fn require_dpop(mut self) -> Self {
        self.dpop = true;
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
    template: Template,
    pub(crate) access: Access,
    pub(crate) action: Option<EntityUid>,
    pub(crate) scopes: Vec<String>,
    pub(crate) scope_text: Option<String>,
    pub(crate) dpop: bool,
}

/// The methods a rule may name: the standard ones (RFC 9110 §9, RFC 5789), in upper case.
/// Methods are case-sensitive, so `get` would be an extension method no client sends by
/// mistake; it is refused rather than silently never matched.
const RULE_METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

impl Route {
    /// Parses `pattern`: an optional method and a path template in axum's syntax, such as
    /// `GET /orders/{id}` or `/docs/{*rest}`.
    pub(crate) fn new(pattern: &str, rule: RouteRule) -> Result<Self, String> {
        let (method, template) = match pattern.split_once(' ') {
            Some((method, template)) => (Some(rule_method(method)?), template),
            None => (None, pattern),
        };
        let template = Template::parse_rule(template)?;
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
            template,
            access: rule.access,
            action,
            scopes: rule.scopes,
            scope_text,
            dpop: rule.dpop,
        })
    }

    /// The path template, for the policy mapping's `path_params`.
    pub(crate) fn template(&self) -> &str {
        self.template.as_str()
    }

    /// How well the rule's method fits `method`: the exact method first, then GET for
    /// HEAD (a router answers HEAD with the GET handler), then a rule for any method.
    fn method_fit(&self, method: &Method) -> Option<u8> {
        match &self.method {
            Some(own) if own == method => Some(0),
            Some(own) if *own == Method::GET && *method == Method::HEAD => Some(1),
            Some(_) => None,
            None => Some(2),
        }
    }
}

fn rule_method(method: &str) -> Result<Method, String> {
    RULE_METHODS
        .iter()
        .find(|m| m.as_str() == method)
        .cloned()
        .ok_or_else(|| {
            format!(
                "`{method}` is not a standard HTTP method in upper case (methods are \
                 case-sensitive; one of GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS, TRACE, \
                 CONNECT)"
            )
        })
}

/// The rule a request got, and how much identity it demands.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteMatch {
    index: Option<usize>,
    pub(crate) access: Access,
}

/// The routes of a guard: each request gets the rule of the most specific template its
/// path matches, as axum picks a route.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    matcher: Matcher,
    routes: Vec<Route>,
    /// For each template of the matcher, the indices of its rules.
    by_template: Vec<Vec<usize>>,
}

impl Routes {
    /// Adds a rule; refuses a second rule for the same method and template, and templates
    /// the router could not tell apart.
    pub(crate) fn push(&mut self, route: Route) -> Result<(), String> {
        let template = self.matcher.insert(route.template.clone())?;
        if self.by_template.len() <= template {
            self.by_template.resize_with(template + 1, Vec::new);
        }
        let rules = self
            .by_template
            .get_mut(template)
            .ok_or("no such template")?;
        if rules.iter().any(|&i| {
            self.routes
                .get(i)
                .is_some_and(|other| other.method == route.method)
        }) {
            return Err("a rule for the same method and template was given before".into());
        }
        rules.push(self.routes.len());
        self.routes.push(route);
        Ok(())
    }

    /// The rule for a request with `method` and undecoded `path`: a rule of the most
    /// specific template matching the path, as axum picks a route.
    ///
    /// A path that is not routable (see [`crate::route`]) is never relaxed: a public or
    /// optional-token rule does not apply to it. Its undecoded form picks the route the
    /// router runs, its decoded form the resource the handler serves; when they pick the
    /// same rule (or only one picks any), that rule's restrictions (scopes, an action)
    /// apply, and when they pick different rules the request is ambiguous and refused. So
    /// neither can a relaxing rule be reached, nor a restricting one be walked around, by
    /// spelling a path in a way the router or a proxy reads differently. A path that
    /// cannot be read at all gets no rule (the policy mapping refuses it).
    pub(crate) fn find(&self, method: &Method, path: &str) -> RouteMatch {
        let unmatched = RouteMatch {
            index: None,
            access: Access::Required,
        };
        if self.routes.is_empty() {
            return unmatched;
        }
        let Ok(parsed) = RequestPath::parse(path) else {
            return unmatched;
        };
        let routed = self.matcher.at(path).and_then(|t| self.rule_for(t, method));
        if parsed.is_routable() {
            return match routed {
                Some(index) => RouteMatch {
                    index: Some(index),
                    access: self
                        .routes
                        .get(index)
                        .map_or(Access::Required, |r| r.access),
                },
                None => unmatched,
            };
        }
        let decoded = self
            .matcher
            .at(&parsed.decoded())
            .and_then(|t| self.rule_for(t, method));
        let index = match (routed, decoded) {
            (Some(a), Some(b)) if a != b => {
                return RouteMatch {
                    index: None,
                    access: Access::Ambiguous,
                };
            }
            (a, b) => a.or(b),
        };
        RouteMatch {
            index,
            access: Access::Required,
        }
    }

    /// The rule a match found.
    pub(crate) fn get(&self, found: RouteMatch) -> Option<&Route> {
        found.index.and_then(|i| self.routes.get(i))
    }

    fn rule_for(&self, template: usize, method: &Method) -> Option<usize> {
        self.by_template
            .get(template)?
            .iter()
            .filter_map(|&i| Some((self.routes.get(i)?.method_fit(method)?, i)))
            .min()
            .map(|(_, i)| i)
    }
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

    fn routes(patterns: &[(&str, RouteRule)]) -> Routes {
        let mut routes = Routes::default();
        for (pattern, rule) in patterns {
            routes
                .push(Route::new(pattern, rule.clone()).unwrap())
                .unwrap();
        }
        routes
    }

    fn template_of(routes: &Routes, method: &Method, path: &str) -> Option<String> {
        let found = routes.find(method, path);
        routes.get(found).map(|r| {
            let method = r.method.as_ref().map_or("*", Method::as_str);
            format!("{method} {}", r.template())
        })
    }

    #[test]
    fn templates_match_like_axum_routes() {
        let all = routes(&[
            ("/health", RouteRule::public()),
            ("/orders/{id}", RouteRule::new()),
            ("/docs/{*rest}", RouteRule::public()),
            ("GET /x", RouteRule::new()),
            ("/", RouteRule::public()),
        ]);
        let get = Method::GET;
        let find = |path: &str| template_of(&all, &get, path);
        assert_eq!(find("/health").as_deref(), Some("* /health"));
        assert_eq!(find("/health/x"), None);
        assert_eq!(find("/healthz"), None);
        assert_eq!(find("/orders/42").as_deref(), Some("* /orders/{id}"));
        assert_eq!(find("/orders"), None);
        assert_eq!(find("/docs/a/b").as_deref(), Some("* /docs/{*rest}"));
        assert_eq!(find("/docs"), None);
        assert_eq!(find("/").as_deref(), Some("* /"));
        assert_eq!(find("/x").as_deref(), Some("GET /x"));
        assert_eq!(template_of(&all, &Method::POST, "/x"), None);
    }

    #[test]
    fn the_most_specific_template_wins_whatever_the_order() {
        let all = routes(&[
            ("/docs/{*rest}", RouteRule::public()),
            ("GET /docs/private", RouteRule::new()),
        ]);
        let find = |method: &Method, path: &str| template_of(&all, method, path);
        assert_eq!(
            find(&Method::GET, "/docs/private").as_deref(),
            Some("GET /docs/private")
        );
        assert_eq!(
            find(&Method::HEAD, "/docs/private").as_deref(),
            Some("GET /docs/private")
        );
        assert_eq!(find(&Method::POST, "/docs/private"), None);
        // Undecoded it is the wildcard's, decoded the literal's: ambiguous.
        let encoded = all.find(&Method::GET, "/docs/%70rivate");
        assert_eq!(encoded.access, Access::Ambiguous);
        assert_eq!(
            find(&Method::GET, "/docs/public").as_deref(),
            Some("* /docs/{*rest}")
        );
    }

    #[test]
    fn head_is_get_unless_a_head_rule_exists() {
        let all = routes(&[
            ("GET /a", RouteRule::new().scopes(["read"])),
            ("/a", RouteRule::public()),
            ("HEAD /b", RouteRule::public()),
            ("GET /b", RouteRule::new()),
        ]);
        let find = |method: &Method, path: &str| template_of(&all, method, path);
        assert_eq!(find(&Method::HEAD, "/a").as_deref(), Some("GET /a"));
        assert_eq!(find(&Method::PUT, "/a").as_deref(), Some("* /a"));
        assert_eq!(find(&Method::HEAD, "/b").as_deref(), Some("HEAD /b"));
        assert_eq!(find(&Method::GET, "/b").as_deref(), Some("GET /b"));
    }

    #[test]
    fn paths_spelled_another_way_are_decided_decoded_and_never_relaxed() {
        let all = routes(&[
            ("/public/{*rest}", RouteRule::public()),
            ("GET /orders/export", RouteRule::new().scopes(["export"])),
            ("/orders/{id}", RouteRule::new().optional_token()),
        ]);
        let get = Method::GET;
        let found = all.find(&get, "/public/a");
        assert_eq!(found.access, Access::Public);
        for path in [
            "/public/%61",
            "/public/a/",
            "/public/a\\b",
            "/public/a%5Cb",
            "/public/%25",
        ] {
            let found = all.find(&get, path);
            assert_eq!(found.access, Access::Required, "{path}");
        }
        // Undecoded it is `/orders/{id}`'s, decoded `/orders/export`'s.
        let encoded = all.find(&get, "/orders/%65xport");
        assert_eq!(encoded.access, Access::Ambiguous);
        assert!(all.get(encoded).is_none());
        let scoped = routes(&[("GET /orders/export", RouteRule::new().scopes(["export"]))]);
        let encoded = scoped.find(&get, "/orders/%65xport");
        assert_eq!(encoded.access, Access::Required);
        assert_eq!(
            scoped.get(encoded).map(|r| r.scopes.clone()),
            Some(vec!["export".to_owned()])
        );
        let other = all.find(&get, "/orders/%37");
        assert_eq!(other.access, Access::Required);
        assert_eq!(all.get(other).map(Route::template), Some("/orders/{id}"));
        for path in [
            "/public/../admin",
            "/public/./a",
            "/public//a",
            "/public/%2e%2e/admin",
            "/public/a%2Fb",
            "/public/%zz",
        ] {
            let found = all.find(&get, path);
            assert_eq!(found.access, Access::Required, "{path}");
            assert!(all.get(found).is_none(), "{path}");
        }
    }

    #[test]
    fn bad_patterns_methods_and_scopes_are_refused() {
        for pattern in [
            "health",
            "/a/{*rest}/b",
            "/a/{}",
            "/a//b",
            "FO O /x",
            "/a/{x",
            "get /export",
            "Get /export",
            "PURGE /x",
        ] {
            assert!(Route::new(pattern, RouteRule::new()).is_err(), "{pattern}");
        }
        assert!(Route::new("/a", RouteRule::new().scopes(["a b"])).is_err());
        assert!(Route::new("/a", RouteRule::new().scopes([""])).is_err());
        assert!(Route::new("/a", RouteRule::new().scopes(["orders:read"])).is_ok());
        let mut twice = routes(&[("GET /a/{id}", RouteRule::new())]);
        let again = Route::new("GET /a/{id}", RouteRule::public()).unwrap();
        assert!(twice.push(again).is_err());
        let other_name = Route::new("DELETE /a/{order}", RouteRule::new()).unwrap();
        assert!(twice.push(other_name).is_err());
    }
}
