//! Reading the SVID files of one delivery, each read bounded before it starts.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use ring::digest;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use zeroize::Zeroizing;

use super::super::super::identity::{MAX_CHAIN_LEN, MAX_PEM_LEN};
use super::super::super::spiffe::TrustDomain;
use super::super::material::MAX_TRUST_DOMAINS;
use super::super::update::X509Update;
use super::error::SvidFileError;

/// The credential bundle's name in a SPIFFE credential folder.
pub(super) const CREDENTIAL_BUNDLE: &str = "credential-bundle.private-key.pem";

/// How a trust bundle's name ends in a SPIFFE credential folder; the trust domain is the
/// part before it.
pub(super) const TRUST_BUNDLE_SUFFIX: &str = ".spiffe-trust-bundle.pem";

/// Most entries a credential folder may have; the listing stops past it. A Kubernetes
/// projected volume adds three entries (`..data`, a timestamped folder and a symlink per
/// file) to the files themselves.
pub const MAX_FOLDER_ENTRIES: usize = 1024;

/// Most bytes one delivery (the credential bundle or chain and key, with every trust
/// bundle) may read in all; each file is also bounded by
/// [`MAX_PEM_LEN`](crate::peer::MAX_PEM_LEN).
pub const MAX_DELIVERY_LEN: usize = 4 * 1024 * 1024;

/// Where a delivery's files are.
#[derive(Debug, Clone)]
pub(super) enum Layout {
    /// A SPIFFE credential folder.
    Folder(PathBuf),
    /// A chain PEM, a key PEM and a bundle PEM per trust domain.
    Pem {
        chain: PathBuf,
        key: PathBuf,
        bundles: Vec<(TrustDomain, PathBuf)>,
    },
}

/// The bytes one poll read, before any parsing.
pub(super) struct Delivery {
    /// The chain and key: one credential bundle, or a chain PEM and a key PEM.
    credential: Credential,
    bundles: Vec<(TrustDomain, Vec<u8>)>,
}

enum Credential {
    Bundle {
        path: PathBuf,
        pem: Zeroizing<Vec<u8>>,
    },
    Pair {
        chain: Vec<u8>,
        key: Zeroizing<Vec<u8>>,
    },
}

impl Layout {
    /// Reads every file of one delivery within [`MAX_PEM_LEN`] each and
    /// [`MAX_DELIVERY_LEN`] in all, following symlinks.
    pub(super) fn read(&self) -> Result<Delivery, SvidFileError> {
        let mut budget = Budget(MAX_DELIVERY_LEN);
        match self {
            Self::Folder(dir) => {
                let bundle_paths = trust_bundle_paths(dir)?;
                // One read of the one file that holds both: a key and a chain from two reads
                // could straddle a rotation, even an atomic one.
                let path = dir.join(CREDENTIAL_BUNDLE);
                let pem = Zeroizing::new(budget.read(&path)?);
                let bundles = read_bundles(bundle_paths, &mut budget)?;
                Ok(Delivery {
                    credential: Credential::Bundle { path, pem },
                    bundles,
                })
            }
            Self::Pem {
                chain,
                key,
                bundles,
            } => {
                let chain = budget.read(chain)?;
                let key = Zeroizing::new(budget.read(key)?);
                let bundles = read_bundles(bundles.clone(), &mut budget)?;
                Ok(Delivery {
                    credential: Credential::Pair { chain, key },
                    bundles,
                })
            }
        }
    }
}

impl Delivery {
    /// Parses what was read into an update for the store. Called again for each attempt,
    /// as the store consumes an update.
    pub(super) fn to_update(&self) -> Result<X509Update, SvidFileError> {
        let mut update = match &self.credential {
            Credential::Bundle { path, pem } => {
                let (chain, key) = credential_bundle(path, pem)?;
                X509Update::new(chain, key)
            }
            Credential::Pair { chain, key } => X509Update::from_pem(chain, key)?,
        };
        for (trust_domain, pem) in &self.bundles {
            update = update.with_bundle_pem(trust_domain.clone(), pem)?;
        }
        Ok(update)
    }
}

/// A fingerprint of what a poll read: a digest of every file's bytes with its role, or of
/// the error. The same files swapped behind a symlink give the same fingerprint.
pub(super) fn fingerprint(read: &Result<Delivery, SvidFileError>) -> Vec<u8> {
    let mut context = digest::Context::new(&digest::SHA256);
    let mut add = |part: &[u8]| {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part);
    };
    match read {
        Ok(delivery) => {
            match &delivery.credential {
                Credential::Bundle { pem, .. } => add(pem),
                Credential::Pair { chain, key } => {
                    add(chain);
                    add(key);
                }
            }
            for (trust_domain, pem) in &delivery.bundles {
                add(trust_domain.as_str().as_bytes());
                add(pem);
            }
        }
        Err(error) => {
            add(b"error");
            add(error.to_string().as_bytes());
        }
    }
    context.finish().as_ref().to_vec()
}

/// What is left to read of one delivery.
struct Budget(usize);

impl Budget {
    /// Reads `path` within [`MAX_PEM_LEN`] and what is left of the budget.
    fn read(&mut self, path: &Path) -> Result<Vec<u8>, SvidFileError> {
        let bytes = read_bounded(path, MAX_PEM_LEN.min(self.0))?;
        self.0 = self.0.saturating_sub(bytes.len());
        Ok(bytes)
    }
}

/// Reads at most `limit` bytes of the regular file at `path` (symlinks followed): a file
/// whose metadata says it is larger is refused unread, and one that grows while it is read
/// costs no more than the limit.
fn read_bounded(path: &Path, limit: usize) -> Result<Vec<u8>, SvidFileError> {
    let io = |source| SvidFileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let too_large = || SvidFileError::TooLarge {
        path: path.to_path_buf(),
        limit: limit as u64,
    };
    // Checked before opening: opening a pipe would block the watcher until a writer came.
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(SvidFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let file = open_without_blocking(path).map_err(io)?;
    // The type is checked again on the handle: the path may have been swapped (a symlink
    // pointed at a pipe) between the check above and the open.
    let metadata = file.metadata().map_err(io)?;
    if !metadata.is_file() {
        return Err(SvidFileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if metadata.len() > limit as u64 {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// Opens `path` for reading without waiting for a writer: a pipe swapped in after the type
/// check would otherwise block the watcher thread (and its drop, which joins it) forever.
#[cfg(unix)]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// The `<trust-domain>.spiffe-trust-bundle.pem` files of a credential folder, by trust
/// domain. Other entries are ignored, as the standard asks; so is a name whose prefix is not
/// a valid trust domain, which leaves that domain untrusted.
fn trust_bundle_paths(dir: &Path) -> Result<Vec<(TrustDomain, PathBuf)>, SvidFileError> {
    let io = |source| SvidFileError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut found = Vec::new();
    for (count, entry) in std::fs::read_dir(dir).map_err(io)?.enumerate() {
        if count >= MAX_FOLDER_ENTRIES {
            return Err(SvidFileError::TooManyEntries {
                path: dir.to_path_buf(),
                limit: MAX_FOLDER_ENTRIES,
            });
        }
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some(domain) = name
            .to_str()
            .and_then(|name| name.strip_suffix(TRUST_BUNDLE_SUFFIX))
        else {
            continue;
        };
        match TrustDomain::new(domain) {
            Ok(trust_domain) => found.push((trust_domain, entry.path())),
            Err(error) => tracing::debug!(
                file = %entry.path().display(),
                %error,
                "trust bundle file ignored: its name is not a trust domain"
            ),
        }
        if found.len() > MAX_TRUST_DOMAINS {
            return Err(SvidFileError::TooManyTrustBundles {
                path: dir.to_path_buf(),
                limit: MAX_TRUST_DOMAINS,
            });
        }
    }
    // The listing's order is the file system's; sorted, the same files fingerprint alike.
    found.sort_by(|(a, _), (b, _)| a.cmp(b));
    Ok(found)
}

fn read_bundles(
    paths: Vec<(TrustDomain, PathBuf)>,
    budget: &mut Budget,
) -> Result<Vec<(TrustDomain, Vec<u8>)>, SvidFileError> {
    paths
        .into_iter()
        .map(|(trust_domain, path)| Ok((trust_domain, budget.read(&path)?)))
        .collect()
}

/// Splits a credential bundle into its chain and key, refusing any other layout: the key
/// first as one PKCS#8 `PRIVATE KEY` block, then `CERTIFICATE` blocks only.
fn credential_bundle(
    path: &Path,
    pem: &[u8],
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), SvidFileError> {
    let refuse = |detail| SvidFileError::CredentialBundle {
        path: path.to_path_buf(),
        detail,
    };
    let mut blocks = x509_parser::pem::Pem::iter_from_buffer(pem);
    let key = match blocks.next() {
        Some(Ok(block)) if block.label == "PRIVATE KEY" => {
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(block.contents))
        }
        Some(Ok(_)) => return Err(refuse("the first block is not a PKCS#8 `PRIVATE KEY`")),
        Some(Err(_)) => return Err(refuse("malformed PEM")),
        None => return Err(refuse("no PEM block")),
    };
    let mut chain = Vec::new();
    for block in blocks {
        let block = block.map_err(|_| refuse("malformed PEM"))?;
        if block.label != "CERTIFICATE" {
            return Err(refuse("a block other than `CERTIFICATE` after the key"));
        }
        if chain.len() == MAX_CHAIN_LEN {
            return Err(refuse("more certificates than a chain may have"));
        }
        chain.push(CertificateDer::from(block.contents));
    }
    if chain.is_empty() {
        return Err(refuse("no certificate after the key"));
    }
    Ok((chain, key))
}

#[cfg(all(test, unix))]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::open_without_blocking;

    /// A pipe that takes the place of a file after the type check must not block the
    /// watcher: opening it returns at once, and the type check on the handle refuses it.
    #[test]
    fn a_pipe_is_opened_without_waiting_for_a_writer() {
        let dir = std::env::temp_dir().join(format!(
            "meshguard-svid-fifo-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("svid.pem");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let opened = open_without_blocking(&path).map(|file| file.metadata().unwrap());
            tx.send(opened.map(|metadata| metadata.is_file())).unwrap();
        });
        // A blocking open never returns without a writer; the wait only detects that hang.
        let is_file = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("opening a pipe blocked")
            .unwrap();
        assert!(!is_file);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
