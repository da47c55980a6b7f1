//! Peer identity per connection and XFCC per request, each paired with its floor.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use meshguard::peer::{DirectPeer, PeerIdentity, XFCC_HEADER, XfccPolicy, parse_xfcc};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

fn svid_chain() -> Vec<Vec<u8>> {
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.subject_alt_names = vec![SanType::URI("spiffe://example.org".try_into().unwrap())];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut leaf = CertificateParams::new(vec!["web.example.org".to_owned()]).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "web");
    leaf.subject_alt_names.push(SanType::URI(
        "spiffe://example.org/ns/prod/sa/web".try_into().unwrap(),
    ));
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate().unwrap();
    let leaf_cert = leaf
        .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
        .unwrap();
    vec![leaf_cert.der().to_vec(), ca_cert.der().to_vec()]
}

fn identity(c: &mut Criterion) {
    let chain = svid_chain();
    let leaf = &chain[0];
    let mut group = c.benchmark_group("peer_identity_per_connection");
    group.bench_function("floor: x509-parser parse of the leaf", |b| {
        b.iter(|| x509_parser::parse_x509_certificate(black_box(leaf)).unwrap())
    });
    group.bench_function("PeerIdentity::from_der_chain (leaf)", |b| {
        b.iter(|| PeerIdentity::from_der_chain(black_box(&chain[..1])).unwrap())
    });
    group.bench_function("PeerIdentity::from_der_chain (leaf + CA)", |b| {
        b.iter(|| PeerIdentity::from_der_chain(black_box(&chain)).unwrap())
    });
    group.finish();
}

const ENVOY_DOC_HEADER: &str = "By=http://frontend.lyft.com;\
    Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;\
    Subject=\"/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client\";\
    URI=spiffe://lyft.com/testclient";

fn xfcc(c: &mut Criterion) {
    let mut group = c.benchmark_group("xfcc_per_request");
    group.bench_function("floor: split on , ; = without quoting", |b| {
        b.iter(|| {
            black_box(ENVOY_DOC_HEADER)
                .split(',')
                .flat_map(|e| e.split(';'))
                .filter_map(|p| p.split_once('='))
                .count()
        })
    });
    group.bench_function("parse_xfcc (Envoy doc example)", |b| {
        b.iter(|| parse_xfcc(black_box(ENVOY_DOC_HEADER)).unwrap())
    });
    let policy = XfccPolicy::builder().trust_loopback().build();
    let direct = DirectPeer::tcp("127.0.0.1:4000".parse().unwrap(), None);
    let mut headers = HeaderMap::new();
    headers.insert(XFCC_HEADER, HeaderValue::from_static(ENVOY_DOC_HEADER));
    group.bench_function("XfccPolicy::resolve (trusted sidecar)", |b| {
        b.iter(|| {
            policy
                .resolve(black_box(&direct), black_box(&headers))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, identity, xfcc);
criterion_main!(benches);
