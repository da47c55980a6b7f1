//! The service's SVID from files on disk, watched and handed to an [`SvidStore`] as they
//! rotate.
//!
//! Two layouts:
//! - [`CredentialFolder`]: a SPIFFE Filesystem Delivery credential folder (the one
//!   `SPIFFE_CREDENTIAL_FOLDER` names): `credential-bundle.private-key.pem` holds the PKCS#8
//!   key then the chain and is read in one read; each `<trust-domain>.spiffe-trust-bundle.pem`
//!   is that trust domain's bundle, kept apart from the others; a bundle file removed
//!   de-federates its trust domain at the next update; other files are ignored.
//! - [`PemFiles`]: a chain PEM, a key PEM and a bundle PEM per trust domain, named by the
//!   caller as the writer names them: spiffe-helper's `svid.pem`, `svid_key.pem`,
//!   `svid_bundle.pem`; cert-manager csi-driver's or a Kubernetes TLS secret's `tls.crt`,
//!   `tls.key`, `ca.crt`. A PEM bundle does not say whose roots it holds, so the trust domain
//!   is named with it.
//!
//! `start` loads the files once before it returns, so that a service does not start without
//! its SVID, then a thread polls them (every second by default). Every read is bounded before
//! it starts ([`MAX_PEM_LEN`](crate::peer::MAX_PEM_LEN) a file, [`MAX_DELIVERY_LEN`] in all,
//! [`MAX_FOLDER_ENTRIES`] entries); symlinks are followed, so Kubernetes' swap of its `..data`
//! link is seen like any other change. A change is handed to the store once two polls in a
//! row read the same bytes (a file rewritten in place is never taken half-written). Writers
//! that replace the files one after the other (spiffe-helper writes the certificate, then the
//! key, then the bundle, each in place) can still leave a settled state where the new
//! certificate sits beside the old key: the store refuses it, keeps serving the last good
//! material, and the source tries again at each poll. Only a refusal that lasts
//! [`DEFAULT_FAILURE_TOLERANCE`] polls (configurable) is recorded in the store's status, so the
//! normal race does not turn readiness red; from then on the status stays `Failing` until a
//! delivery is taken.
//!
//! Dropping the returned [`SvidFileWatcher`] stops the thread at once.
//!
//! # Example
//!
//! ```
//! use meshguard::peer::{CredentialFolder, PemFiles, SvidHealth, SvidStore, TrustDomain};
//!
//! # let ca_key = rcgen::KeyPair::generate()?;
//! # let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
//! # ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
//! # ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign];
//! # let ca_cert = ca.self_signed(&ca_key)?;
//! # let key = rcgen::KeyPair::generate()?;
//! # let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new())?;
//! # leaf.subject_alt_names =
//! #     vec![rcgen::SanType::URI("spiffe://example.org/orders".try_into()?)];
//! # leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
//! # let leaf = leaf.signed_by(&key, &rcgen::Issuer::from_params(&ca, &ca_key))?;
//! # let dir = std::env::temp_dir().join(format!("meshguard-doc-svid-files-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! # std::fs::write(dir.join("svid.pem"), leaf.pem())?;
//! # std::fs::write(dir.join("svid_key.pem"), key.serialize_pem())?;
//! # std::fs::write(dir.join("svid_bundle.pem"), ca_cert.pem())?;
//! let store = SvidStore::new();
//!
//! // Files as spiffe-helper writes them; the bundle is example.org's.
//! let watcher = PemFiles::new(
//!     dir.join("svid.pem"),
//!     dir.join("svid_key.pem"),
//!     TrustDomain::new("example.org")?,
//!     dir.join("svid_bundle.pem"),
//! )
//! .start(&store)?;
//! assert_eq!(store.status().health(), SvidHealth::Current);
//! drop(watcher); // stops watching; the store keeps the material
//!
//! // A SPIFFE credential folder, when the platform delivers one.
//! if let Some(folder) = std::env::var_os("SPIFFE_CREDENTIAL_FOLDER") {
//!     let _watcher = CredentialFolder::new(folder).start(&store)?;
//! }
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod poller;
mod read;
#[cfg(test)]
mod tests;
#[cfg(test)]
#[cfg(unix)]
mod tests_writers;

use std::path::PathBuf;
use std::time::Duration;

pub use error::SvidFileError;
pub use read::{MAX_DELIVERY_LEN, MAX_FOLDER_ENTRIES};

use super::super::spiffe::TrustDomain;
use super::store::SvidStore;
use crate::watch::PollThread;
use poller::Poller;
use read::Layout;

/// How often the files are read unless configured: rotations come at half an SVID's
/// lifetime (30 minutes for SPIRE's default hour), so a second's delay costs nothing, and a
/// few small files a second cost little.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How many polls in a row a delivery may be refused before the refusal is recorded in the
/// store's status, unless configured.
pub const DEFAULT_FAILURE_TOLERANCE: u32 = 5;

/// The shortest interval taken; a shorter one is raised to it.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A SPIFFE Filesystem Delivery credential folder as an SVID source.
///
/// The folder holds `credential-bundle.private-key.pem` (a PKCS#8 `PRIVATE KEY` block, then
/// the chain leaf first, nothing else) and a `<trust-domain>.spiffe-trust-bundle.pem` per
/// trust domain the service trusts, its own included. Other entries (a Kubernetes volume's
/// `..data` and timestamped folders among them) are ignored.
#[derive(Debug, Clone)]
pub struct CredentialFolder {
    dir: PathBuf,
    options: Options,
}

/// A certificate chain PEM, a private key PEM and trust bundle PEMs, each at its own path,
/// as an SVID source.
///
/// Each bundle file must hold one trust domain's roots only. Do not run spiffe-helper with
/// `include_federated_domains = true` for these files: it appends the federated trust
/// domains' roots to `svid_bundle.pem`, which would make a partner's CA a CA of the own trust
/// domain. The store refuses a root whose SPIFFE URI SAN (`spiffe://<td>`, as SPIRE's CAs
/// carry) names another trust domain, but a root without one cannot be told apart. Give
/// federated bundles in separate files with [`with_federated_bundle`](Self::with_federated_bundle),
/// or use a [`CredentialFolder`], whose bundle files are named by trust domain.
#[derive(Debug, Clone)]
pub struct PemFiles {
    chain: PathBuf,
    key: PathBuf,
    bundles: Vec<(TrustDomain, PathBuf)>,
    options: Options,
}

/// Watches SVID files for an [`SvidStore`]; dropping it stops the watching thread (the
/// store keeps what it took).
#[derive(Debug)]
pub struct SvidFileWatcher {
    // Dropping it stops and joins the polling thread.
    _thread: PollThread,
}

#[derive(Debug, Clone, Copy)]
struct Options {
    interval: Duration,
    tolerance: u32,
}

impl CredentialFolder {
    /// The credential folder at `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            options: Options::default(),
        }
    }

    /// Reads the folder every `interval` (at least 10 ms). Defaults to
    /// [`DEFAULT_POLL_INTERVAL`].
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.options.interval = interval;
        self
    }

    /// Records a refused delivery in the store's status only once it has been refused on
    /// `polls` polls in a row (at least 1), and on every `polls`-th poll after that.
    /// Defaults to [`DEFAULT_FAILURE_TOLERANCE`].
    pub fn with_failure_tolerance(mut self, polls: u32) -> Self {
        self.options.tolerance = polls;
        self
    }

    /// Loads the folder into `store`, then watches it.
    ///
    /// # Errors
    ///
    /// When the folder cannot be read or the store refuses its material on each of the
    /// first [failure tolerance](Self::with_failure_tolerance) tries, one interval apart
    /// (a writer may be half-way); [`SvidFileError::Spawn`] when the thread cannot start.
    pub fn start(self, store: &SvidStore) -> Result<SvidFileWatcher, SvidFileError> {
        start(Layout::Folder(self.dir), self.options, store)
    }
}

impl PemFiles {
    /// The chain at `chain` (leaf first; intermediates may follow), its private key at
    /// `key`, and the bundle of `trust_domain` at `bundle`: the service's own trust domain,
    /// or the store refuses the material.
    pub fn new(
        chain: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        trust_domain: TrustDomain,
        bundle: impl Into<PathBuf>,
    ) -> Self {
        Self {
            chain: chain.into(),
            key: key.into(),
            bundles: vec![(trust_domain, bundle.into())],
            options: Options::default(),
        }
    }

    /// Adds the bundle of a federated trust domain at `bundle`. The file must hold that
    /// trust domain's roots only: peers of `trust_domain` are verified against it alone.
    pub fn with_federated_bundle(
        mut self,
        trust_domain: TrustDomain,
        bundle: impl Into<PathBuf>,
    ) -> Self {
        self.bundles.push((trust_domain, bundle.into()));
        self
    }

    /// Reads the files every `interval` (at least 10 ms). Defaults to
    /// [`DEFAULT_POLL_INTERVAL`].
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.options.interval = interval;
        self
    }

    /// Records a refused delivery in the store's status only once it has been refused on
    /// `polls` polls in a row (at least 1), and on every `polls`-th poll after that.
    /// Defaults to [`DEFAULT_FAILURE_TOLERANCE`].
    pub fn with_failure_tolerance(mut self, polls: u32) -> Self {
        self.options.tolerance = polls;
        self
    }

    /// Loads the files into `store`, then watches them.
    ///
    /// # Errors
    ///
    /// When a file cannot be read or the store refuses the material on each of the first
    /// [failure tolerance](Self::with_failure_tolerance) tries, one interval apart (a writer
    /// may be half-way); [`SvidFileError::Spawn`] when the thread cannot start.
    pub fn start(self, store: &SvidStore) -> Result<SvidFileWatcher, SvidFileError> {
        let layout = Layout::Pem {
            chain: self.chain,
            key: self.key,
            bundles: self.bundles,
        };
        start(layout, self.options, store)
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            interval: DEFAULT_POLL_INTERVAL,
            tolerance: DEFAULT_FAILURE_TOLERANCE,
        }
    }
}

impl Options {
    fn interval(self) -> Duration {
        self.interval.max(MIN_POLL_INTERVAL)
    }

    fn tolerance(self) -> u32 {
        self.tolerance.max(1)
    }
}

fn start(
    layout: Layout,
    options: Options,
    store: &SvidStore,
) -> Result<SvidFileWatcher, SvidFileError> {
    let mut tries = 1;
    let loaded = loop {
        let last = tries >= options.tolerance();
        match Poller::load(&layout, store, last) {
            Ok(fingerprint) => break fingerprint,
            Err(error) if last => return Err(error),
            Err(error) => {
                tracing::debug!(
                    reason = error.reason(),
                    %error,
                    tries,
                    "svid files not loaded: trying again"
                );
                std::thread::sleep(options.interval());
                tries += 1;
            }
        }
    };
    let mut poller = Poller::new(layout, store.clone(), loaded, options.tolerance());
    let thread = PollThread::spawn("meshguard-svid-files", options.interval(), move || {
        poller.poll();
    })
    .map_err(SvidFileError::Spawn)?;
    Ok(SvidFileWatcher { _thread: thread })
}
