//! `meshguard verify-token` on tokens the IdP issued, with the keys found through its
//! discovery document: what an operator types to check a token from their own IdP.

use std::process::{Command, Output};

use crate::idp_support::{Idp, IdpClient};

fn verify_token(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshguard"))
        .arg("verify-token")
        .args(args)
        .output()
        .unwrap()
}

/// Each algorithm the IdP signs with, under `--profile at+jwt`: exit 0 and the claims; a
/// token for another resource: exit 1, `rejected: audience`.
#[tokio::test]
async fn interop_cli_verifies_idp_tokens_by_discovery() {
    let Some(idp) = Idp::shared() else { return };
    let audience = "https://api.test/es256";
    for resource in ["rs256", "ps256", "es256", "es384", "eddsa", "ed25519"] {
        let resource = format!("https://api.test/{resource}");
        let issued = idp.access_token(IdpClient::Basic, &resource).await;
        let args = [
            "--discover",
            idp.issuer(),
            "--audience",
            &resource,
            "--profile",
            "at+jwt",
            &issued.access_token,
        ];
        let ok = verify_token(&args);
        let stderr = String::from_utf8_lossy(&ok.stderr);
        assert_eq!(ok.status.code(), Some(0), "{resource}: {stderr}");
        let claims: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
        assert_eq!(claims["client_id"], "svc-basic", "{resource}");
        assert_eq!(claims["aud"], resource.as_str());
    }

    let other = idp
        .access_token(IdpClient::Basic, "https://api.test/es384")
        .await;
    let refused = verify_token(&[
        "--discover",
        idp.issuer(),
        "--audience",
        audience,
        "--profile",
        "at+jwt",
        &other.access_token,
    ]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(stderr.ends_with("rejected: audience\n"), "{stderr}");
}
