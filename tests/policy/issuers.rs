//! Tokens of several issuers become principals of their own issuer only: per-issuer
//! namespaces (entity types or id prefixes), `context.iss`, and the configurations that
//! would let one issuer's user be another's, refused at build time or denied at run time.
//! Tokens are minted with `TokenSigner` and verified by a real `Verifier`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::policy_support;

use meshguard::caller::Caller;
use meshguard::policy::{
    Context, Decision, IssuerNamespace, IssuerNamespaceError, PolicyEngine, PolicyError,
    PolicySource, PrincipalMapping,
};
use meshguard::token::{Algorithm, Issuer, KeySet, TokenSigner, Verifier};
use policy_support::uid;
use serde_json::{Value, json};

const COMPANY: &str = "https://login.example.com";
const PARTNER: &str = "https://idp.partner.example";
const COMPANY_SECRET: &[u8] = b"policy-issuers-company-secret-32-bytes!";
const PARTNER_SECRET: &[u8] = b"policy-issuers-partner-secret-32-bytes!";

const POLICIES: &str = r#"
@id("alice-reads")
permit(principal == User::"alice", action == Action::"read", resource);

@id("admins-administer")
permit(principal in Role::"admin", action == Action::"administer", resource);

@id("partner-audits")
permit(principal, action == Action::"audit", resource)
when { context has iss && context.iss == "https://idp.partner.example" };
"#;

fn issuer(iss: &str, secret: &[u8]) -> Issuer {
    Issuer::new(iss, KeySet::hmac_secret("k1", secret).unwrap()).audience("orders")
}

fn both() -> Verifier {
    Verifier::builder()
        .issuer(issuer(COMPANY, COMPANY_SECRET))
        .issuer(issuer(PARTNER, PARTNER_SECRET))
        .build()
        .unwrap()
}

fn company_only() -> Verifier {
    Verifier::builder()
        .issuer(issuer(COMPANY, COMPANY_SECRET))
        .build()
        .unwrap()
}

/// A token of `iss` (signed with its secret) for `sub` with `extra` claims, verified by
/// `verifier`, as the caller of a request.
fn caller(verifier: &Verifier, iss: &str, sub: &str, extra: Value) -> Caller {
    let secret = if iss == COMPANY {
        COMPANY_SECRET
    } else {
        PARTNER_SECRET
    };
    let mut claims = json!({"iss": iss, "sub": sub, "aud": "orders", "exp": 4_102_444_800_i64});
    claims
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let token = TokenSigner::new(Algorithm::HS256, secret)
        .unwrap()
        .with_kid("k1")
        .sign(&claims)
        .unwrap();
    Caller::from_token(verifier.verify(&token).unwrap())
}

fn engine(mapping: PrincipalMapping) -> PolicyEngine {
    PolicyEngine::builder(PolicySource::text(POLICIES))
        .principal_mapping(mapping)
        .build()
        .unwrap()
}

fn decide(engine: &PolicyEngine, caller: &Caller, action: &str) -> Decision {
    engine.authorize(
        caller,
        &uid(&format!("Action::\"{action}\"")),
        &uid(r#"Application::"orders""#),
        Context::new(),
    )
}

fn principal(decision: &Decision) -> String {
    decision.details().principal().unwrap().to_string()
}

/// Denied because the caller could not be mapped to a principal.
#[track_caller]
fn assert_unmapped(decision: &Decision) {
    assert!(!decision.is_allow(), "{decision:?}");
    let reasons: Vec<_> = decision.errors().iter().map(|e| e.reason()).collect();
    assert_eq!(reasons, ["principal"], "{decision:?}");
}

fn typed_namespaces() -> PrincipalMapping {
    PrincipalMapping::new()
        .role_claim("roles")
        .issuer(COMPANY, IssuerNamespace::new())
        .issuer(
            PARTNER,
            IssuerNamespace::new()
                .user_type("PartnerUser")
                .role_type("PartnerRole"),
        )
}

#[test]
fn the_same_sub_from_two_issuers_is_two_principals() {
    let engine = engine(typed_namespaces());
    let verifier = both();
    let roles = json!({"roles": ["admin"]});
    let company_alice = caller(&verifier, COMPANY, "alice", roles.clone());
    let partner_alice = caller(&verifier, PARTNER, "alice", roles);

    let allowed = decide(&engine, &company_alice, "read");
    assert!(allowed.is_allow(), "{allowed:?}");
    assert_eq!(principal(&allowed), r#"User::"alice""#);
    let refused = decide(&engine, &partner_alice, "read");
    assert!(!refused.is_allow(), "{refused:?}");
    assert!(refused.errors().is_empty(), "{refused:?}");
    assert_eq!(principal(&refused), r#"PartnerUser::"alice""#);

    // The partner's `admin` role is `PartnerRole::"admin"`, not the company's.
    assert!(decide(&engine, &company_alice, "administer").is_allow());
    assert!(!decide(&engine, &partner_alice, "administer").is_allow());
}

#[test]
fn id_prefixes_keep_issuers_apart_under_one_entity_type() {
    // An unprefixed namespace holds every id of its type, `partner/alice` too: with one
    // entity type, both issuers need a prefix.
    let mapping = PrincipalMapping::new()
        .role_claim("roles")
        .issuer(COMPANY, IssuerNamespace::new().id_prefix("corp/"))
        .issuer(PARTNER, IssuerNamespace::new().id_prefix("partner/"));
    let engine = PolicyEngine::builder(PolicySource::text(
        r#"
        permit(principal == User::"corp/alice", action == Action::"read", resource);
        permit(principal in Role::"corp/admin", action == Action::"administer", resource);
        "#,
    ))
    .principal_mapping(mapping)
    .build()
    .unwrap();
    let verifier = both();
    let company_alice = caller(&verifier, COMPANY, "alice", json!({"roles": "admin"}));
    let allowed = decide(&engine, &company_alice, "read");
    assert!(allowed.is_allow(), "{allowed:?}");
    assert_eq!(principal(&allowed), r#"User::"corp/alice""#);
    assert!(decide(&engine, &company_alice, "administer").is_allow());

    let partner_alice = caller(&verifier, PARTNER, "alice", json!({"roles": "admin"}));
    let refused = decide(&engine, &partner_alice, "read");
    assert!(!refused.is_allow(), "{refused:?}");
    assert_eq!(principal(&refused), r#"User::"partner/alice""#);
    assert!(!decide(&engine, &partner_alice, "administer").is_allow());
}

#[test]
fn policies_read_the_issuer_from_the_context() {
    let engine = engine(typed_namespaces());
    let verifier = both();
    assert!(
        decide(
            &engine,
            &caller(&verifier, PARTNER, "p1", json!({})),
            "audit"
        )
        .is_allow()
    );
    assert!(
        !decide(
            &engine,
            &caller(&verifier, COMPANY, "c1", json!({})),
            "audit"
        )
        .is_allow()
    );
}

#[test]
fn a_single_issuer_keeps_user_sub_and_carries_iss_in_the_context() {
    let engine = engine(PrincipalMapping::new());
    let alice = caller(&company_only(), COMPANY, "alice", json!({}));
    let decision = decide(&engine, &alice, "read");
    assert!(decision.is_allow(), "{decision:?}");
    assert_eq!(principal(&decision), r#"User::"alice""#);

    let iss_policy = PolicyEngine::builder(PolicySource::text(
        r#"permit(principal, action, resource) when { context.iss == "https://login.example.com" };"#,
    ))
    .build()
    .unwrap();
    assert!(decide(&iss_policy, &alice, "anything").is_allow());
}

#[test]
fn tokens_of_several_issuers_without_namespaces_are_denied() {
    let engine = engine(PrincipalMapping::new());
    let verifier = both();
    assert_unmapped(&decide(
        &engine,
        &caller(&verifier, COMPANY, "alice", json!({})),
        "read",
    ));
    assert_unmapped(&decide(
        &engine,
        &caller(&verifier, PARTNER, "alice", json!({})),
        "read",
    ));
}

#[test]
fn a_token_of_an_issuer_without_a_namespace_is_denied() {
    let engine = engine(PrincipalMapping::new().issuer(COMPANY, IssuerNamespace::new()));
    let verifier = both();
    assert_unmapped(&decide(
        &engine,
        &caller(&verifier, PARTNER, "alice", json!({})),
        "read",
    ));
    assert!(
        decide(
            &engine,
            &caller(&verifier, COMPANY, "alice", json!({})),
            "read"
        )
        .is_allow()
    );
}

#[test]
fn check_issuers_refuses_verifiers_whose_issuers_could_share_principals() {
    let shared = engine(PrincipalMapping::new()).check_issuers(&both());
    assert_eq!(
        shared,
        Err(IssuerNamespaceError::Shared {
            first: COMPANY.to_owned(),
            second: PARTNER.to_owned(),
        })
    );
    let message = shared.unwrap_err().to_string();
    assert!(
        message.contains(COMPANY) && message.contains(PARTNER),
        "{message}"
    );

    let partial = engine(PrincipalMapping::new().issuer(COMPANY, IssuerNamespace::new()));
    assert_eq!(
        partial.check_issuers(&both()),
        Err(IssuerNamespaceError::Unmapped {
            issuer: PARTNER.to_owned()
        })
    );

    let any = Verifier::builder()
        .issuer(Issuer::any(KeySet::hmac_secret("k1", COMPANY_SECRET).unwrap()).audience("orders"))
        .build()
        .unwrap();
    assert_eq!(
        partial.check_issuers(&any),
        Err(IssuerNamespaceError::AnyIssuer)
    );
    assert_eq!(engine(PrincipalMapping::new()).check_issuers(&any), Ok(()));

    assert_eq!(engine(typed_namespaces()).check_issuers(&both()), Ok(()));
    assert_eq!(
        engine(PrincipalMapping::new()).check_issuers(&company_only()),
        Ok(())
    );
}

/// The error of building an engine with `mapping`.
fn build_error(mapping: PrincipalMapping) -> IssuerNamespaceError {
    let error = PolicyEngine::builder(PolicySource::text(POLICIES))
        .principal_mapping(mapping)
        .build()
        .unwrap_err();
    assert_eq!(error.reason(), "principals");
    match error {
        PolicyError::Principals(error) => error,
        other => panic!("{other:?}"),
    }
}

#[test]
fn engines_refuse_namespaces_that_overlap() {
    // `p` starts `p/`: the partner's `/alice` and the company's `alice` are both `p/alice`.
    let prefixes = PrincipalMapping::new()
        .issuer(COMPANY, IssuerNamespace::new().id_prefix("p/"))
        .issuer(PARTNER, IssuerNamespace::new().id_prefix("p"));
    assert_eq!(
        build_error(prefixes),
        IssuerNamespaceError::Shared {
            first: PARTNER.to_owned(),
            second: COMPANY.to_owned(),
        }
    );
    // An unprefixed namespace holds every id of its type.
    let unprefixed = PrincipalMapping::new()
        .issuer(COMPANY, IssuerNamespace::new())
        .issuer(PARTNER, IssuerNamespace::new().id_prefix("partner/"));
    assert!(matches!(
        build_error(unprefixed),
        IssuerNamespaceError::Shared { .. }
    ));

    // Distinct user types but one role type: shared only when roles are mapped.
    let roles = |mapping: PrincipalMapping| {
        mapping
            .issuer(COMPANY, IssuerNamespace::new())
            .issuer(PARTNER, IssuerNamespace::new().user_type("PartnerUser"))
    };
    assert!(matches!(
        build_error(roles(PrincipalMapping::new().role_claim("roles"))),
        IssuerNamespaceError::Shared { .. }
    ));
    assert!(
        PolicyEngine::builder(PolicySource::text(POLICIES))
            .principal_mapping(roles(PrincipalMapping::new()))
            .build()
            .is_ok()
    );

    let twice = PrincipalMapping::new()
        .issuer(COMPANY, IssuerNamespace::new())
        .issuer(COMPANY, IssuerNamespace::new().user_type("Other"));
    assert_eq!(
        build_error(twice).reason(),
        IssuerNamespaceError::Duplicate {
            issuer: COMPANY.to_owned()
        }
        .reason()
    );

    let workloads =
        PrincipalMapping::new().issuer(PARTNER, IssuerNamespace::new().user_type("Service"));
    assert_eq!(
        build_error(workloads),
        IssuerNamespaceError::Workload {
            issuer: PARTNER.to_owned()
        }
    );
}
