//! Why SVID files could not be read or taken.

use std::path::PathBuf;

use super::super::error::SvidUpdateError;

/// Why the SVID files were not read or not taken.
///
/// From [`CredentialFolder::start`](super::CredentialFolder::start) and
/// [`PemFiles::start`](super::PemFiles::start) when the first load fails; while watching,
/// the same errors reach [`SvidStatus`](super::super::SvidStatus) once they persist (read
/// errors as [`SvidUpdateError::Source`]). Each variant has a stable
/// [`reason`](Self::reason); the `Display` text is for humans and never shows file contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SvidFileError {
    /// A file or the credential folder could not be opened or read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A path names something other than a regular file (a directory, a device, a pipe),
    /// which is refused before it is read.
    #[error("`{path}` is not a regular file")]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// A file is larger than its bound (its own, or what is left of the bound on one whole
    /// delivery); it is refused before it is read, or as soon as reading passes the bound.
    #[error("`{path}` is larger than {limit} bytes")]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The bound.
        limit: u64,
    },
    /// The credential folder has more entries than [`MAX_FOLDER_ENTRIES`](super::MAX_FOLDER_ENTRIES).
    #[error("`{path}` has more than {limit} entries")]
    TooManyEntries {
        /// The folder.
        path: PathBuf,
        /// The bound.
        limit: usize,
    },
    /// The credential folder holds more trust bundles than
    /// [`MAX_TRUST_DOMAINS`](super::super::MAX_TRUST_DOMAINS).
    #[error("`{path}` holds more than {limit} trust bundles")]
    TooManyTrustBundles {
        /// The folder.
        path: PathBuf,
        /// The bound.
        limit: usize,
    },
    /// The credential bundle is not laid out as SPIFFE Filesystem Delivery requires: one
    /// PKCS#8 `PRIVATE KEY` block, then one or more `CERTIFICATE` blocks and nothing else.
    #[error("`{path}` is not a credential bundle: {detail}")]
    CredentialBundle {
        /// The path.
        path: PathBuf,
        /// What is wrong with it.
        detail: &'static str,
    },
    /// The material was read but the store refused it (a malformed PEM, a key that does not
    /// match the certificate, an expired SVID, a missing bundle).
    #[error(transparent)]
    Update(#[from] SvidUpdateError),
    /// The watching thread could not be started.
    #[error("cannot start the svid file watcher: {0}")]
    Spawn(#[source] std::io::Error),
}

impl SvidFileError {
    /// A short, stable, machine-readable reason; for [`Update`](Self::Update) the store's
    /// own reason (such as `key_mismatch`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Io { .. } => "file_unreadable",
            Self::NotAFile { .. } => "not_a_file",
            Self::TooLarge { .. } => "file_too_large",
            Self::TooManyEntries { .. } => "too_many_entries",
            Self::TooManyTrustBundles { .. } => "too_many_trust_bundles",
            Self::CredentialBundle { .. } => "invalid_credential_bundle",
            Self::Update(error) => error.reason(),
            Self::Spawn(_) => "spawn_failed",
        }
    }

    /// The error to record in the store's status: the store's own for a refused update,
    /// [`SvidUpdateError::Source`] for a read that failed.
    pub(super) fn to_update_error(&self) -> SvidUpdateError {
        match self {
            Self::Update(error) => error.clone(),
            other => SvidUpdateError::Source(other.to_string()),
        }
    }
}
