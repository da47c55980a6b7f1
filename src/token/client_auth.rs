//! How this service authenticates itself to its authorization server's endpoints (RFC 6749
//! §2.3.1): the introspection endpoint and the token endpoint alike.

use std::fmt::{self, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

/// How this service authenticates itself to its authorization server: at the introspection
/// endpoint (RFC 7662 §2.1 requires some authentication) and at the token endpoint (OAuth 2.0
/// client credentials, RFC 8693 token exchange). RFC 6749 §2.3.1 defines these two methods.
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

    /// Adds this client's credentials to a request whose form (already holding its own
    /// parameters) is `form`: `client_secret_post` appends them to it, `client_secret_basic`
    /// returns the `Authorization` value to send instead.
    pub(crate) fn authenticate(&self, form: &mut Zeroizing<String>) -> Option<Zeroizing<String>> {
        match self.method {
            Method::Post => {
                form.push_str("&client_id=");
                encode_into(&self.client_id, form);
                form.push_str("&client_secret=");
                encode_into(&self.secret, form);
                None
            }
            Method::Basic => {
                let mut pair = Zeroizing::new(String::new());
                encode_into(&self.client_id, &mut pair);
                pair.push(':');
                encode_into(&self.secret, &mut pair);
                Some(Zeroizing::new(format!(
                    "Basic {}",
                    STANDARD.encode(pair.as_bytes())
                )))
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

/// `application/x-www-form-urlencoded` (the WHATWG URL standard's byte serializer, which
/// RFC 6749 Appendix B refers to): `*-._` and alphanumerics stay, space becomes `+`, every
/// other byte of the UTF-8 text becomes `%XX`.
pub(crate) fn encode_into(text: &str, out: &mut String) {
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

    fn request(auth: &ClientAuth) -> (Zeroizing<String>, Option<Zeroizing<String>>) {
        let mut form = Zeroizing::new(String::from("token="));
        encode_into("tok en", &mut form);
        let header = auth.authenticate(&mut form);
        (form, header)
    }

    #[test]
    fn basic_encodes_id_and_secret_before_base64() {
        let auth = ClientAuth::basic("my client", "p:ss%wörd+");
        let (form, header) = request(&auth);
        assert_eq!(form.as_str(), "token=tok+en");
        let header = header.unwrap();
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(decoded, b"my+client:p%3Ass%25w%C3%B6rd%2B");
    }

    #[test]
    fn post_puts_the_credentials_in_the_form() {
        let auth = ClientAuth::post("rs", "s&=cret");
        let (form, header) = request(&auth);
        assert!(header.is_none());
        assert_eq!(
            form.as_str(),
            "token=tok+en&client_id=rs&client_secret=s%26%3Dcret"
        );
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", ClientAuth::basic("rs", "hunter2-secret"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
