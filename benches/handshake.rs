//! A full mTLS handshake in memory (no sockets) against the rotating `svid_server_config`,
//! paired with its floor: the same handshake against a fixed `server_config` serving the same
//! kind of SVID. Both use the calling side's `svid_client_config`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use meshguard::peer::{
    Authorizer, ClientRoots, SvidStore, X509Update, server_config, svid_client_config,
    svid_server_config,
};
use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, ServerConfig, ServerConnection};

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
    pem: String,
}

fn ca() -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.subject_alt_names = vec![SanType::URI("spiffe://example.org".try_into().unwrap())];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        der: cert.der().clone(),
        pem: cert.pem(),
        params,
        key,
    }
}

/// An SVID for `id` valid for the next hour: (chain, key).
fn svid(ca: &Ca, id: &str) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::URI(id.try_into().unwrap()));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.not_before = rcgen::date_time_ymd(1970, 1, 1) + now - Duration::from_secs(1);
    params.not_after = rcgen::date_time_ymd(1970, 1, 1) + now + Duration::from_secs(3600);
    let key = KeyPair::generate().unwrap();
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca.params, &ca.key))
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (vec![cert.der().clone()], key)
}

fn store(ca: &Ca, id: &str) -> SvidStore {
    let (chain, key) = svid(ca, id);
    let store = SvidStore::new();
    store
        .update(
            X509Update::new(chain, key)
                .with_bundle("example.org".parse().unwrap(), vec![ca.der.clone()]),
        )
        .unwrap();
    store
}

/// One full handshake between fresh connections on `client` and `server`, in memory.
fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) {
    let name = ServerName::try_from("localhost").unwrap();
    let mut c = ClientConnection::new(Arc::clone(client), name).unwrap();
    let mut s = ServerConnection::new(Arc::clone(server)).unwrap();
    while c.is_handshaking() || s.is_handshaking() {
        let mut to_server = Vec::new();
        while c.wants_write() {
            c.write_tls(&mut to_server).unwrap();
        }
        let mut slice = &to_server[..];
        while !slice.is_empty() {
            s.read_tls(&mut slice).unwrap();
            s.process_new_packets().unwrap();
        }
        let mut to_client = Vec::new();
        while s.wants_write() {
            s.write_tls(&mut to_client).unwrap();
        }
        let mut slice = &to_client[..];
        while !slice.is_empty() {
            c.read_tls(&mut slice).unwrap();
            c.process_new_packets().unwrap();
        }
    }
    black_box((c, s));
}

fn handshakes(c: &mut Criterion) {
    let ca = ca();
    let server_store = store(&ca, "spiffe://example.org/orders");
    let client_store = store(&ca, "spiffe://example.org/cart");
    let client = Arc::new(
        svid_client_config(
            &client_store,
            Authorizer::id("spiffe://example.org/orders".parse().unwrap()),
        )
        .unwrap(),
    );
    let (chain, key) = svid(&ca, "spiffe://example.org/orders");
    let roots = ClientRoots::spiffe()
        .with_bundle_pem("example.org".parse().unwrap(), ca.pem.as_bytes())
        .unwrap();
    let fixed = Arc::new(server_config(chain, key, &roots).unwrap());
    let rotating = Arc::new(svid_server_config(&server_store, Authorizer::any()).unwrap());

    let mut group = c.benchmark_group("mtls_handshake");
    group.bench_function("floor: fixed server_config", |b| {
        b.iter(|| handshake(&client, &fixed))
    });
    group.bench_function("svid_server_config (reads the SvidStore)", |b| {
        b.iter(|| handshake(&client, &rotating))
    });
    group.finish();
}

criterion_group!(benches, handshakes);
criterion_main!(benches);
