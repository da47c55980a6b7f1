//! The cached key set and its timeline: when it is due for refresh, when it expires, and how
//! long it may serve stale.

use std::time::Duration;

use super::super::issuer::PreparedKeys;

/// One fetched key set, immutable once published; a refresh publishes a new one.
pub(crate) struct Snapshot {
    pub(crate) keys: PreparedKeys,
    /// Unix seconds from which a background refresh is wanted.
    pub(super) refresh_at: i64,
    /// Unix seconds from which the keys are stale.
    pub(super) expires_at: i64,
    /// Unix seconds from which the keys are no longer used at all.
    pub(super) stale_until: i64,
    /// Key ids, sorted, to tell a rotation from a plain refresh in the logs.
    pub(super) kids: Vec<Option<String>>,
    /// How many keys of the document were skipped as unusable.
    pub(super) skipped: usize,
}

impl Snapshot {
    /// No keys yet: due for a fetch and unusable.
    pub(super) fn cold(keys: PreparedKeys) -> Self {
        Snapshot {
            keys,
            refresh_at: i64::MIN,
            expires_at: i64::MIN,
            stale_until: i64::MIN,
            kids: Vec::new(),
            skipped: 0,
        }
    }

    /// Keys fetched at `now`, fresh for `ttl` and usable for `max_stale` after that.
    pub(super) fn fetched(
        keys: PreparedKeys,
        mut kids: Vec<Option<String>>,
        skipped: usize,
        now: i64,
        ttl: Duration,
        max_stale: Duration,
    ) -> Self {
        let ttl = seconds(ttl);
        kids.sort_unstable();
        // Refresh after four fifths of the lifetime, so requests keep finding fresh keys
        // while the refresh is on its way.
        let refresh_at = now.saturating_add(ttl - ttl / 5);
        let expires_at = now.saturating_add(ttl);
        Snapshot {
            keys,
            refresh_at,
            expires_at,
            stale_until: expires_at.saturating_add(seconds(max_stale)),
            kids,
            skipped,
        }
    }

    /// Whether the keys were ever fetched.
    pub(super) fn is_cold(&self) -> bool {
        self.stale_until == i64::MIN
    }
}

/// The cache lifetime for a response: its `Cache-Control` `max-age` (the smallest, if it
/// repeats; `no-cache` or `no-store` meaning zero), else `default`, clamped to `min..=max`.
pub(super) fn lifetime(
    cache_control: Option<&str>,
    default: Duration,
    min: Duration,
    max: Duration,
) -> Duration {
    cache_control
        .and_then(max_age)
        .unwrap_or(default)
        .clamp(min, max.max(min))
}

/// The `max-age` directive of a `Cache-Control` value (RFC 9111 §5.2.2.1), if any.
/// Unparsable values are ignored rather than trusted.
fn max_age(value: &str) -> Option<Duration> {
    let mut found: Option<u64> = None;
    for directive in value.split(',') {
        let directive = directive.trim();
        let (name, argument) = match directive.split_once('=') {
            Some((name, argument)) => (name.trim(), Some(argument.trim())),
            None => (directive, None),
        };
        let seconds =
            if name.eq_ignore_ascii_case("no-cache") || name.eq_ignore_ascii_case("no-store") {
                Some(0)
            } else if name.eq_ignore_ascii_case("max-age") {
                argument
                    .map(|a| a.trim_matches('"'))
                    .filter(|a| !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()))
                    // Larger than any bound: saturate instead of failing.
                    .map(|a| a.parse::<u64>().unwrap_or(u64::MAX))
            } else {
                None
            };
        if let Some(seconds) = seconds {
            found = Some(found.map_or(seconds, |f| f.min(seconds)));
        }
    }
    found.map(Duration::from_secs)
}

pub(super) fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const MAX: Duration = Duration::from_secs(3600);
    const DEFAULT: Duration = Duration::from_secs(600);

    fn ttl(value: Option<&str>) -> u64 {
        lifetime(value, DEFAULT, MIN, MAX).as_secs()
    }

    #[test]
    fn max_age_is_honoured_within_bounds() {
        assert_eq!(ttl(None), 600);
        assert_eq!(ttl(Some("public, max-age=900")), 900);
        assert_eq!(ttl(Some("MAX-AGE = \"120\"")), 120);
        assert_eq!(ttl(Some("max-age=5")), 60);
        assert_eq!(ttl(Some("max-age=86400")), 3600);
        assert_eq!(ttl(Some("max-age=99999999999999999999999")), 3600);
        assert_eq!(ttl(Some("max-age=300, max-age=200")), 200);
    }

    #[test]
    fn no_cache_means_the_lower_bound() {
        assert_eq!(ttl(Some("no-cache")), 60);
        assert_eq!(ttl(Some("private, no-store, max-age=900")), 60);
    }

    #[test]
    fn garbage_cache_control_falls_back_to_the_default() {
        for value in [
            "",
            "max-age",
            "max-age=",
            "max-age=-5",
            "max-age=1e3",
            "max-age=0x10",
            ",,,",
            "s-maxage=30",
            "max-age=١٢",
        ] {
            assert_eq!(ttl(Some(value)), 600, "{value:?}");
        }
    }

    #[test]
    fn bounds_are_ordered() {
        assert_eq!(lifetime(None, DEFAULT, MAX, MIN).as_secs(), 3600);
    }

    #[test]
    fn timeline_refreshes_before_expiry_then_serves_stale() {
        let keys = PreparedKeys::new(&super::super::super::KeySet::new(), Default::default());
        let snapshot = Snapshot::fetched(
            keys,
            vec![Some("b".into()), None, Some("a".into())],
            2,
            1_000,
            Duration::from_secs(600),
            Duration::from_secs(86_400),
        );
        assert_eq!(snapshot.refresh_at, 1_480);
        assert_eq!(snapshot.expires_at, 1_600);
        assert_eq!(snapshot.stale_until, 1_600 + 86_400);
        assert_eq!(
            snapshot.kids,
            vec![None, Some("a".into()), Some("b".into())]
        );
        assert!(!snapshot.is_cold());
    }
}
