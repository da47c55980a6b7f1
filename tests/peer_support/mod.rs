//! Test PKI minted at test time with rcgen: CAs per trust domain and SVID leaves.
#![allow(dead_code, unreachable_pub)]

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// A CA for one trust domain (URI SAN `spiffe://<td>`).
pub struct Ca {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub cert: Certificate,
}

/// A certificate and its key.
pub struct Leaf {
    pub cert: Certificate,
    pub key: KeyPair,
}

fn ca_params(trust_domain: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{trust_domain} CA"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.subject_alt_names = vec![SanType::URI(
        format!("spiffe://{trust_domain}").try_into().unwrap(),
    )];
    params
}

impl Ca {
    /// A self-signed root CA.
    pub fn new(trust_domain: &str) -> Self {
        let params = ca_params(trust_domain);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { params, key, cert }
    }

    /// A self-signed root CA without the `spiffe://<td>` URI SAN, as CAs not made by SPIRE
    /// are: nothing in it tells which trust domain's bundle it belongs in.
    pub fn unnamed(trust_domain: &str) -> Self {
        let mut params = ca_params(trust_domain);
        params.subject_alt_names.clear();
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { params, key, cert }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, trust_domain: &str) -> Self {
        let params = ca_params(trust_domain);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer()).unwrap();
        Self { params, key, cert }
    }

    pub fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }

    /// A leaf signed by this CA from `params`.
    pub fn sign(&self, params: &CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer()).unwrap();
        Leaf { cert, key }
    }

    /// An X509-SVID leaf for `id`.
    pub fn svid(&self, id: &str) -> Leaf {
        self.sign(&svid_params(id))
    }

    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }
}

impl Leaf {
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    pub fn cert_pem(&self) -> String {
        self.cert.pem()
    }

    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
}

/// Parameters of a well-formed X509-SVID leaf for `id`, with a CN and a DNS SAN.
pub fn svid_params(id: &str) -> CertificateParams {
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "workload");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "Example");
    params
        .subject_alt_names
        .push(SanType::URI(id.try_into().unwrap()));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.is_ca = IsCa::ExplicitNoCa;
    params
}
