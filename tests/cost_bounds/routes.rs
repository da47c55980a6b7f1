//! Request paths through the guard's route model and the HTTP mapping.

use std::hint::black_box;
use std::time::Duration;

use http::Uri;

use crate::assert_linear;

#[test]
fn route_path_cost_is_linear() {
    use meshguard::policy::{HttpInput, HttpMapping};
    // The conventions mapping reads the path with the guard's route model (split, check,
    // percent-decode) and matches the route template: an 8 KiB path of eight-character
    // segments against paths of one-character segments and of nothing but escapes.
    let size = 8 * 1024 - 64;
    let normal = format!(
        "/files/{}",
        "abcdefg/".repeat(size / 8).trim_end_matches('/')
    );
    let segments = format!("/files/{}", "a/".repeat(size / 2).trim_end_matches('/'));
    let escapes = format!("/files/{}", "%C3%A9".repeat(size / 6));
    let mapping = HttpMapping::conventions("files").omit_query();
    let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let map = |path: &str| {
        let uri: Uri = path.parse().unwrap();
        let method = http::Method::GET;
        let input = HttpInput::new(&method, &uri, now).with_route("/files/{*rest}");
        black_box(mapping.map(&input).unwrap());
    };
    for (what, worst) in [
        ("route path: segments", &segments),
        ("route path: escapes", &escapes),
    ] {
        assert!(worst.len() <= normal.len() + 8, "{what}: same size");
        assert_linear(what, &mut || map(&normal), &mut || map(worst));
    }
}
