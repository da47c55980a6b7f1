//! How a guard answers: with [`Refusal::render`] or with the [`RenderFn`] it was given.

use std::sync::Arc;

use http::Response;

use super::{Refusal, RefusalBody, RenderFn, RequestHead};

/// A guard's way of answering. The guard hands it to the handler-level checks it prepares,
/// so that their denials answer as the guard's own refusals do.
#[derive(Clone, Default)]
pub(crate) struct Renderer(Option<Arc<RenderFn>>);

impl Renderer {
    /// Answers with `render` instead of [`Refusal::render`].
    pub(crate) fn custom(render: Arc<RenderFn>) -> Self {
        Self(Some(render))
    }

    /// The response for `refusal` of the request `head`; an empty custom body is sent as an
    /// empty body.
    pub(crate) fn render<B: RefusalBody>(
        &self,
        refusal: &Refusal,
        head: RequestHead<'_>,
        realm: &str,
    ) -> Response<B> {
        match &self.0 {
            Some(render) => render(refusal, head, realm).map(|body| match body.is_empty() {
                true => B::empty(),
                false => B::json(body),
            }),
            None => refusal.render(head, realm),
        }
    }
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "Renderer(custom)",
            None => "Renderer(default)",
        })
    }
}
