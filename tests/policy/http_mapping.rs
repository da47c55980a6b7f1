//! HTTP and gRPC requests mapped to Cedar requests and decided, with and without a schema.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::policy_support;

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use meshguard::policy::{
    EntityUid, HttpInput, HttpMapping, MappedRequest, MappingError, PolicyEngine, PolicySource,
    SchemaSource,
};
use policy_support::uid;
use serde_json::json;

const SCHEMA: &str = r#"
entity User;
entity Application;
action "GET /orders/{id}" appliesTo {
    principal: User,
    resource: Application,
    context: {
        method: String,
        path: String,
        path_params: { id: String },
        query: { expand?: String },
        client_ip?: ipaddr,
        time: datetime,
    }
};
action "/shop.Orders/Get" appliesTo {
    principal: User,
    resource: Application,
    context: { service: String, method: String, client_ip?: ipaddr, time: datetime }
};
"#;

const POLICIES: &str = r#"
@id("get-own-region")
permit(principal, action == Action::"GET /orders/{id}", resource == Application::"orders")
when {
    context.path_params.id like "eu-*" &&
    context has client_ip && context.client_ip.isInRange(ip("10.0.0.0/8")) &&
    context.time < datetime("2030-01-01")
}
unless { context.query has expand && context.query.expand == "secrets" };

@id("grpc-get")
permit(principal, action == Action::"/shop.Orders/Get", resource == Application::"orders")
when { context.service == "shop.Orders" };
"#;

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) // 2027-01-15
}

fn engine() -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(POLICIES))
        .schema(SchemaSource::cedar(SCHEMA))
        .build()
        .unwrap()
}

fn get(target: &str) -> http::Request<()> {
    http::Request::get(target).body(()).unwrap()
}

fn decide(engine: &PolicyEngine, mapped: MappedRequest) -> bool {
    engine
        .authorize_request(mapped.into_request(uid(r#"User::"alice""#)))
        .is_allow()
}

fn map_orders(request: &http::Request<()>, ip: &str, at: SystemTime) -> MappedRequest {
    let input = HttpInput::from_request(request, at)
        .with_route("/orders/{id}")
        .with_client_ip(ip.parse::<IpAddr>().unwrap());
    HttpMapping::conventions("orders").map(&input).unwrap()
}

#[test]
fn conventions_build_action_resource_and_context() {
    let request = get("/orders/eu-42?expand=items");
    let mapped = map_orders(&request, "10.1.2.3", now());
    assert_eq!(mapped.action().to_string(), r#"Action::"GET /orders/{id}""#);
    assert_eq!(mapped.resource().to_string(), r#"Application::"orders""#);
    let context = mapped.context().as_json().unwrap();
    assert_eq!(context["method"], "GET");
    assert_eq!(context["path"], "/orders/eu-42");
    assert_eq!(context["path_params"], json!({"id": "eu-42"}));
    assert_eq!(context["query"], json!({"expand": "items"}));
    assert_eq!(context["client_ip"]["__extn"]["arg"], "10.1.2.3");
    assert_eq!(context["time"]["__extn"]["arg"], "2027-01-15T08:00:00.000Z");
}

#[test]
fn mapped_requests_are_decided_against_the_schema() {
    let engine = engine();
    assert!(decide(
        &engine,
        map_orders(&get("/orders/eu-42"), "10.1.2.3", now())
    ));
    assert!(decide(
        &engine,
        map_orders(&get("/orders/eu-42?expand=items"), "10.1.2.3", now())
    ));
    // path parameter, query, client IP and time each decide
    assert!(!decide(
        &engine,
        map_orders(&get("/orders/us-42"), "10.1.2.3", now())
    ));
    assert!(!decide(
        &engine,
        map_orders(&get("/orders/eu-42?expand=secrets"), "10.1.2.3", now())
    ));
    assert!(!decide(
        &engine,
        map_orders(&get("/orders/eu-42"), "192.168.1.1", now())
    ));
    let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    assert!(!decide(
        &engine,
        map_orders(&get("/orders/eu-42"), "10.1.2.3", later)
    ));
    // a query parameter the schema does not declare makes the request invalid: denied
    let undeclared = engine.authorize_request(
        map_orders(&get("/orders/eu-42?debug=1"), "10.1.2.3", now())
            .into_request(uid(r#"User::"alice""#)),
    );
    assert_eq!(undeclared.errors()[0].reason(), "invalid_request");
}

#[test]
fn unknown_routes_are_denied_not_guessed() {
    let engine = engine();
    let request = http::Request::delete("/orders/eu-42").body(()).unwrap();
    let input = HttpInput::from_request(&request, now()).with_route("/orders/{id}");
    let mapped = HttpMapping::conventions("orders").map(&input).unwrap();
    assert_eq!(mapped.action().id(), "DELETE /orders/{id}");
    let decision = engine.authorize_request(mapped.into_request(uid(r#"User::"alice""#)));
    assert!(!decision.is_allow());
}

#[test]
fn without_a_route_the_literal_path_is_the_action() {
    let request = get("/health");
    let mapped = HttpMapping::conventions("orders")
        .map(&HttpInput::from_request(&request, now()))
        .unwrap();
    assert_eq!(mapped.action().id(), "GET /health");
    assert_eq!(
        mapped.context().as_json().unwrap()["path_params"],
        json!({})
    );
    assert!(
        mapped
            .context()
            .as_json()
            .unwrap()
            .get("client_ip")
            .is_none()
    );
}

#[test]
fn malformed_requests_are_mapping_errors() {
    let mapping = HttpMapping::conventions("orders");
    let map = |target: &str, route: Option<&str>| {
        let request = get(target);
        let mut input = HttpInput::from_request(&request, now());
        if let Some(route) = route {
            input = input.with_route(route);
        }
        mapping.map(&input).map(|_| ()).unwrap_err()
    };
    assert_eq!(map("/orders/../admin", None).reason(), "invalid_path");
    assert_eq!(map("/orders//1", None).reason(), "invalid_path");
    assert_eq!(map("/orders/%2e%2e", None).reason(), "invalid_path");
    assert_eq!(
        map("/orders/1/2", Some("/orders/{id}")).reason(),
        "route_mismatch"
    );
    assert_eq!(
        map("/orders/%ff", Some("/orders/{id}")).reason(),
        "bad_encoding"
    );
    assert_eq!(
        map("/orders/1?a=1&a=2", None).reason(),
        "duplicate_query_parameter"
    );
    let long = format!(
        "/orders/{}",
        "x".repeat(meshguard::policy::MAX_TARGET_BYTES)
    );
    assert_eq!(map(&long, None), MappingError::TooLarge);
}

#[test]
fn query_can_be_left_out_for_schemas_that_do_not_declare_it() {
    let request = get("/orders/eu-1?anything=1");
    let input = HttpInput::from_request(&request, now()).with_route("/orders/{id}");
    let mapped = HttpMapping::conventions("orders")
        .omit_query()
        .map(&input)
        .unwrap();
    assert!(mapped.context().as_json().unwrap().get("query").is_none());
}

#[test]
fn grpc_action_is_the_full_method_path() {
    let engine = engine();
    let request = http::Request::post("/shop.Orders/Get").body(()).unwrap();
    let mapped = HttpMapping::grpc("orders")
        .map(&HttpInput::from_request(&request, now()))
        .unwrap();
    assert_eq!(mapped.action().to_string(), r#"Action::"/shop.Orders/Get""#);
    assert_eq!(mapped.context().as_json().unwrap()["method"], "Get");
    assert!(decide(&engine, mapped));
    for bad in [
        "/shop.Orders",
        "/shop.Orders/Get/x",
        "//Get",
        "/shop.Orders/",
    ] {
        let request = http::Request::post(bad).body(()).unwrap();
        let err = HttpMapping::grpc("orders")
            .map(&HttpInput::from_request(&request, now()))
            .unwrap_err();
        assert_eq!(err.reason(), "invalid_path", "{bad}");
    }
}

#[test]
fn custom_mapping_can_extend_the_conventions() {
    let conventions = HttpMapping::conventions("orders").omit_query();
    let custom = HttpMapping::custom(move |input| {
        let mut mapped = conventions.map(input)?;
        let tenant = input
            .headers()
            .and_then(|h| h.get("x-tenant"))
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| MappingError::Custom {
                message: "missing x-tenant".to_owned(),
            })?;
        mapped
            .context_mut()
            .insert("tenant", json!(tenant))
            .map_err(|e| MappingError::Custom {
                message: e.to_string(),
            })?;
        Ok(MappedRequest::new(
            mapped.action().clone(),
            EntityUid::new("Tenant", tenant).unwrap(),
            mapped.context().clone(),
        ))
    });
    let request = http::Request::get("/orders/1")
        .header("x-tenant", "acme")
        .body(())
        .unwrap();
    let mapped = custom
        .map(&HttpInput::from_request(&request, now()).with_route("/orders/{id}"))
        .unwrap();
    assert_eq!(mapped.resource().to_string(), r#"Tenant::"acme""#);
    assert_eq!(mapped.context().as_json().unwrap()["tenant"], "acme");
    let engine = PolicyEngine::builder(PolicySource::text(
        r#"permit(principal, action, resource) when { context.tenant == "acme" && resource == Tenant::"acme" };"#,
    ))
    .build()
    .unwrap();
    assert!(decide(&engine, mapped));
    let anonymous = get("/orders/1");
    let err = custom
        .map(&HttpInput::from_request(&anonymous, now()).with_route("/orders/{id}"))
        .unwrap_err();
    assert_eq!(err.reason(), "custom");
}
