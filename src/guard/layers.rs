//! The tower `Layer` of each capability's own layer: a [`Guard`] running that check alone.
//!
//! The capabilities keep their configuration and a crate-private check and never import
//! this module; the arrows point from the guard down.

use std::sync::Arc;

use tower_layer::Layer;

use super::Guard;
use super::pipeline::Pipeline;
use crate::peer::PeerIdentityLayer;
use crate::policy::AuthorizationLayer;
use crate::token::AuthenticationLayer;
use crate::token::jwt_svid::JwtSvidLayer;

impl<S> Layer<S> for PeerIdentityLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard::new(inner, Arc::new(Pipeline::peer_only(self.clone())))
    }
}

impl<S> Layer<S> for AuthenticationLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard::new(inner, Arc::new(Pipeline::authentication_only(self.clone())))
    }
}

impl<S> Layer<S> for JwtSvidLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard::new(
            inner,
            Arc::new(Pipeline::workload_tokens_only(self.clone())),
        )
    }
}

impl<S> Layer<S> for AuthorizationLayer {
    type Service = Guard<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard::new(inner, Arc::new(Pipeline::authorization_only(self.clone())))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The source lines of `dir` (recursively) that are code rather than comments.
    fn code_lines(dir: &Path, out: &mut Vec<(String, String)>) {
        let entries = std::fs::read_dir(dir).unwrap();
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                code_lines(&path, out);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for line in text.lines() {
                    if !line.trim_start().starts_with("//") {
                        out.push((path.display().to_string(), line.to_owned()));
                    }
                }
            }
        }
    }

    /// Whether `line` names the `guard` module as a path segment (`crate::guard`,
    /// `super::guard`, `guard::X`), as opposed to `meshguard::…` or a word like `_guard`.
    fn names_guard_module(line: &str) -> bool {
        line.match_indices("guard").any(|(at, _)| {
            let before = line[..at].chars().next_back();
            let after = &line[at + "guard".len()..];
            let segment_start = !before.is_some_and(|c| c.is_alphanumeric() || c == '_');
            segment_start && (after.starts_with("::") || line[..at].ends_with("::"))
        })
    }

    #[test]
    fn the_guard_module_check_reads_paths() {
        for line in [
            "use crate::guard::Pipeline;",
            "use crate::guard;",
            "guard::Guard::new(inner)",
            "use super::super::guard::{Admission};",
        ] {
            assert!(names_guard_module(line), "{line}");
        }
        for line in [
            "target: \"meshguard::policy::audit\",",
            "let _guard = span.enter();",
            "MutexGuard::map(lock)",
        ] {
            assert!(!names_guard_module(line), "{line}");
        }
    }

    #[test]
    fn no_capability_module_imports_the_guard() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut lines = Vec::new();
        for capability in ["token", "peer", "policy"] {
            code_lines(&src.join(capability), &mut lines);
        }
        assert!(
            lines.len() > 1_000,
            "the capabilities' sources were not read"
        );
        let imports: Vec<_> = lines
            .iter()
            .filter(|(_, line)| names_guard_module(line))
            .collect();
        assert!(imports.is_empty(), "{imports:#?}");
    }
}
