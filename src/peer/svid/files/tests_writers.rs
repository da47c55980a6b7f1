//! The file source against emulations of the writers it reads after: Kubernetes'
//! AtomicWriter (secrets, projected volumes, cert-manager's csi-driver) and spiffe-helper.

use std::path::Path;
use std::time::Duration;

use super::poller::Polled;
use super::read::Layout;
use super::tests::{
    TempDir, example_org, issue, new_ca, poller, served_leaf, wait_for_generation, write_in_place,
};
use super::{CredentialFolder, PemFiles};
use crate::peer::{SvidHealth, SvidStore, TrustDomain};

/// Publishes `files` into `dir` as kubelet's AtomicWriter does: into a new timestamped
/// folder, then a `..data_tmp` symlink to it renamed over `..data`, user-visible symlinks
/// through `..data`, and the previous folder and the links of files no longer published
/// removed.
fn publish(dir: &Path, version: u32, files: &[(&str, &str)]) {
    let stamp = format!("..2026_11_30_00_00_{version:02}.000000001");
    std::fs::create_dir(dir.join(&stamp)).unwrap();
    for (name, contents) in files {
        std::fs::write(dir.join(&stamp).join(name), contents).unwrap();
    }
    let previous = std::fs::read_link(dir.join("..data")).ok();
    std::os::unix::fs::symlink(&stamp, dir.join("..data_tmp")).unwrap();
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
    for (name, _) in files {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).unwrap();
        }
    }
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        let is_link = entry.file_type().unwrap().is_symlink();
        if is_link && !name.starts_with("..") && !files.iter().any(|(f, _)| *f == name) {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
    if let Some(previous) = previous {
        std::fs::remove_dir_all(dir.join(previous)).unwrap();
    }
}

#[test]
fn kubernetes_atomic_writer_rotations_are_each_taken_and_count_generations() {
    let dir = TempDir::new("k8s");
    let ca = new_ca();
    let first = issue(&ca, "spiffe://example.org/orders", 30);
    let secret = |issued: &super::tests::Issued| {
        vec![
            ("tls.crt", issued.chain.clone()),
            ("tls.key", issued.key.clone()),
            ("ca.crt", ca.pem.clone()),
        ]
    };
    let write = |version, files: Vec<(&'static str, String)>| {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
        publish(&dir.0, version, &files);
    };
    write(0, secret(&first));
    let store = SvidStore::new();
    let _watcher = PemFiles::new(
        dir.path("tls.crt"),
        dir.path("tls.key"),
        example_org(),
        dir.path("ca.crt"),
    )
    .with_interval(Duration::from_millis(50))
    .start(&store)
    .unwrap();
    assert_eq!(served_leaf(&store), first.leaf);

    for version in 1..=4 {
        let next = issue(&ca, "spiffe://example.org/orders", 30);
        write(version, secret(&next));
        wait_for_generation(&store, u64::from(version) + 1);
        let status = store.status();
        assert_eq!(status.generation(), u64::from(version) + 1);
        assert_eq!(status.health(), SvidHealth::Current);
        assert_eq!(served_leaf(&store), next.leaf, "rotation {version}");
    }
    assert_eq!(store.status().failures(), 0);
}

#[test]
fn a_credential_folder_in_a_kubernetes_volume_federates_and_defederates() {
    let dir = TempDir::new("federation");
    let (ca, partner) = (new_ca(), new_ca());
    let issued = issue(&ca, "spiffe://example.org/orders", 30);
    let credential = format!("{}{}", issued.key, issued.chain);
    let own = ("example.org.spiffe-trust-bundle.pem", ca.pem.as_str());
    let theirs = ("partner.test.spiffe-trust-bundle.pem", partner.pem.as_str());
    let readme = ("README", "not a bundle: ignored");
    let key_and_chain = ("credential-bundle.private-key.pem", credential.as_str());
    publish(&dir.0, 0, &[key_and_chain, own, readme]);
    let store = SvidStore::new();
    let mut poller = poller(Layout::Folder(dir.0.clone()), &store, 5);
    let domains = |store: &SvidStore| -> Vec<String> {
        store
            .current()
            .unwrap()
            .trust_domains()
            .map(|td| td.as_str().to_owned())
            .collect()
    };
    assert_eq!(domains(&store), ["example.org"]);

    publish(&dir.0, 1, &[key_and_chain, own, theirs, readme]);
    assert_eq!(poller.poll(), Polled::Idle);
    assert_eq!(poller.poll(), Polled::Taken(2));
    assert_eq!(domains(&store), ["example.org", "partner.test"]);

    publish(&dir.0, 2, &[key_and_chain, own, readme]);
    assert_eq!(poller.poll(), Polled::Idle);
    assert_eq!(poller.poll(), Polled::Taken(3));
    assert_eq!(domains(&store), ["example.org"]);
    let partner_td = TrustDomain::new("partner.test").unwrap();
    assert!(
        store
            .current()
            .unwrap()
            .client_verifier(&partner_td)
            .is_none()
    );

    // The same folder through `start`, with its own store.
    let other = SvidStore::new();
    let _watcher = CredentialFolder::new(&dir.0).start(&other).unwrap();
    assert_eq!(domains(&other), ["example.org"]);
}

/// spiffe-helper rotating to an SVID from a new CA: it rewrites `svid.pem`, then
/// `svid_key.pem`, then `svid_bundle.pem`, each in place, one after the other. Here each
/// write is cut in two with a poll in between, and two polls pass between the files, long
/// enough for the mismatched states to settle.
#[test]
fn spiffe_helper_rewrites_in_place_never_serve_a_mismatched_pair_nor_turn_the_status_failing() {
    let dir = TempDir::new("helper");
    let (old_ca, new_ca) = (new_ca(), new_ca());
    let old = issue(&old_ca, "spiffe://example.org/orders", 30);
    let new = issue(&new_ca, "spiffe://example.org/orders", 30);
    let (cert, key, bundle) = (
        dir.path("svid.pem"),
        dir.path("svid_key.pem"),
        dir.path("svid_bundle.pem"),
    );
    std::fs::write(&cert, &old.chain).unwrap();
    std::fs::write(&key, &old.key).unwrap();
    std::fs::write(&bundle, &old_ca.pem).unwrap();
    let layout = Layout::Pem {
        chain: cert.clone(),
        key: key.clone(),
        bundles: vec![(example_org(), bundle.clone())],
    };
    let store = SvidStore::new();
    let mut poller = poller(layout, &store, super::DEFAULT_FAILURE_TOLERANCE);
    let mut outcomes = Vec::new();
    let mut poll_and_check = |outcomes: &mut Vec<Polled>| {
        outcomes.push(poller.poll());
        let served = store.current().unwrap();
        assert!(served.certified_key().keys_match().is_ok());
        let leaf = served.certified_key().cert[0].to_vec();
        assert!(leaf == old.leaf || leaf == new.leaf);
        assert_ne!(store.status().health(), SvidHealth::Failing, "{outcomes:?}");
    };
    let both_bundles = format!("{}{}", old_ca.pem, new_ca.pem);
    for (path, contents) in [
        (&cert, &new.chain),
        (&key, &new.key),
        (&bundle, &both_bundles),
    ] {
        let mut half = Vec::new();
        write_in_place(path, contents, || poll_and_check(&mut half));
        outcomes.extend(half);
        poll_and_check(&mut outcomes);
        poll_and_check(&mut outcomes);
    }
    assert!(
        outcomes.iter().any(|o| matches!(o, Polled::Refused { .. })),
        "the mismatched states settled: {outcomes:?}"
    );
    assert_eq!(outcomes.last(), Some(&Polled::Taken(2)), "{outcomes:?}");
    assert_eq!(served_leaf(&store), new.leaf);
    assert_eq!(store.status().failures(), 0);
}
