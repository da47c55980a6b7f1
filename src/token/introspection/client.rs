//! The introspection request (RFC 7662 §2.1): the token, a hint, the client's credentials.

use reqwest::{Client, Url};
use zeroize::Zeroizing;

use crate::token::client_auth::{ClientAuth, encode_into};
use crate::token::remote::fetch::post_form;

/// POSTs the introspection request for `token`; the body of a 200 answer, at most `limit`
/// bytes, or why there is none.
pub(crate) async fn introspect(
    client: &Client,
    endpoint: &Url,
    auth: &ClientAuth,
    token: &str,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let (form, authorization) = request(auth, token);
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

/// The form body and `Authorization` value for introspecting `token`.
fn request(auth: &ClientAuth, token: &str) -> (Zeroizing<String>, Option<Zeroizing<String>>) {
    let mut form = Zeroizing::new(String::with_capacity(token.len() + 64));
    form.push_str("token=");
    encode_into(token, &mut form);
    form.push_str("&token_type_hint=access_token");
    let authorization = auth.authenticate(&mut form);
    (form, authorization)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_holds_the_token_and_its_hint() {
        let (form, header) = request(&ClientAuth::post("rs", "s"), "tok en");
        assert!(header.is_none());
        assert_eq!(
            form.as_str(),
            "token=tok+en&token_type_hint=access_token&client_id=rs&client_secret=s"
        );
        let (form, header) = request(&ClientAuth::basic("rs", "s"), "abc");
        assert!(header.is_some());
        assert_eq!(form.as_str(), "token=abc&token_type_hint=access_token");
    }
}
