//! The import job: source → manifest → per-layer commits (reused when present) → merge →
//! image commit + ref, all in one libostree transaction. How the layers are read (plain, an
//! `ocitree encapsulate` image giving back the identical commit, ...) is decided from the
//! config labels before any layer is read ([`crate::image::format`]). [`prepare`] does the first step
//! alone, which is all an update check ([`check`]) needs.
//!
//! Crash safety and concurrency: an import holds the repository lock shared
//! ([`crate::repo::RepoLock`]) from before it looks for present layers until its refs are
//! written, so a `prune` never removes a layer it reuses. Objects are written in one
//! transaction; its new commits are marked partial while it commits
//! ([`crate::repo::partial`]); the image ref is written last, after every object and the
//! layer refs are in place. Killed at any point, the repository holds only complete commits
//! and unreferenced objects, and its image refs name complete images. On error the transaction
//! is aborted and its staging directory deleted ([`crate::repo::staging`]).

mod check;
pub mod file_tree;
mod platforms;
mod prepare;
mod read_layers;
mod unchanged;
mod up_to_date;

pub use check::{CheckReport, LayerStatus, check};
pub use platforms::{import_all_platforms, platform_name};
pub use prepare::{Prepared, prepare, prepare_with};
pub use read_layers::default_jobs;
pub use up_to_date::up_to_date;

use std::collections::{BTreeMap, HashMap};

use ostree::{Repo, gio};

use crate::error::{Error, Result};
use crate::image::ostree_native::{LayerObjects, NativeCommit, NativeLayer};
use crate::image::{self, ImageFormat, ImageMeta, Reading, refs};
use crate::layer::stream::{ExactGzipStatus, LayerBlob};
use crate::layer::treated::{ReadOptions, tree_of};
use crate::layer::{OnSpecial, Skipped};
use crate::merge::{self, LayerTree, merge_layers};
use crate::progress::{Event, Reporter};
use crate::refname;
use crate::resolve::Resolved;
use crate::select::{self, LayerRules, LayerSelection, LayersMode};
use crate::source::{Selector, SourceRef};
use crate::spec::{Platform, parse_rfc3339};

/// Options of [`import`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Local image name; default derived from the source (see [`default_name`]).
    pub name: Option<String>,
    /// Platform to pick from an index; default the host's.
    pub platform: Option<Platform>,
    /// What to do with device nodes and FIFOs.
    pub on_special: OnSpecial,
    /// Read the image in this format whatever its labels say (see [`crate::image::format`]);
    /// default: the format its config labels name.
    pub format: Option<ImageFormat>,
    /// Sign the image commit with these keys (before its ref is set).
    pub sign: crate::sign::SignOptions,
    /// When the name pointed at another commit before, make the static delta from it to the
    /// new commit ([`crate::serve::delta`]), so clients update through it.
    pub delta_from_previous: bool,
    /// Verify the signatures of the OSTree commit the image carries against these keys; an
    /// image without a valid signature for them (or without a commit) is refused.
    pub verify: crate::sign::verify::VerifyOptions,
    /// Pick, from an index, only manifests of this artifact type.
    pub artifact_type: Option<String>,
    /// Which layers to apply (default: all).
    pub layers: LayerSelection,
    /// `--extract` and `--copy`: which layers are trees and which files, beyond the defaults
    /// ([`crate::select::rules`]).
    pub layer_rules: LayerRules,
    /// One merged tree, or one directory per layer.
    pub layers_mode: LayersMode,
    /// Where progress events go (nowhere by default).
    pub progress: Reporter,
    /// How to reach a registry source (credentials, TLS, timeouts).
    pub registry: crate::registry::RegistryOptions,
    /// Analyse gzip layers so that export can rebuild their exact compressed bytes (see
    /// [`crate::layer::stream::ExactGzipStatus`]). Default: on in builds with the `exact-gzip`
    /// feature, which is the only place it has an effect.
    pub exact_gzip: bool,
    /// How many layers to read at once (each on its own threads); 0 means one per core
    /// ([`default_jobs`]).
    pub jobs: usize,
    /// How layers after `ostree.final-diffid` of an ostree native container are applied
    /// (default: as ostree-ext applies them).
    pub derived_rules: crate::image::ostree_native::derived::DerivedRules,
}

// Derivable only in builds without the exact-gzip feature.
#[allow(clippy::derivable_impls)]
impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            name: None,
            platform: None,
            on_special: OnSpecial::default(),
            format: None,
            sign: Default::default(),
            delta_from_previous: false,
            verify: Default::default(),
            artifact_type: None,
            layers: LayerSelection::default(),
            layer_rules: LayerRules::default(),
            layers_mode: LayersMode::default(),
            progress: Reporter::default(),
            registry: crate::registry::RegistryOptions::default(),
            exact_gzip: cfg!(feature = "exact-gzip"),
            jobs: 0,
            derived_rules: Default::default(),
        }
    }
}

impl ImportOptions {
    /// Options with every default.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What an import did.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ImportReport {
    /// The local image name.
    pub name: String,
    /// The manifest digest.
    pub manifest_digest: String,
    /// The image commit checksum.
    pub commit: String,
    /// Layers read from their blobs.
    pub layers_imported: usize,
    /// Layers already in the repo (never read).
    pub layers_reused: usize,
    /// Entries OSTree cannot store that were left out.
    pub skipped: Vec<Skipped>,
    /// Refs the image's commit is bound to that point at it: created (or moved from an earlier
    /// image) beside the image ref, or already there ([`image::bound`]).
    pub bound_refs: Vec<String>,
    /// Refs the image's commit is bound to that exist and that ocitree did not make: left
    /// where they were ([`image::bound`]). Clients pulling one of them do not get this image.
    pub bound_refs_left: Vec<image::bound::LeftRef>,
    /// When the repository has a collection ID and the image carries its commit unchanged
    /// (encapsulated, ostree native, flatpak) bound to another collection or to none: that
    /// binding (`None`: no collection). Clients whose remote names the repository's
    /// collection cannot pull such a commit; ocitree cannot bind it without changing it.
    pub collection_mismatch: Option<Option<String>>,
    /// The commit the name pointed at before, when that was another image: the name now
    /// points at this one (`prune` frees what only the earlier image used).
    pub replaced: Option<String>,
    /// The static delta made with [`ImportOptions::delta_from_previous`].
    pub delta: Option<String>,
    /// What became of the repository's summary.
    pub summary: crate::serve::summary::SummaryStatus,
    /// The valid signatures found when [`ImportOptions::verify`] asked for a check.
    pub signers: Vec<crate::sign::verify::Signer>,
    /// For each gzip layer read with [`ImportOptions::exact_gzip`]: its blob digest and
    /// whether export can rebuild its exact compressed bytes.
    pub exact_gzip: Vec<(String, ExactGzipStatus)>,
    /// For a file-tree artifact ([`file_tree`]): what its blobs cost.
    pub file_tree: Option<file_tree::FileTreeStats>,
}

/// An ostree native container is read whole: every layer, one tree, no derived layers.
fn native_preconditions(
    n: &NativeCommit,
    image: &str,
    opts: &ImportOptions,
    diff_ids: &[String],
) -> Result<usize> {
    if !opts.layers.is_all() || opts.layers_mode != LayersMode::Merge {
        return Err(Error::InvalidImage {
            image: image.to_string(),
            reason: "an ostree native container is read whole (its commit needs every layer); \
                     use --format plain to select layers or read them one per directory"
                .into(),
        });
    }
    n.check_layers(image, diff_ids)
}

/// The name an image gets when the user gives none: the tag annotation when it is a full
/// reference (has `/` or `:`), else `BASENAME:TAG`, `BASENAME@DIGEST` or `BASENAME`.
pub fn default_name(source: &SourceRef, resolved: &Resolved) -> String {
    let base = source.base_name();
    match (resolved.ref_name.as_deref(), source.selector()) {
        (Some(r), _) if r.contains('/') || r.contains(':') => r.to_string(),
        (Some(tag), _) => format!("{base}:{tag}"),
        (None, Selector::Digest(d)) => format!("{base}@{d}"),
        (None, _) => base,
    }
}

/// Imports an image into `repo`.
///
/// Layers already present (by blob digest or diff_id) are not read. Everything happens in one
/// transaction: on error no ref changes and no object is left behind, not even in the
/// transaction's staging directory. Waits while a `prune` runs.
///
/// # Errors
/// Any [`Error`]; layer failures are [`Error::Layer`] naming image and layer.
pub fn import(repo: &Repo, source: &SourceRef, opts: &ImportOptions) -> Result<ImportReport> {
    crate::repo::check_holds_images(repo)?;
    let _lock = crate::repo::RepoLock::shared(&crate::repo::dir(repo))?;
    // The summary is signed again after the import: a key that cannot sign fails it now.
    crate::serve::summary::check_keys(repo)?;
    let result = import_locked(repo, source, opts);
    if result.is_err() {
        // The transaction is aborted (its guard dropped); libostree keeps the staging
        // directory for a later transaction to reuse, with everything written so far: on a
        // full disk, the disk stays full. Delete it, and any other no one holds.
        let _ = crate::repo::staging::remove_unused(&crate::repo::tmp_dir(repo));
    }
    result
}

fn import_locked(repo: &Repo, source: &SourceRef, opts: &ImportOptions) -> Result<ImportReport> {
    let mut src = source.open_with(&opts.registry)?;
    // A file tree (nested indexes, one blob per file) is read its own way.
    if let Some(root) =
        file_tree::detect(src.as_mut(), &source.to_string(), source.selector(), opts)?
    {
        return file_tree::import(repo, source, src, root, opts);
    }
    let Prepared {
        image,
        mut src,
        resolved,
        config,
        config_str,
        manifest_str,
        layers,
        name,
    } = prepare_with(source, src, opts)?;
    let mut report = ImportReport {
        name: name.clone(),
        manifest_digest: resolved.digest.to_string(),
        commit: String::new(),
        layers_imported: 0,
        layers_reused: 0,
        skipped: Vec::new(),
        signers: Vec::new(),
        bound_refs: Vec::new(),
        bound_refs_left: Vec::new(),
        collection_mismatch: None,
        replaced: None,
        delta: None,
        summary: crate::serve::summary::SummaryStatus::NotServed,
        exact_gzip: Vec::new(),
        file_tree: None,
    };

    // How to read it (plain, encapsulated commit, ...): decided now, before any layer is read.
    let mut flatpak = None;
    let reading = image::format::reading(&image, &config.labels(), opts.format)?;
    let format = reading.format();
    let (encapsulated, native) = match reading {
        Reading::Plain if !opts.verify.is_empty() => {
            return Err(Error::Signature {
                what: format!("image {image}"),
                reason: "a plain image carries no OSTree commit whose signatures could be \
                             verified"
                    .into(),
            });
        }
        Reading::Plain => (None, None),
        Reading::Flatpak(commit) if opts.verify.is_empty() => {
            flatpak = Some(commit);
            (None, None)
        }
        Reading::Flatpak(_) => {
            return Err(Error::Signature {
                what: format!("image {image}"),
                reason: "a flatpak image carries no signed OSTree commit".into(),
            });
        }
        Reading::Encapsulated(commit) => (Some(commit), None),
        Reading::OstreeNative(commit) => (None, Some(commit)),
    };
    // How many layers carry the commit; those after it are derived layers.
    let native_layers = match &native {
        Some(n) => native_preconditions(n, &image, opts, &config.rootfs.diff_ids)?,
        None => 0,
    };
    let derived = native.is_some() && native_layers < layers.len();
    // Signatures of a carried commit: checked now, before any layer is read. (An ostree
    // native commit is in its layers: checked once they are read, before anything lands.)
    if let Some(e) = &encapsulated {
        report.signers = crate::sign::verify::verify_commit(
            repo,
            &format!("image {image}: commit {}", e.checksum),
            &e.commit,
            e.detached.as_ref(),
            &opts.verify,
        )?;
    }

    let present: Vec<Option<String>> = layers
        .iter()
        .map(|l| read_layers::present_layer(repo, l))
        .collect::<Result<_>>()?;
    // Same manifest under the same name already, its tree built as this import would build
    // it: nothing to read, nothing to write.
    let stored: Option<Vec<&str>> = present.iter().map(Option::as_deref).collect();
    if let Some(record) = stored.and_then(|c| up_to_date::record(format, opts, &c))
        && let Some(commit) =
            up_to_date(repo, &name, &report.manifest_digest, &config_str, &record)?
    {
        return unchanged::finish(repo, &name, &image, &commit, &layers, opts, report);
    }

    let read_opts = ReadOptions {
        on_special: opts.on_special,
        exact_gzip: opts.exact_gzip,
        keep_blob: !resolved.manifest.is_image(),
    };
    let mut seen = std::collections::HashSet::new();
    let to_read: Vec<&LayerBlob> = layers
        .iter()
        .zip(&present)
        .filter(|(l, p)| p.is_none() && seen.insert(l.digest.clone()))
        .map(|(l, _)| l)
        .collect();
    opts.progress.emit(Event::Resolved {
        manifest: report.manifest_digest.clone(),
        layers: layers.len(),
        to_read: to_read.len(),
        bytes: to_read.iter().fold(0u64, |n, l| n.saturating_add(l.size)),
    });
    // Let a remote source download the layers we lack while earlier ones are imported.
    let blobs: Vec<_> = to_read.iter().map(|l| (l.digest.clone(), l.size)).collect();
    src.prefetch(&blobs, &crate::repo::blob_spool_dir(repo), &opts.progress)?;

    let txn = repo
        .auto_transaction(gio::Cancellable::NONE)
        .map_err(Error::ostree("starting a transaction"))?;
    let to_read: Vec<(usize, &LayerBlob)> = {
        let wanted: std::collections::HashSet<_> = to_read.iter().map(|l| &l.digest).collect();
        let mut once = std::collections::HashSet::new();
        layers
            .iter()
            .enumerate()
            .filter(|(_, l)| wanted.contains(&l.digest) && once.insert(&l.digest))
            .collect()
    };
    let jobs = match opts.jobs {
        0 => default_jobs(),
        n => n,
    };
    // The objects an ostree native container's layer carries are written as soon as it is
    // read, while other layers are still being read (by layer commit).
    let carried_objects: std::sync::Mutex<BTreeMap<String, LayerObjects>> = Default::default();
    let mut imported = read_layers::read_layers(
        repo,
        src.as_mut(),
        &to_read,
        jobs,
        |repo, index, layer, blob| {
            let read = read_layers::read_layer(repo, &image, index, layer, blob, opts, read_opts)?;
            if native.is_some() && index < native_layers {
                let digest = layer.digest.as_str();
                let objects =
                    NativeCommit::write_layer_objects(repo, &image, digest, &read.commit)?;
                if let Ok(mut all) = carried_objects.lock() {
                    all.insert(read.commit.clone(), objects);
                }
            }
            Ok(read)
        },
    )?;
    let carried_objects = carried_objects.into_inner().unwrap_or_default();
    let mut commits: HashMap<String, String> = HashMap::new();
    // Commits this transaction writes (marked partial while it commits).
    let mut written: Vec<String> = Vec::new();
    let mut trees = Vec::with_capacity(layers.len());
    let mut diff_ids = Vec::with_capacity(layers.len());
    for (index, (layer, present)) in layers.iter().zip(present).enumerate() {
        let layer_err = |cause| Error::Layer {
            image: image.clone(),
            layer: layer.digest.to_string(),
            cause,
        };
        // Stored before this import (a layer met twice in one image is reported once).
        let stored = present.is_some() && !commits.contains_key(layer.digest.as_str());
        let reused = commits.get(layer.digest.as_str()).cloned().or(present);
        let commit = if let Some(c) = reused {
            crate::repo::partial::unmark_if_whole(repo, &c)?;
            report.layers_reused += 1;
            opts.progress.emit(Event::LayerReused {
                index,
                digest: layer.digest.to_string(),
            });
            c
        } else {
            let Some(imported) = imported.remove(&index) else {
                return Err(Error::Io {
                    context: format!("image {image}: layer {}", layer.digest),
                    cause: std::io::Error::other("the layer was not read"),
                });
            };
            report.layers_imported += 1;
            report.skipped.extend(imported.skipped);
            if imported.exact_gzip != ExactGzipStatus::NotAttempted {
                report
                    .exact_gzip
                    .push((layer.digest.to_string(), imported.exact_gzip));
            }
            written.push(imported.commit.clone());
            imported.commit
        };
        // The tree records the diff_id: computed for a new layer, recorded for a reused one.
        let tree = tree_of(repo, &commit, layer, opts.on_special)
            .and_then(|t| LayerTree::given(repo, &t))
            .map_err(layer_err)?;
        if stored {
            let checked = read_layers::check_stored(repo, layer, &tree, opts);
            report.skipped.extend(checked.map_err(layer_err)?);
        }
        repo.transaction_set_ref(
            None,
            &refname::blob_ref(layer.digest.as_str()),
            Some(&commit),
        );
        // An artifact commit keeping a tar's blob: the diff_id names the tree's commit.
        repo.transaction_set_ref(
            None,
            &refname::diffid_ref(&tree.diff_id),
            Some(&tree.commit),
        );
        if tree.commit != commit && !written.contains(&tree.commit) {
            written.push(tree.commit.clone());
        }
        commits.insert(layer.digest.to_string(), commit.clone());
        diff_ids.push(tree.diff_id.clone());
        trees.push(tree);
    }
    let merged = if let Some(n) = &native {
        // The commit the layers carry, not a merge of their trees.
        let carried: Vec<NativeLayer> = layers[..native_layers]
            .iter()
            .map(|l| NativeLayer {
                digest: l.digest.to_string(),
                commit: commits[l.digest.as_str()].clone(),
            })
            .collect();
        n.rebuild(repo, &image, &carried, jobs, &carried_objects)?;
        if derived {
            let on_top: Vec<(String, LayerTree)> = layers[native_layers..]
                .iter()
                .map(|l| l.digest.to_string())
                .zip(trees.drain(native_layers..))
                .collect();
            n.derived_tree(repo, &image, &on_top, opts.derived_rules)?
        } else {
            n.tree(repo)?
        }
    } else {
        match opts.layers_mode {
            LayersMode::Merge => merge_layers(repo, &trees),
            LayersMode::PerDir => {
                let named: Vec<(String, LayerTree)> = layers
                    .iter()
                    .map(|l| select::dir_name(&l.digest))
                    .zip(trees)
                    .collect();
                merge::per_dir(repo, &named)
            }
        }
        .map_err(|(i, cause)| Error::Layer {
            image: image.clone(),
            layer: layers[i].digest.to_string(),
            cause,
        })?
    };
    let layer_commits: Vec<&str> = layers
        .iter()
        .map(|l| commits[l.digest.as_str()].as_str())
        .collect();
    let built = up_to_date::record(format, opts, &layer_commits);
    let meta = ImageMeta {
        name: &name,
        source: &image,
        manifest: &manifest_str,
        manifest_digest: &report.manifest_digest,
        config: &config_str,
        layers: layers.iter().map(|l| l.digest.to_string()).collect(),
        diff_ids,
        timestamp: config
            .created
            .as_deref()
            .and_then(parse_rfc3339)
            .unwrap_or(0),
        encapsulated: encapsulated.as_ref().map(|e| e.checksum.as_str()).or(native
            .as_ref()
            .filter(|_| !derived)
            .map(|n| n.checksum.as_str())),
        ostree_base: native
            .as_ref()
            .filter(|_| derived)
            .map(|n| n.checksum.as_str()),
        file_tree: None,
        built: built.as_deref(),
    };
    // The image ref points at the encapsulated commit, identical to the one encapsulated, and
    // ocitree's record of the image goes beside it; or at the image commit, which is the record.
    let record_ref = refname::encapsulated_ref(&name);
    let mut drop_record = false;
    // The commit holding ocitree's metadata of the image: the image commit, or its record.
    // The commit the image carries (encapsulated, or rebuilt from ostree native layers).
    let carried = if let Some(e) = &encapsulated {
        e.write(repo, &image, &merged)?;
        Some(e.as_ref().clone())
    } else if let Some(f) = &flatpak {
        Some(f.write(repo, &merged, &report.manifest_digest)?)
    } else if let Some(n) = &native {
        let c = image::EncapsulatedCommit::load(repo, &n.checksum)?;
        report.signers = crate::sign::verify::verify_commit(
            repo,
            &format!("image {image}: commit {}", n.checksum),
            &c.commit,
            c.detached.as_ref(),
            &opts.verify,
        )?;
        // With derived layers the image is the merged tree, not the commit (its base).
        (!derived).then_some(c)
    } else {
        None
    };
    // The commit holding ocitree's metadata of the image: its record beside a carried commit,
    // else the image commit itself.
    let holder = if let Some(c) = &carried {
        // Clients pull a bound commit only by a ref it is bound to: those ocitree may set.
        let bound = image::bound::set_in_transaction(repo, &c.checksum, c.ref_bindings())?;
        report.bound_refs = bound.set;
        report.bound_refs_left = bound.left;
        report.collection_mismatch = crate::repo::collection::mismatch(repo, &c.checksum)?;
        let described = ImageMeta {
            encapsulated: Some(&c.checksum),
            ..meta.clone()
        };
        let record = image::write_image_commit(repo, &merged, &described)?;
        repo.transaction_set_ref(None, &record_ref, Some(&record));
        report.commit = c.checksum.clone();
        written.extend([record.clone(), c.checksum.clone()]);
        record
    } else {
        report.commit = image::write_image_commit(repo, &merged, &meta)?;
        drop_record = refs::resolve(repo, &record_ref)?.is_some();
        written.push(report.commit.clone());
        report.commit.clone()
    };
    // What the name pointed at before: the start of `ocitree delta --from-previous`.
    let previous =
        refs::resolve(repo, &refname::image_ref(&name))?.filter(|old| *old != report.commit);
    if let Some(old) = &previous {
        image::commit::record_previous(repo, &holder, &name, old)?;
    }
    report.replaced.clone_from(&previous);
    // Signed before anything refers to it: no client ever sees the image unsigned.
    if !opts.sign.is_empty() {
        crate::sign::sign_commit(repo, &report.commit, &opts.sign)?;
    }
    crate::repo::partial::mark(repo, &written)?;
    txn.commit(gio::Cancellable::NONE)
        .map_err(Error::ostree("committing the transaction"))?;
    // The image ref last, once its commit and everything the record and layer refs name are
    // in place; a record no longer wanted only after it.
    let image_ref = refname::image_ref(&name);
    repo.set_ref_immediate(
        None,
        &image_ref,
        Some(&report.commit),
        gio::Cancellable::NONE,
    )
    .map_err(Error::ostree(format!("writing ref {image_ref}")))?;
    if drop_record {
        repo.set_ref_immediate(None, &record_ref, None, gio::Cancellable::NONE)
            .map_err(Error::ostree(format!("deleting ref {record_ref}")))?;
    }
    crate::repo::partial::unmark(repo, &written)?;
    if opts.delta_from_previous && previous.is_some() {
        report.delta = Some(crate::serve::delta::generate(
            repo,
            &name,
            &crate::serve::delta::DeltaFrom::Previous,
        )?);
    }
    report.summary = crate::serve::summary::update(repo)?;
    opts.progress.emit(Event::Done {
        commit: report.commit.clone(),
    });
    Ok(report)
}
