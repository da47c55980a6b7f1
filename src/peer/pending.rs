//! The TLS handshakes in progress, oldest first, overall and per source: what the acceptor
//! sheds when a bound is reached.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use tokio::task::{AbortHandle, Id};

/// Where a connection comes from, as far as sharing limits goes: an IPv4 address, or the
/// /64 prefix of an IPv6 address (one host usually holds a whole /64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    V4(std::net::Ipv4Addr),
    V6Prefix(u64),
}

impl Source {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4),
            IpAddr::V6(v6) => Self::V6Prefix((v6.to_bits() >> 64) as u64),
        }
    }
}

/// The handshakes in progress, oldest first, overall and per source.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    next_age: u64,
    by_age: BTreeMap<u64, (Source, AbortHandle)>,
    age_of: HashMap<Id, u64>,
    by_source: HashMap<Source, BTreeSet<u64>>,
}

impl Pending {
    pub(crate) fn len(&self) -> usize {
        self.by_age.len()
    }

    pub(crate) fn count(&self, source: Source) -> usize {
        self.by_source.get(&source).map_or(0, BTreeSet::len)
    }

    pub(crate) fn insert(&mut self, source: Source, abort: AbortHandle) {
        let age = self.next_age;
        self.next_age += 1;
        self.age_of.insert(abort.id(), age);
        self.by_source.entry(source).or_default().insert(age);
        self.by_age.insert(age, (source, abort));
    }

    /// Forgets a handshake that ended on its own.
    pub(crate) fn finish(&mut self, id: Id) {
        if let Some(age) = self.age_of.get(&id).copied() {
            self.remove(age);
        }
    }

    pub(crate) fn shed_oldest(&mut self) {
        if let Some(age) = self.by_age.keys().next().copied() {
            self.shed(age);
        }
    }

    pub(crate) fn shed_oldest_of(&mut self, source: Source) {
        let oldest = self
            .by_source
            .get(&source)
            .and_then(|ages| ages.first().copied());
        if let Some(age) = oldest {
            self.shed(age);
        }
    }

    /// Closes the handshake's connection: aborting its task drops its socket.
    fn shed(&mut self, age: u64) {
        if let Some(abort) = self.remove(age) {
            abort.abort();
        }
    }

    fn remove(&mut self, age: u64) -> Option<AbortHandle> {
        let (source, abort) = self.by_age.remove(&age)?;
        self.age_of.remove(&abort.id());
        if let Some(ages) = self.by_source.get_mut(&source) {
            ages.remove(&age);
            if ages.is_empty() {
                self.by_source.remove(&source);
            }
        }
        Some(abort)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use tokio::task::JoinSet;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn sources_are_ipv4_addresses_and_ipv6_64_prefixes() {
        assert_eq!(
            Source::of(ip("10.0.0.1")),
            Source::of(ip("::ffff:10.0.0.1"))
        );
        assert_ne!(Source::of(ip("10.0.0.1")), Source::of(ip("10.0.0.2")));
        assert_eq!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            Source::of(ip("2001:db8:1:2::1")),
            Source::of(ip("2001:db8:1:3::1"))
        );
    }

    #[tokio::test]
    async fn shedding_takes_the_oldest_overall_or_of_one_source() {
        let a = Source::of(ip("10.0.0.1"));
        let b = Source::of(ip("10.0.0.2"));
        let mut tasks = JoinSet::new();
        let mut pending = Pending::default();
        let mut handles = Vec::new();
        for source in [a, b, a, b] {
            let abort = tasks.spawn(std::future::pending::<()>());
            handles.push(abort.clone());
            pending.insert(source, abort);
        }
        pending.shed_oldest_of(b);
        assert_eq!(
            (pending.len(), pending.count(a), pending.count(b)),
            (3, 2, 1)
        );
        pending.shed_oldest();
        assert_eq!(
            (pending.len(), pending.count(a), pending.count(b)),
            (2, 1, 1)
        );
        pending.finish(handles.get(3).unwrap().id());
        assert_eq!(
            (pending.len(), pending.count(a), pending.count(b)),
            (1, 1, 0)
        );
        // Shed handshakes are aborted; the one that finished and the survivor are not.
        let mut shed = Vec::new();
        for _ in 0..2 {
            let e = tasks.join_next_with_id().await.unwrap().unwrap_err();
            assert!(e.is_cancelled());
            shed.push(handles.iter().position(|h| h.id() == e.id()).unwrap());
        }
        shed.sort_unstable();
        assert_eq!(shed, [0, 1]);
        assert_eq!(tasks.len(), 2);
    }
}
