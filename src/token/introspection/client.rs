//! How the resource server authenticates to the introspection endpoint, and the request.

use std::fmt::{self, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Client, Url};
use zeroize::Zeroizing;

use crate::token::remote::fetch::post_form;

/// How the resource server authenticates itself to the introspection endpoint (RFC 7662
/// §2.1 requires some authentication; RFC 6749 §2.3.1 defines these two).
///
/// The secret is zeroized on drop and never shown by `Debug`.
#[derive(Clone)]
pub struct ClientAuth {
    method: Method,
    client_id: String,
    secret: Zeroizing<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Basic,
    Post,
}

impl ClientAuth {
    /// `client_secret_basic`: HTTP Basic authentication, the id and the secret each
    /// form-urlencoded first (RFC 6749 §2.3.1), so a secret holding `:`, `%` or non-ASCII
    /// reaches the server intact. Every authorization server must support it.
    pub fn basic(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientAuth::with(Method::Basic, client_id.into(), secret.into())
    }

    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    pub fn post(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientAuth::with(Method::Post, client_id.into(), secret.into())
    }

    fn with(method: Method, client_id: String, secret: String) -> Self {
        ClientAuth {
            method,
            client_id,
            secret: Zeroizing::new(secret),
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The form body and `Authorization` value for introspecting `token`.
    fn request(&self, token: &str) -> (Zeroizing<String>, Option<Zeroizing<String>>) {
        let mut form = Zeroizing::new(String::with_capacity(token.len() + 64));
        form.push_str("token=");
        encode_into(token, &mut form);
        form.push_str("&token_type_hint=access_token");
        match self.method {
            Method::Post => {
                form.push_str("&client_id=");
                encode_into(&self.client_id, &mut form);
                form.push_str("&client_secret=");
                encode_into(&self.secret, &mut form);
                (form, None)
            }
            Method::Basic => {
                let mut pair = Zeroizing::new(String::new());
                encode_into(&self.client_id, &mut pair);
                pair.push(':');
                encode_into(&self.secret, &mut pair);
                let header = Zeroizing::new(format!("Basic {}", STANDARD.encode(pair.as_bytes())));
                (form, Some(header))
            }
        }
    }
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("method", &self.method)
            .field("client_id", &self.client_id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// POSTs the introspection request for `token`; the body of a 200 answer, at most `limit`
/// bytes, or why there is none.
pub(crate) async fn introspect(
    client: &Client,
    endpoint: &Url,
    auth: &ClientAuth,
    token: &str,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let (form, authorization) = auth.request(token);
    post_form(
        client,
        endpoint,
        &form,
        authorization.as_ref().map(|value| value.as_str()),
        limit,
    )
    .await
    .map_err(|error| error.to_string())
}

/// `application/x-www-form-urlencoded` (the WHATWG URL standard's byte serializer, which
/// RFC 6749 Appendix B refers to): `*-._` and alphanumerics stay, space becomes `+`, every
/// other byte of the UTF-8 text becomes `%XX`.
fn encode_into(text: &str, out: &mut String) {
    for &byte in text.as_bytes() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                // Writing to a `String` cannot fail.
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_encodes_id_and_secret_before_base64() {
        let auth = ClientAuth::basic("my client", "p:ss%wörd+");
        let (form, header) = auth.request("tok en");
        assert_eq!(form.as_str(), "token=tok+en&token_type_hint=access_token");
        let header = header.unwrap();
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"my+client:p%3Ass%25w%C3%B6rd%2B");
    }

    #[test]
    fn post_puts_the_credentials_in_the_form() {
        let auth = ClientAuth::post("rs", "s&=cret");
        let (form, header) = auth.request("abc");
        assert!(header.is_none());
        assert_eq!(
            form.as_str(),
            "token=abc&token_type_hint=access_token&client_id=rs&client_secret=s%26%3Dcret"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", ClientAuth::basic("rs", "hunter2-secret"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
