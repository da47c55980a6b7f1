//! The file source: loading at start, settling, tolerance of refusals, bounds, stopping.
//! Shared helpers for `tests_writers` are here too.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use super::poller::{Polled, Poller};
use super::read::Layout;
use super::{MAX_FOLDER_ENTRIES, PemFiles, SvidFileError};
use crate::peer::{SvidHealth, SvidStore, TrustDomain};

/// A fresh folder under the system's temporary folder, removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "meshguard-svid-files-{}-{name}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub(super) pem: String,
}

/// An SVID as a writer delivers it: the chain PEM, the PKCS#8 key PEM, the leaf's DER.
pub(super) struct Issued {
    pub(super) chain: String,
    pub(super) key: String,
    pub(super) leaf: Vec<u8>,
}

pub(super) fn new_ca() -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// An SVID for `id` from `ca`, valid from a second ago for `seconds`.
pub(super) fn issue(ca: &Ca, id: &str, seconds: u64) -> Issued {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = vec![SanType::URI(id.try_into().unwrap())];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + now - Duration::from_secs(1);
    params.not_after = epoch + now + Duration::from_secs(seconds);
    let cert = params
        .signed_by(&key, &Issuer::from_params(&ca.params, &ca.key))
        .unwrap();
    Issued {
        chain: cert.pem(),
        key: key.serialize_pem(),
        leaf: cert.der().to_vec(),
    }
}

pub(super) fn example_org() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

/// The leaf the store serves now.
pub(super) fn served_leaf(store: &SvidStore) -> Vec<u8> {
    store.current().unwrap().certified_key().cert[0].to_vec()
}

/// A poller over `layout` after a successful first load, as `start` makes it.
pub(super) fn poller(layout: Layout, store: &SvidStore, tolerance: u32) -> Poller {
    let loaded = Poller::load(&layout, store, true).unwrap();
    Poller::new(layout, store.clone(), loaded, tolerance)
}

/// Spiffe-helper's three files in `dir`.
fn helper_files(dir: &TempDir, issued: &Issued, bundle: &str) -> Layout {
    std::fs::write(dir.path("svid.pem"), &issued.chain).unwrap();
    std::fs::write(dir.path("svid_key.pem"), &issued.key).unwrap();
    std::fs::write(dir.path("svid_bundle.pem"), bundle).unwrap();
    Layout::Pem {
        chain: dir.path("svid.pem"),
        key: dir.path("svid_key.pem"),
        bundles: vec![(example_org(), dir.path("svid_bundle.pem"))],
    }
}

fn pem_files(dir: &TempDir) -> PemFiles {
    PemFiles::new(
        dir.path("svid.pem"),
        dir.path("svid_key.pem"),
        example_org(),
        dir.path("svid_bundle.pem"),
    )
    .with_interval(Duration::from_millis(50))
    .with_failure_tolerance(1)
}

#[test]
fn start_loads_the_files_before_it_returns_and_fails_without_them() {
    let dir = TempDir::new("start");
    let ca = new_ca();
    let issued = issue(&ca, "spiffe://example.org/orders", 60);
    std::fs::write(dir.path("svid.pem"), &issued.chain).unwrap();
    std::fs::write(dir.path("svid_bundle.pem"), &ca.pem).unwrap();

    let store = SvidStore::new();
    let error = pem_files(&dir).start(&store).unwrap_err();
    assert_eq!(error.reason(), "file_unreadable", "{error}");
    assert_eq!(store.status().health(), SvidHealth::Empty);

    std::fs::write(dir.path("svid_key.pem"), &issued.key).unwrap();
    let _watcher = pem_files(&dir).start(&store).unwrap();
    assert_eq!(store.status().health(), SvidHealth::Current);
    assert_eq!(served_leaf(&store), issued.leaf);
}

#[test]
fn a_half_written_bundle_is_never_taken() {
    let dir = TempDir::new("half");
    let (a, b, c) = (new_ca(), new_ca(), new_ca());
    let issued = issue(&a, "spiffe://example.org/orders", 60);
    let layout = helper_files(&dir, &issued, &format!("{}{}", a.pem, b.pem));
    let store = SvidStore::new();
    let mut poller = poller(layout, &store, 5);
    let roots = |store: &SvidStore| {
        store
            .current()
            .unwrap()
            .roots(&example_org())
            .unwrap()
            .len()
    };
    assert_eq!(roots(&store), 2);

    // Rewritten in place to add a third root: the first poll reads only the first root, a
    // bundle the store would take (the SVID chains to it) that drops trust in the second.
    let bundle = dir.path("svid_bundle.pem");
    std::fs::write(&bundle, &a.pem).unwrap();
    assert_eq!(poller.poll(), Polled::Idle);
    std::fs::write(&bundle, format!("{}{}{}", a.pem, b.pem, c.pem)).unwrap();
    assert_eq!(poller.poll(), Polled::Idle);
    assert_eq!(roots(&store), 2);
    assert_eq!(poller.poll(), Polled::Taken(2));
    assert_eq!(roots(&store), 3);
    assert_eq!(poller.poll(), Polled::Idle);
}

#[test]
fn a_permanently_broken_key_turns_the_status_failing_after_the_tolerance_and_keeps_the_old_svid() {
    let dir = TempDir::new("broken");
    let ca = new_ca();
    let issued = issue(&ca, "spiffe://example.org/orders", 60);
    let layout = helper_files(&dir, &issued, &ca.pem);
    let store = SvidStore::new();
    let mut poller = poller(layout, &store, 3);
    let key = dir.path("svid_key.pem");
    let refused = |refusals, reported| Polled::Refused { refusals, reported };

    std::fs::write(&key, issue(&ca, "spiffe://example.org/orders", 60).key).unwrap();
    assert_eq!(poller.poll(), Polled::Idle);
    assert_eq!(poller.poll(), refused(1, false));
    assert_eq!(poller.poll(), refused(2, false));
    assert_eq!(store.status().health(), SvidHealth::Current);
    assert_eq!(poller.poll(), refused(3, true));
    let status = store.status();
    assert_eq!(status.health(), SvidHealth::Failing);
    assert_eq!(
        status.last_error().map(|e| e.reason()),
        Some("key_mismatch")
    );
    assert_eq!(status.failures(), 1);
    assert_eq!(poller.poll(), refused(4, false));
    assert_eq!(poller.poll(), refused(5, false));
    assert_eq!(poller.poll(), refused(6, true));
    assert_eq!(
        store.status().failures(),
        2,
        "reported again while it lasts"
    );

    // Another broken key: still failing, now for its own reason.
    std::fs::write(
        &key,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    assert_eq!(poller.poll(), Polled::Changing);
    assert_eq!(poller.poll(), refused(7, false));
    assert_eq!(poller.poll(), refused(8, false));
    assert_eq!(poller.poll(), refused(9, true));
    let status = store.status();
    assert_eq!(status.health(), SvidHealth::Failing);
    assert_eq!(
        status.last_error().map(|e| e.reason()),
        Some("invalid_private_key")
    );
    assert_eq!(served_leaf(&store), issued.leaf);
    assert_eq!(status.generation(), 1);

    std::fs::write(&key, &issued.key).unwrap();
    assert_eq!(poller.poll(), Polled::Changing);
    assert_eq!(poller.poll(), Polled::Taken(2));
    assert_eq!(store.status().health(), SvidHealth::Current);
}

#[test]
fn an_oversized_file_is_refused_unread_with_a_typed_error() {
    let dir = TempDir::new("oversized");
    let ca = new_ca();
    let issued = issue(&ca, "spiffe://example.org/orders", 60);
    let layout = helper_files(&dir, &issued, &ca.pem);
    let store = SvidStore::new();
    let mut poller = poller(layout, &store, 2);

    // 64 GiB that take no disk: read whole, it would exhaust memory long before the end.
    let huge = std::fs::File::options()
        .write(true)
        .open(dir.path("svid_bundle.pem"))
        .unwrap();
    huge.set_len(64 << 30).unwrap();
    drop(huge);
    assert_eq!(poller.poll(), Polled::Idle);
    assert_eq!(
        poller.poll(),
        Polled::Refused {
            refusals: 1,
            reported: false
        }
    );
    assert!(matches!(
        poller.poll(),
        Polled::Refused { reported: true, .. }
    ));
    let status = store.status();
    assert_eq!(status.health(), SvidHealth::Failing);
    assert_eq!(
        status.last_error().map(|e| e.reason()),
        Some("source_failed")
    );
    assert_eq!(served_leaf(&store), issued.leaf);

    let error = pem_files(&dir).start(&SvidStore::new()).unwrap_err();
    assert!(
        matches!(&error, SvidFileError::TooLarge { path, .. } if path == &dir.path("svid_bundle.pem")),
        "{error:?}"
    );
    assert_eq!(error.reason(), "file_too_large");
}

#[cfg(unix)]
#[test]
fn a_device_in_place_of_a_file_is_refused_without_reading_it() {
    let dir = TempDir::new("device");
    let ca = new_ca();
    let issued = issue(&ca, "spiffe://example.org/orders", 60);
    helper_files(&dir, &issued, &ca.pem);
    std::fs::remove_file(dir.path("svid_key.pem")).unwrap();
    // An endless source: only the kind check keeps the read from running forever.
    std::os::unix::fs::symlink("/dev/zero", dir.path("svid_key.pem")).unwrap();
    let error = pem_files(&dir).start(&SvidStore::new()).unwrap_err();
    assert_eq!(error.reason(), "not_a_file", "{error}");
}

#[test]
fn a_credential_folder_with_too_many_entries_is_refused() {
    let dir = TempDir::new("entries");
    for n in 0..=MAX_FOLDER_ENTRIES {
        std::fs::write(dir.path(&format!("other-{n}")), "").unwrap();
    }
    let error = super::CredentialFolder::new(&dir.0)
        .with_failure_tolerance(1)
        .start(&SvidStore::new())
        .unwrap_err();
    assert_eq!(error.reason(), "too_many_entries", "{error}");
}

#[test]
fn a_credential_bundle_must_hold_the_pkcs8_key_then_certificates_only() {
    let dir = TempDir::new("layout");
    let ca = new_ca();
    let issued = issue(&ca, "spiffe://example.org/orders", 60);
    std::fs::write(dir.path("example.org.spiffe-trust-bundle.pem"), &ca.pem).unwrap();
    let bundle = dir.path("credential-bundle.private-key.pem");
    let start = |contents: String| {
        std::fs::write(&bundle, contents).unwrap();
        super::CredentialFolder::new(&dir.0)
            .with_failure_tolerance(1)
            .start(&SvidStore::new())
    };
    let sec1 = issued.key.replace("PRIVATE KEY", "EC PRIVATE KEY");
    for (contents, detail) in [
        (
            format!("{}{}", issued.chain, issued.key),
            "the first block is not a PKCS#8 `PRIVATE KEY`",
        ),
        (
            format!("{}{}", sec1, issued.chain),
            "the first block is not a PKCS#8 `PRIVATE KEY`",
        ),
        (issued.key.clone(), "no certificate after the key"),
        (
            format!("{}{}{}", issued.key, issued.chain, issued.key),
            "a block other than `CERTIFICATE` after the key",
        ),
    ] {
        let error = start(contents).unwrap_err();
        assert!(
            matches!(&error, SvidFileError::CredentialBundle { detail: d, .. } if *d == detail),
            "{error:?}"
        );
    }
    assert!(start(format!("{}{}", issued.key, issued.chain)).is_ok());
}

#[test]
fn dropping_the_watcher_stops_its_thread_at_once() {
    let dir = TempDir::new("drop");
    let ca = new_ca();
    let issued = issue(&ca, "spiffe://example.org/orders", 60);
    helper_files(&dir, &issued, &ca.pem);
    let store = SvidStore::new();
    // An hour between polls: the drop below returns only if it wakes the thread.
    let watcher = pem_files(&dir)
        .with_interval(Duration::from_secs(3600))
        .start(&store)
        .unwrap();
    let (done, dropped) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(watcher);
        done.send(()).unwrap();
    });
    // A hang detector, not a timing assertion: the drop takes microseconds.
    dropped
        .recv_timeout(Duration::from_secs(60))
        .expect("dropping the watcher joins its thread");
    assert_eq!(store.status().generation(), 1);
}

/// Waits until the store serves generation `generation`; panics after a minute.
pub(super) fn wait_for_generation(store: &SvidStore, generation: u64) {
    for _ in 0..6000 {
        if store.status().generation() >= generation {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("generation {generation} never came: {:?}", store.status());
}

/// Writes `contents` to `path` as a plain in-place write does: truncate, then the bytes
/// in two parts, with `between` run on the half-written file.
pub(super) fn write_in_place(path: &Path, contents: &str, between: impl FnOnce()) {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path).unwrap();
    let half = contents.len() / 2;
    file.write_all(&contents.as_bytes()[..half]).unwrap();
    file.flush().unwrap();
    between();
    file.write_all(&contents.as_bytes()[half..]).unwrap();
}
