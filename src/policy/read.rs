//! Reading the configured sources into memory, every read bounded before it starts, with a
//! digest of exactly the bytes read so that a watcher can tell when they have settled.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use ring::digest;

use super::MAX_SOURCE_BYTES;
use super::error::PolicyError;
use super::source::{
    EntityRepr, EntitySource, PolicyRepr, PolicySource, SchemaRepr, SchemaSource, Sources,
};

/// Most files read from one policy directory.
const MAX_POLICY_FILES: usize = 10_000;

/// One policy file (or the text source): its name, its text, and whether policy ids without
/// `@id` are prefixed with the file name (directories) or not.
#[derive(Debug, Clone)]
pub(crate) struct PolicyText {
    pub(crate) origin: Arc<str>,
    pub(crate) text: Arc<str>,
    pub(crate) prefixed: bool,
}

/// A source's name and text.
#[derive(Debug, Clone)]
pub(crate) struct NamedText {
    pub(crate) origin: Arc<str>,
    pub(crate) text: Arc<str>,
}

/// Everything the sources held when read, not parsed yet.
#[derive(Debug)]
pub(crate) struct Texts {
    pub(crate) policies: Vec<PolicyText>,
    /// The candidate set; its read error drops the candidate, never the enforced set.
    pub(crate) shadow: Option<Result<Vec<PolicyText>, PolicyError>>,
    /// The schema, and whether it is JSON.
    pub(crate) schema: Option<(NamedText, bool)>,
    pub(crate) entities: Option<NamedText>,
}

impl Sources {
    /// Reads every source; a read of the candidate set that fails is kept as its error.
    pub(crate) fn read(&self) -> Result<Texts, PolicyError> {
        Ok(Texts {
            policies: read_policies(&self.policies)?,
            shadow: self.shadow.as_ref().map(read_policies),
            schema: self.schema.as_ref().map(read_schema).transpose()?,
            entities: self.entities.as_ref().map(read_entities).transpose()?,
        })
    }
}

impl Texts {
    /// SHA-256 over every name and text read, in order, and the candidate's read error.
    fn digest(&self) -> digest::Digest {
        let mut context = digest::Context::new(&digest::SHA256);
        let mut add = |part: &[u8]| {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        };
        let mut add_policies = |files: &[PolicyText]| {
            for file in files {
                add(file.origin.as_bytes());
                add(file.text.as_bytes());
            }
        };
        add_policies(&self.policies);
        match &self.shadow {
            None => add(b"no candidate"),
            Some(Ok(files)) => add_policies(files),
            Some(Err(error)) => add(error.to_string().as_bytes()),
        }
        for named in [self.schema.as_ref().map(|(s, _)| s), self.entities.as_ref()]
            .into_iter()
            .flatten()
        {
            add(named.origin.as_bytes());
            add(named.text.as_bytes());
        }
        context.finish()
    }
}

/// A fingerprint of what a read gave: the digest of the texts, or of the error.
pub(crate) fn fingerprint(read: &Result<Texts, PolicyError>) -> Vec<u8> {
    match read {
        Ok(texts) => texts.digest().as_ref().to_vec(),
        Err(error) => digest::digest(&digest::SHA256, error.to_string().as_bytes())
            .as_ref()
            .iter()
            .chain(b"error")
            .copied()
            .collect(),
    }
}

fn read_policies(source: &PolicySource) -> Result<Vec<PolicyText>, PolicyError> {
    let path = match &source.0 {
        PolicyRepr::Text(text) => {
            check_size("<policies>", text.len())?;
            return Ok(vec![PolicyText {
                origin: Arc::from("<policies>"),
                text: text.clone(),
                prefixed: false,
            }]);
        }
        PolicyRepr::Path(path) => path,
    };
    let metadata = std::fs::metadata(path).map_err(|source| io(path, source))?;
    if metadata.is_dir() {
        return policy_files(path);
    }
    Ok(vec![PolicyText {
        origin: display(path),
        text: read_file(path, MAX_SOURCE_BYTES)?,
        prefixed: false,
    }])
}

/// The `.cedar` files of a directory in file-name order, read within one budget of
/// [`MAX_SOURCE_BYTES`] for the whole directory.
fn policy_files(dir: &Path) -> Result<Vec<PolicyText>, PolicyError> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|source| io(dir, source))? {
        let entry = entry.map_err(|source| io(dir, source))?;
        let path = entry.path();
        let is_file = entry
            .file_type()
            .map_err(|source| io(&path, source))?
            .is_file()
            || std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        if is_file && path.extension().is_some_and(|ext| ext == "cedar") {
            paths.push(path);
        }
        if paths.len() > MAX_POLICY_FILES {
            return Err(PolicyError::TooLarge {
                origin: dir.display().to_string(),
                size: paths.len() as u64,
                limit: MAX_POLICY_FILES as u64,
            });
        }
    }
    if paths.is_empty() {
        return Err(PolicyError::NoPolicyFiles {
            path: dir.to_path_buf(),
        });
    }
    paths.sort();
    let mut used = 0usize;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let text = read_file(&path, MAX_SOURCE_BYTES - used).map_err(|error| match error {
            PolicyError::TooLarge { size, .. } => PolicyError::TooLarge {
                origin: dir.display().to_string(),
                size: size.saturating_add(used as u64),
                limit: MAX_SOURCE_BYTES as u64,
            },
            other => other,
        })?;
        used += text.len();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push(PolicyText {
            origin: Arc::from(name),
            text,
            prefixed: true,
        });
    }
    Ok(files)
}

fn read_schema(source: &SchemaSource) -> Result<(NamedText, bool), PolicyError> {
    match &source.0 {
        SchemaRepr::Cedar(text) => Ok((in_memory("<schema>", text)?, false)),
        SchemaRepr::Json(text) => Ok((in_memory("<schema>", text)?, true)),
        SchemaRepr::File(path) => Ok((
            NamedText {
                origin: display(path),
                text: read_file(path, MAX_SOURCE_BYTES)?,
            },
            path.extension().is_some_and(|ext| ext == "json"),
        )),
    }
}

fn read_entities(source: &EntitySource) -> Result<NamedText, PolicyError> {
    match &source.0 {
        EntityRepr::Json(text) => in_memory("<entities>", text),
        EntityRepr::File(path) => Ok(NamedText {
            origin: display(path),
            text: read_file(path, MAX_SOURCE_BYTES)?,
        }),
    }
}

fn in_memory(origin: &str, text: &Arc<str>) -> Result<NamedText, PolicyError> {
    check_size(origin, text.len())?;
    Ok(NamedText {
        origin: Arc::from(origin),
        text: text.clone(),
    })
}

/// Reads at most `limit` bytes of a file: a file that grows while it is read, or whose
/// size the metadata does not tell (`/proc`, pipes), still costs no more than the limit.
fn read_file(path: &Path, limit: usize) -> Result<Arc<str>, PolicyError> {
    let too_large = |size: u64| PolicyError::TooLarge {
        origin: path.display().to_string(),
        size,
        limit: limit as u64,
    };
    let file = std::fs::File::open(path).map_err(|source| io(path, source))?;
    let declared = file.metadata().map_err(|source| io(path, source))?.len();
    if declared > limit as u64 {
        return Err(too_large(declared));
    }
    let mut text = String::new();
    file.take(limit as u64 + 1)
        .read_to_string(&mut text)
        .map_err(|source| io(path, source))?;
    if text.len() > limit {
        return Err(too_large(text.len() as u64));
    }
    Ok(Arc::from(text))
}

pub(crate) fn check_size(origin: &str, size: usize) -> Result<(), PolicyError> {
    if size > MAX_SOURCE_BYTES {
        return Err(PolicyError::TooLarge {
            origin: origin.to_owned(),
            size: size as u64,
            limit: MAX_SOURCE_BYTES as u64,
        });
    }
    Ok(())
}

fn display(path: &Path) -> Arc<str> {
    Arc::from(path.display().to_string())
}

fn io(path: &Path, source: std::io::Error) -> PolicyError {
    PolicyError::Io {
        path: path.to_path_buf(),
        source,
    }
}
