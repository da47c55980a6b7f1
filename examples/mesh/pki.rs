//! The DEMO certificate authority of the trust domain `mesh.demo`, and each workload's SVID
//! kept current in its `SvidStore`: 30 seconds of life, a fresh one at half-life, as a
//! SPIRE agent rotates them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshguard::peer::{SpiffeId, Svid, SvidStore, TrustDomain, X509Update};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::BoxError;
use crate::report::Report;

/// How long an SVID lives.
pub(crate) const SVID_LIFETIME: Duration = Duration::from_secs(30);

/// When a workload asks for its next SVID: at half its life, so that a failed issue has
/// the other half to be retried before anything expires.
const ROTATE_AFTER: Duration = Duration::from_secs(15);

/// How soon a failed issue is retried.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// DEMO ONLY: a certificate authority minted at start and dropped at exit, playing the
/// SPIRE server of the trust domain. Nothing of it is written anywhere.
pub(crate) struct DemoCa {
    trust_domain: TrustDomain,
    params: CertificateParams,
    key: KeyPair,
    root: CertificateDer<'static>,
    /// Serial numbers in issue order, so that the output can name certificates shortly.
    serials: AtomicU64,
}

impl DemoCa {
    /// A fresh CA for `trust_domain`, valid for a day.
    pub(crate) fn new(trust_domain: &str) -> Result<Self, BoxError> {
        let trust_domain = TrustDomain::new(trust_domain)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "meshguard mesh example DEMO CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.subject_alt_names = vec![SanType::URI(trust_domain.id().as_str().try_into()?)];
        let now = unix_now()?;
        valid(
            &mut params,
            now.saturating_sub(60),
            now.saturating_add(86_400),
        );
        let key = KeyPair::generate()?;
        let root = params.self_signed(&key)?.der().clone();
        Ok(Self {
            trust_domain,
            params,
            key,
            root,
            serials: AtomicU64::new(1),
        })
    }

    /// A fresh key and X509-SVID for `id`, valid from now for [`SVID_LIFETIME`], with the
    /// trust domain's bundle: one delivery for an `SvidStore`.
    pub(crate) fn issue(&self, id: &SpiffeId) -> Result<X509Update, BoxError> {
        let now = unix_now()?;
        let (leaf, key) = self.mint(id, now, now.saturating_add(SVID_LIFETIME.as_secs()))?;
        Ok(self.delivery(leaf, key))
    }

    /// A fresh key and X509-SVID for `id`, valid from `from` to `until` (seconds since the
    /// Unix epoch).
    pub(crate) fn mint(
        &self,
        id: &SpiffeId,
        from: u64,
        until: u64,
    ) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), BoxError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![SanType::URI(id.as_str().try_into()?)];
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // One SVID for both sides: each service serves with it and calls with it.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.serial_number = Some(SerialNumber::from(
            self.serials.fetch_add(1, Ordering::Relaxed),
        ));
        valid(&mut params, from, until);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &Issuer::from_params(&self.params, &self.key))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((cert.der().clone(), key))
    }

    /// `leaf` and `key` with the trust domain's bundle.
    pub(crate) fn delivery(
        &self,
        leaf: CertificateDer<'static>,
        key: PrivateKeyDer<'static>,
    ) -> X509Update {
        X509Update::new(vec![leaf], key)
            .with_bundle(self.trust_domain.clone(), vec![self.root.clone()])
    }
}

/// A workload of the mesh: its name in the output, its SPIFFE ID and the store its TLS
/// configurations read.
pub(crate) struct Workload {
    pub(crate) name: &'static str,
    pub(crate) id: SpiffeId,
    pub(crate) store: SvidStore,
}

impl Workload {
    /// The workload with its first SVID from `ca`, and a task that rotates it for as long
    /// as the example runs.
    pub(crate) fn start(
        name: &'static str,
        id: &str,
        ca: &Arc<DemoCa>,
        report: &Arc<Report>,
    ) -> Result<Self, BoxError> {
        let id = SpiffeId::new(id)?;
        let store = SvidStore::new();
        let first = store.update(ca.issue(&id)?)?;
        report.issued(name, &first, false);
        tokio::spawn(rotate(
            name,
            id.clone(),
            store.clone(),
            Arc::clone(ca),
            Arc::clone(report),
        ));
        Ok(Self { name, id, store })
    }
}

/// Hands `store` a fresh SVID at every half-life. The store checks each delivery and swaps
/// it in atomically: the servers' and clients' next handshakes present it, connections
/// already open carry on.
async fn rotate(
    name: &'static str,
    id: SpiffeId,
    store: SvidStore,
    ca: Arc<DemoCa>,
    report: Arc<Report>,
) {
    let mut wait = ROTATE_AFTER;
    loop {
        tokio::time::sleep(wait).await;
        let issued: Result<Arc<Svid>, BoxError> = ca
            .issue(&id)
            .and_then(|update| store.update(update).map_err(Into::into));
        wait = match issued {
            Ok(svid) => {
                report.issued(name, &svid, true);
                ROTATE_AFTER
            }
            Err(error) => {
                report.line(format_args!("rotation of {name} FAILED: {error}"));
                RETRY_AFTER
            }
        };
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn unix_now() -> Result<u64, BoxError> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

/// Makes `params` valid from `from` to `until`, in seconds since the Unix epoch.
fn valid(params: &mut CertificateParams, from: u64, until: u64) {
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + Duration::from_secs(from);
    params.not_after = epoch + Duration::from_secs(until);
}
