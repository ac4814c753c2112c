//! Importing a file-tree artifact ([`crate::image::file_tree`]): recognised by the
//! `artifactType` of the document the source selects, read whole into a checked plan
//! ([`read`]: no blob read yet, hostile input refused), then written in one transaction
//! ([`mod@write`]: one commit per manifest, reused by digest; blobs fetched only when no local
//! object holds them), then the tree, the image commit and its ref.

pub mod read;
pub mod write;

use ostree::{MutableTree, Repo, gio};

use crate::error::{Error, Result};
use crate::image::file_tree::{ARTIFACT_TYPE, DEFAULT_MAX_BLOBS, FileTreeRecord};
use crate::image::{ImageFormat, ImageInfo, ImageMeta, refs};
use crate::import::{CheckReport, ImportOptions, ImportReport, LayerStatus};
use crate::progress::Event;
use crate::refname;
use crate::resolve::read_blob;
use crate::source::{Selector, Source, SourceRef};
use crate::spec::{Descriptor, Index};

pub use write::FileTreeStats;

/// The document `source` selects when it is a file-tree root: the one top-level entry of the
/// index (by tag or digest when the source names one) whose `artifactType` (on the
/// descriptor, else in the document; for an index without one, that of its first entry) is
/// [`ARTIFACT_TYPE`]. `None` for anything else (read then as an image), unless `opts.format`
/// forces `file-tree`.
///
/// # Errors
/// `--format file-tree` and the source is not one; reading fails.
pub fn detect(
    src: &mut dyn Source,
    image: &str,
    selector: &Selector,
    opts: &ImportOptions,
) -> Result<Option<Descriptor>> {
    let forced = opts.format == Some(ImageFormat::FileTree);
    if opts.format.is_some() && !forced {
        return Ok(None);
    }
    let found = root(src, image, selector);
    match (found, forced) {
        (Ok(Some(d)), _) => Ok(Some(d)),
        (Ok(None), false) | (Err(_), false) => Ok(None),
        (Err(e), true) => Err(e),
        (Ok(None), true) => Err(Error::InvalidImage {
            image: image.to_string(),
            reason: format!(
                "--format file-tree was asked for, but the selected document's artifactType \
                 is not {ARTIFACT_TYPE}"
            ),
        }),
    }
}

fn root(src: &mut dyn Source, image: &str, selector: &Selector) -> Result<Option<Descriptor>> {
    let bytes = src.index()?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| Error::InvalidImage {
        image: image.to_string(),
        reason: format!("index.json: {e}"),
    })?;
    let top: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| match selector {
            Selector::Default => true,
            Selector::Tag(t) => d
                .ref_name()
                .is_some_and(|r| r == t || r.ends_with(&format!(":{t}"))),
            Selector::Digest(dg) => d.digest_str == dg.as_str(),
        })
        .collect();
    let [desc] = top.as_slice() else {
        return Ok(None);
    };
    if desc.artifact_type.as_deref() == Some(ARTIFACT_TYPE) {
        return Ok(Some((*desc).clone()));
    }
    let t = typed(src, image, desc)?;
    let found = match (t.artifact_type.as_deref(), t.manifests.as_deref()) {
        (Some(a), _) => a == ARTIFACT_TYPE,
        // An index copied by a tool that predates OCI 1.1 lost its artifactType (skopeo
        // 1.9 keeps only mediaType, manifests and annotations): its first entry says.
        (None, Some([first, ..])) => {
            first.artifact_type.as_deref() == Some(ARTIFACT_TYPE)
                || typed(src, image, first)?.artifact_type.as_deref() == Some(ARTIFACT_TYPE)
        }
        (None, _) => false,
    };
    Ok(found.then(|| (*desc).clone()))
}

/// The fields of a document that say what it is.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Typed {
    artifact_type: Option<String>,
    manifests: Option<Vec<Descriptor>>,
}

fn typed(src: &mut dyn Source, image: &str, desc: &Descriptor) -> Result<Typed> {
    let doc = read_blob(src, image, desc)?;
    serde_json::from_slice(&doc).map_err(|e| Error::InvalidImage {
        image: image.to_string(),
        reason: format!("{}: {e}", desc.digest_str),
    })
}

/// The local name: `opts.name`, else the root's ref name (a tag naming the source's base
/// name), else the source's base name.
fn name(source: &SourceRef, root: &Descriptor, opts: &ImportOptions) -> Result<String> {
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => match root.ref_name() {
            Some(r) if r.contains('/') || r.contains(':') => r.to_string(),
            Some(t) => format!("{}:{t}", source.base_name()),
            None => source.base_name(),
        },
    };
    refname::check_image_name(&name)?;
    Ok(name)
}

/// What an import of the file tree `root` would read ([`crate::import::check`]): every
/// document is read (they are small), no blob. Each manifest of files is a layer, present
/// when an earlier import stored it; its size is the sum of its files' sizes.
///
/// # Errors
/// As [`import`] reading the documents.
pub fn check(
    repo: &Repo,
    source: &SourceRef,
    mut src: Box<dyn Source>,
    root: &Descriptor,
    opts: &ImportOptions,
) -> Result<CheckReport> {
    let image = source.to_string();
    let name = name(source, root, opts)?;
    let plan = read::Reader::new(src.as_mut(), &image).dir(root, "")?;
    let mut shards = Vec::new();
    plan.all_shards(&mut shards);
    let mut layers: Vec<LayerStatus> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in shards {
        let digest = s.digest.to_string();
        if !seen.insert(digest.clone()) {
            continue;
        }
        layers.push(LayerStatus {
            present: refs::resolve(repo, &refname::blob_ref(&digest))?.is_some(),
            size: (s.files.iter()).fold(0u64, |n, f| n.saturating_add(f.size)),
            diff_id: None,
            digest,
        });
    }
    // A file tree is always built the same way from its root document: it is up to date
    // when the name has that root and every manifest of files is stored.
    let imported_manifest = crate::image::ImageInfo::load(repo, &name)
        .ok()
        .map(|i| i.manifest_digest);
    Ok(CheckReport {
        imported: refs::resolve(repo, &refname::image_ref(&name))?.is_some(),
        up_to_date: imported_manifest.as_deref() == Some(root.digest_str.as_str())
            && layers.iter().all(|l| l.present),
        imported_manifest,
        name,
        manifest_digest: root.digest_str.clone(),
        layers,
    })
}

/// What the image commit records of the tree `plan`, whose manifests are `shards`
/// ([`FileTreeRecord`]). `--max-blobs` is
/// the size of a full shard when a directory was split (every shard but its last is full),
/// else the default, or the largest manifest when one is larger than the default.
fn record(plan: &read::Dir, shards: &[&read::Shard]) -> FileTreeRecord {
    let split = split_shard_size(plan);
    let largest = shards.iter().map(|s| s.files.len()).max().unwrap_or(0);
    let mut blobs = std::collections::HashMap::new();
    for f in shards.iter().flat_map(|s| &s.files) {
        blobs.insert(&f.blob, f.size);
    }
    FileTreeRecord {
        max_blobs: split.unwrap_or(largest.max(DEFAULT_MAX_BLOBS)),
        files: shards.iter().map(|s| s.files.len()).sum(),
        blobs: blobs.len(),
        bytes: blobs.values().fold(0u64, |n, s| n.saturating_add(*s)),
    }
}

/// The size of the first shard of the first directory split into several, if any.
fn split_shard_size(dir: &read::Dir) -> Option<usize> {
    match dir.shards.as_slice() {
        [first, _, ..] => Some(first.files.len()),
        _ => dir.subdirs.iter().find_map(|(_, d)| split_shard_size(d)),
    }
}

/// Imports the file tree whose root document is `root`, from the open source `src`.
///
/// # Errors
/// Hostile or malformed documents ([`Error::InvalidImage`] naming the path), a blob that does
/// not match its descriptor ([`Error::Layer`] naming the manifest), or libostree fails. On
/// error nothing is changed.
pub fn import(
    repo: &Repo,
    source: &SourceRef,
    mut src: Box<dyn Source>,
    root: Descriptor,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    let image = source.to_string();
    let name = name(source, &root, opts)?;
    let plan = read::Reader::new(src.as_mut(), &image).dir(&root, "")?;
    let root_bytes = read_blob(src.as_mut(), &image, &root)?;
    // Stored with the image, it must read back as `inspect` and `export` read it.
    crate::spec::check_readable_back(
        &image,
        &format!("file tree root {}", root.digest_str),
        &root_bytes,
    )?;
    let root_str = String::from_utf8(root_bytes).map_err(|_| Error::InvalidImage {
        image: image.clone(),
        reason: "root document is not UTF-8".into(),
    })?;
    let mut shards = Vec::new();
    plan.all_shards(&mut shards);
    let previous = refs::resolve(repo, &refname::image_ref(&name))?;

    let txn = repo
        .auto_transaction(gio::Cancellable::NONE)
        .map_err(Error::ostree("starting a transaction"))?;
    let mut w = write::Writer::new(repo, src.as_mut(), &image);
    if let Some(p) = &previous
        && let Ok(info) = ImageInfo::load_commit(repo, &name, p)
    {
        w.learn_image(&info.layers)?;
    }
    w.prepare(&shards, &crate::repo::blob_spool_dir(repo), &opts.progress)?;
    for s in &shards {
        w.shard(s)?;
    }
    let tree = MutableTree::new();
    w.tree(&plan, &tree, "")?;
    let mut layers: Vec<String> = Vec::new();
    for s in &shards {
        let d = s.digest.to_string();
        if !layers.contains(&d) {
            layers.push(d);
        }
    }
    let record = serde_json::to_string(&record(&plan, &shards)).expect("a record serialises");
    let meta = ImageMeta {
        name: &name,
        source: &image,
        manifest: &root_str,
        manifest_digest: root.digest_str.as_str(),
        config: "{}",
        layers: layers.clone(),
        diff_ids: layers,
        timestamp: 0,
        encapsulated: None,
        ostree_base: None,
        file_tree: Some(&record),
        built: None,
    };
    let commit = crate::image::write_image_commit(repo, &tree, &meta)?;
    let mut written = std::mem::take(&mut w.written);
    let stats = w.stats;
    written.push(commit.clone());
    if let Some(old) = previous.as_ref().filter(|o| **o != commit) {
        crate::image::commit::record_previous(repo, &commit, &name, old)?;
    }
    crate::repo::partial::mark(repo, &written)?;
    txn.commit(gio::Cancellable::NONE)
        .map_err(Error::ostree("committing the transaction"))?;
    let image_ref = refname::image_ref(&name);
    repo.set_ref_immediate(None, &image_ref, Some(&commit), gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("writing ref {image_ref}")))?;
    crate::repo::partial::unmark(repo, &written)?;
    let summary = crate::serve::summary::update(repo)?;
    opts.progress.emit(Event::Done {
        commit: commit.clone(),
    });
    let replaced = previous.filter(|o| *o != commit);
    Ok(ImportReport {
        name,
        manifest_digest: root.digest_str.clone(),
        commit,
        layers_imported: stats.manifests_imported,
        layers_reused: stats.manifests_reused,
        skipped: Vec::new(),
        bound_refs: Vec::new(),
        bound_refs_left: Vec::new(),
        collection_mismatch: None,
        replaced,
        delta: None,
        summary,
        signers: Vec::new(),
        exact_gzip: Vec::new(),
        file_tree: Some(stats),
    })
}
