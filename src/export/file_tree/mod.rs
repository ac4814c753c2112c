//! A commit's tree (or a subdirectory of it) → a file-tree artifact: nested OCI indexes, one
//! raw blob per regular file ([`crate::image::file_tree`] is the mapping).
//!
//! ```text
//! commit ──dirtrees, depth first──> per directory: file blobs (streamed from objects)   build
//!        ──> a manifest, or an index of shard manifests and subdirectory documents      build
//!        ──> an OCI layout or archive (sink) ──> a registry, tree by tree (push)        push
//! ```
//!
//! The output is a function of the tree and `--max-blobs` alone: the same tree gives the same
//! root digest. Identical file contents share one blob. Memory holds one directory's
//! descriptors at a time per level, never file contents.

mod build;
pub mod push;

use ostree::Repo;

use crate::error::{Error, Result};
use crate::export::encapsulate::walk;
use crate::export::sink::Sink;
use crate::image::refs::resolve_rev;
use crate::registry::{PushReport, RegistryOptions};
use crate::source::SourceRef;

/// Options of [`encapsulate_file_tree`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct FileTreeOptions {
    /// Most file blobs (layers) per manifest; a directory with more files is split into
    /// several manifests, in name order.
    pub max_blobs: usize,
    /// Write this subdirectory of the commit (`a/b`) instead of its root.
    pub subdir: Option<String>,
    /// How to reach a registry destination.
    pub registry: RegistryOptions,
}

pub use crate::image::file_tree::DEFAULT_MAX_BLOBS;

impl Default for FileTreeOptions {
    fn default() -> Self {
        FileTreeOptions {
            max_blobs: DEFAULT_MAX_BLOBS,
            subdir: None,
            registry: RegistryOptions::new(),
        }
    }
}

impl FileTreeOptions {
    /// Options with every default.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What [`encapsulate_file_tree`] wrote.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct FileTreeReport {
    /// The commit written.
    pub commit: String,
    /// The digest of the root document (index or manifest).
    pub root_digest: String,
    /// Manifests written (file shards and file-only directories).
    pub manifests: usize,
    /// Indexes written (the root included when it is one).
    pub indexes: usize,
    /// Regular files.
    pub files: usize,
    /// Distinct file blobs.
    pub blobs: usize,
    /// Their total size.
    pub blob_bytes: u64,
    /// For a registry destination: what the push sent.
    pub push: Option<PushReport>,
}

/// The (dirtree, dirmeta) of directory `subdir` (`a/b`) of the tree rooted at `root`.
fn find_subdir(
    repo: &Repo,
    rev: &str,
    root: (String, String),
    subdir: &str,
) -> Result<(String, String)> {
    let mut at = root;
    let mut path = String::new();
    for name in subdir.split('/').filter(|c| !c.is_empty() && *c != ".") {
        let (_, dirs) = walk::load_dirtree(repo, &at.0, &path)?;
        let found = dirs.into_iter().find(|(n, _, _)| n == name);
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(name);
        let Some((_, tree, meta)) = found else {
            return Err(Error::NotFound(format!("directory /{path} in {rev}")));
        };
        at = (hex::encode(tree), hex::encode(meta));
    }
    Ok(at)
}

/// Writes commit `rev` (a ref or checksum, or an image name), or its subdirectory, as a
/// file-tree artifact to `dest`: `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]` or
/// `docker://REFERENCE`.
///
/// # Errors
/// The commit or subdirectory is missing, the tree cannot be carried
/// ([`Error::Unencapsulable`]: nested deeper than [`crate::image::file_tree::MAX_DEPTH`], an
/// xattr name that is not UTF-8), the destination is a docker archive, or writing or pushing
/// fails.
pub fn encapsulate_file_tree(
    repo: &Repo,
    rev: &str,
    dest: &SourceRef,
    opts: &FileTreeOptions,
) -> Result<FileTreeReport> {
    write(repo, rev, dest, opts, None)
}

/// Exports the imported file tree `name` ([`crate::image::ImageInfo::file_tree`]) to `dest`
/// as the artifact it was imported from: its image commit's tree, sharded with the recorded
/// `--max-blobs`. The documents are rebuilt from the tree, so the root digest must come out
/// as the one imported (the same digests all the way down, every blob the same bytes);
/// when it does not, nothing is written.
///
/// # Errors
/// The image is missing or not a file tree; the rebuilt root differs from the imported one
/// ([`Error::InvalidImage`] naming both: the artifact was written by another tool, or with
/// annotations ocitree does not keep); as [`encapsulate_file_tree`].
pub fn export_file_tree(
    repo: &Repo,
    name: &str,
    dest: &SourceRef,
    opts: &FileTreeOptions,
) -> Result<FileTreeReport> {
    let _lock = crate::repo::RepoLock::reading(&crate::repo::dir(repo))?;
    let info = crate::image::ImageInfo::load(repo, name)?;
    let Some(record) = &info.file_tree else {
        return Err(Error::InvalidImage {
            image: name.to_string(),
            reason: "not a file tree (`ocitree export` writes it as an image)".into(),
        });
    };
    let opts = FileTreeOptions {
        max_blobs: record.max_blobs,
        subdir: None,
        registry: opts.registry.clone(),
    };
    let expect = Expect {
        image: name,
        root: &info.manifest_digest,
    };
    write(repo, &info.commit, dest, &opts, Some(expect))
}

/// The root digest an export must reproduce.
#[derive(Clone, Copy, Debug)]
struct Expect<'a> {
    image: &'a str,
    root: &'a str,
}

fn write(
    repo: &Repo,
    rev: &str,
    dest: &SourceRef,
    opts: &FileTreeOptions,
    expect: Option<Expect<'_>>,
) -> Result<FileTreeReport> {
    if opts.max_blobs == 0 {
        return Err(Error::InvalidReference {
            reference: dest.to_string(),
            reason: "--max-blobs must be at least 1".into(),
        });
    }
    let checksum = resolve_rev(repo, rev)?;
    let root = walk::commit_root(repo, &checksum)?;
    let root = match &opts.subdir {
        Some(s) => find_subdir(repo, rev, root, s)?,
        None => root,
    };
    let mut report = FileTreeReport {
        commit: checksum,
        ..Default::default()
    };
    match dest {
        SourceRef::Registry(reference) => {
            let tmp = crate::repo::tmp_dir(repo);
            let (staging, layout) = crate::export::staging::scratch_layout(&tmp, "ocitree-push-")?;
            write_layout(repo, rev, &root, &layout, opts, expect, &mut report)?;
            report.push = Some(push::push_tree(staging.path(), reference, &opts.registry)?);
        }
        SourceRef::DockerArchive { .. } => {
            return Err(Error::InvalidReference {
                reference: dest.to_string(),
                reason: "a docker archive holds one image manifest: a file tree needs an OCI \
                         layout (oci:, oci-archive:) or a registry (docker://)"
                    .into(),
            });
        }
        _ => write_layout(repo, rev, &root, dest, opts, expect, &mut report)?,
    }
    Ok(report)
}

fn write_layout(
    repo: &Repo,
    rev: &str,
    root: &(String, String),
    dest: &SourceRef,
    opts: &FileTreeOptions,
    expect: Option<Expect<'_>>,
    report: &mut FileTreeReport,
) -> Result<()> {
    let mut sink = Sink::open(dest)?;
    let mut b = build::Builder::new(repo, rev, &mut sink, opts.max_blobs);
    let (doc, media_type) = b.root(&root.0, &root.1)?;
    let counts = b.counts();
    report.manifests = counts.manifests;
    report.indexes = counts.indexes;
    report.files = counts.files;
    report.blobs = counts.blobs;
    report.blob_bytes = counts.blob_bytes;
    if let Some(e) = expect {
        let rebuilt = crate::digest::Digest::sha256_of(&doc);
        if rebuilt.as_str() != e.root {
            // The sink is dropped unfinished: the destination is as it was.
            return Err(Error::InvalidImage {
                image: e.image.to_string(),
                reason: format!(
                    "its tree, written as a file tree with --max-blobs {}, has root {rebuilt}, \
                     not the {} it was imported from (made by another tool, or with \
                     annotations ocitree does not keep); nothing written. `ocitree \
                     encapsulate --format file-tree {}` writes it as a new artifact",
                    opts.max_blobs, e.root, e.image
                ),
            });
        }
    }
    report.root_digest = sink.finish_document(&doc, media_type)?.to_string();
    Ok(())
}
