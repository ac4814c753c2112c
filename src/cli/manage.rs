//! `ocitree init`, `images`, `inspect`, `rm`, `prune` and the hidden `generate-man`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory};
use ocitree::image::{ImageInfo, refs};
use ocitree::refname;

/// Create the repository (bare-user by default; archive to serve it over HTTP).
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Repository mode: bare-user (files owned by the user, owners and xattrs kept in
    /// `user.ostreemeta`), bare (real owners; needs root), or archive (compressed objects,
    /// to serve over HTTP). bare-user-only cannot hold images whole and is refused.
    #[arg(long, default_value = "bare-user", value_parser = ["bare-user", "bare", "archive"])]
    mode: String,
    /// Collection ID (`core.collection-id`, reverse-DNS, e.g. `org.example.Os`): every commit
    /// ocitree writes is then bound to it and to its refs, so that clients whose remote has
    /// `collection-id=` pull them.
    #[arg(long, value_name = "ID")]
    collection_id: Option<String>,
}

/// List images: name, manifest digest, commit, size (sum of layer blob sizes, bytes), format
/// (plain, ocitree-encapsulated, ostree-native, flatpak or file-tree: how it was read).
///
/// An image that cannot be read is named on stderr after the others are listed, and the exit
/// status is then 2.
#[derive(Debug, Args)]
pub struct ImagesArgs {}

/// Show an image as JSON: manifest, config, and each layer with its ref and commit.
///
/// Per layer, `export_keeps_blob` says whether `export` (without --compression) gives the blob
/// back byte for byte — plain tars and artifact blobs always, gzip layers with exact-gzip
/// records (feature exact-gzip), zstd layers never — and `export_note` says why not.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image name.
    name: String,
}

/// Remove an image's ref, the record of an encapsulated image, and the bound refs import made for it (its layers stay until `prune`).
///
/// A ref the image's commit is bound to (`ostree.ref-binding`) is deleted only when ocitree made it, it still points at that commit, and no other image has the commit. A ref ocitree did not make (a branch made with `ostree commit -b`), or that was moved since, is left alone.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Image names; every one must exist, or none is removed.
    #[arg(required = true)]
    names: Vec<String>,
}

/// Remove layer refs no image uses and the bound refs import made for commits no image has, then every unreachable object, then what failed or interrupted imports left (staging directories, partial registry downloads kept for resuming); print what was freed.
///
/// Waits for running imports and removals to finish, and they wait for it.
#[derive(Debug, Args)]
pub struct PruneArgs {}

/// Write man pages for ocitree and its subcommands into DIR.
#[derive(Debug, Args)]
pub struct GenerateManArgs {
    /// Output directory.
    dir: PathBuf,
}

pub fn init(repo_path: &Path, a: InitArgs) -> Result<()> {
    let mode = ocitree::repo::parse_mode(&a.mode)?;
    let repo = ocitree::repo::open_or_create(repo_path, mode)?;
    if repo.mode() != mode {
        let name = match repo.mode() {
            ocitree::ostree::RepoMode::Archive => "archive",
            ocitree::ostree::RepoMode::Bare => "bare",
            ocitree::ostree::RepoMode::BareUser => "bare-user",
            ocitree::ostree::RepoMode::BareUserOnly => "bare-user-only",
            _ => "another",
        };
        anyhow::bail!(
            "{} already exists in mode {name}, not {}",
            repo_path.display(),
            a.mode
        );
    }
    if let Some(id) = &a.collection_id {
        ocitree::repo::collection::set_collection_id(&repo, id)?;
    }
    match repo.collection_id() {
        Some(id) => out!(
            "Repository {} ({}, collection {id})",
            repo_path.display(),
            a.mode
        ),
        None => out!("Repository {} ({})", repo_path.display(), a.mode),
    }
    Ok(())
}

pub fn images(repo_path: &Path, _a: ImagesArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo_path)?;
    let mut rows = vec![[
        "NAME".to_string(),
        "MANIFEST".into(),
        "COMMIT".into(),
        "SIZE".into(),
        "FORMAT".into(),
    ]];
    // One image that cannot be read does not hide the others: it is named at the end.
    let mut unreadable = Vec::new();
    for (name, commit) in refs::images(&repo)? {
        let row = ImageInfo::load_commit(&repo, &name, &commit).and_then(|info| {
            let size = match &info.file_tree {
                Some(t) => t.bytes,
                None => (info.parsed_manifest()?.layers.iter())
                    .fold(0u64, |n, l| n.saturating_add(l.size)),
            };
            Ok((
                info.manifest_digest.clone(),
                size,
                info.format().to_string(),
            ))
        });
        match row {
            Ok((digest, size, format)) => {
                rows.push([name, digest, commit, size.to_string(), format])
            }
            Err(e) => unreadable.push(format!("{name} ({commit}): {e}")),
        }
    }
    let width = |i: usize| rows.iter().map(|r| r[i].len()).max().unwrap_or(0);
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    for r in rows {
        out!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4]
        );
    }
    if !unreadable.is_empty() {
        bail!("cannot read {}", unreadable.join("; "));
    }
    Ok(())
}

pub fn inspect(repo_path: &Path, a: InspectArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo_path)?;
    let info = ImageInfo::load(&repo, &a.name)?;
    let manifest: serde_json::Value =
        serde_json::from_str(&info.manifest).context("stored manifest")?;
    let config: serde_json::Value = serde_json::from_str(&info.config).context("stored config")?;
    let mut layers = Vec::new();
    if info.file_tree.is_some() {
        // Its layers are the manifests holding its files, each stored as its own commit.
        for digest in &info.layers {
            let r = refname::blob_ref(digest);
            layers.push(serde_json::json!({
                "digest": digest,
                "ref": r,
                "commit": refs::resolve(&repo, &r)?,
            }));
        }
    } else {
        let parsed = info.parsed_manifest()?.layers;
        for ((desc, digest), diff_id) in parsed.iter().zip(&info.layers).zip(&info.diff_ids) {
            let r = refname::blob_ref(digest);
            let commit = refs::resolve(&repo, &r)?;
            let keeps = match &commit {
                Some(c) => ocitree::export::layer::export_keeps_blob(
                    &repo,
                    c,
                    &ocitree::digest::Digest::parse(digest)?,
                    &desc.media_type,
                )?,
                None => Err("layer not in the repository".into()),
            };
            layers.push(serde_json::json!({
                "digest": digest,
                "diff_id": diff_id,
                "media_type": desc.media_type,
                "size": desc.size,
                "ref": r,
                "commit": commit,
                "export_keeps_blob": keeps.is_ok(),
                "export_note": keeps.err(),
            }));
        }
    }
    let out = serde_json::json!({
        "name": info.name,
        "ref": refname::image_ref(&a.name),
        "commit": info.commit,
        "format": info.format().as_str(),
        "signatures": ocitree::sign::verify::describe(&repo, &info.commit)?
            .iter()
            .map(|s| serde_json::json!({"kind": s.kind, "by": s.who}))
            .collect::<Vec<_>>(),
        "record": info.record,
        "manifest_digest": info.manifest_digest,
        "source": info.source,
        "created": config.get("created"),
        "manifest": manifest,
        "config": config,
        "layers": layers,
        "file_tree": info.file_tree,
    });
    out!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn rm(repo_path: &Path, a: RmArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo_path)?;
    // Shared: beside imports and other removals, not in the middle of a prune.
    let _lock = ocitree::repo::RepoLock::shared(repo_path)?;
    for name in &a.names {
        ocitree::image::refs::image_commit(&repo, name)
            .with_context(|| format!("removing {name} (nothing was removed)"))?;
    }
    for name in &a.names {
        let r = ocitree::manage::remove(&repo, name).with_context(|| format!("removing {name}"))?;
        for b in &r.bound_refs {
            out!("Removed ref {b} (the image's commit was bound to it)");
        }
        out!("Removed {name}");
    }
    crate::cli::serve::report_summary(ocitree::serve::summary::update(&repo)?)?;
    Ok(())
}

pub fn prune(repo_path: &Path, _a: PruneArgs) -> Result<()> {
    let repo = ocitree::repo::open(repo_path)?;
    let r = ocitree::manage::prune::prune_waiting(&repo, || {
        eprintln!(
            "Waiting for other ocitree commands on {} to finish (imports, rm)...",
            repo_path.display()
        )
    })?;
    out!(
        "Pruned: {} layer refs, {} objects, {} bytes freed",
        r.layer_refs,
        r.objects,
        r.bytes
    );
    for b in &r.bound_refs {
        out!("Removed ref {b} (no image has the commit it was made for)");
    }
    if r.staging_dirs > 0 {
        out!(
            "Removed: {} staging directories of failed or interrupted imports",
            r.staging_dirs
        );
    }
    if r.spooled_blobs > 0 {
        out!(
            "Removed: {} spooled registry downloads (partial or unused)",
            r.spooled_blobs
        );
    }
    if r.deltas > 0 {
        out!(
            "Removed: {} static deltas whose target commit is gone",
            r.deltas
        );
    }
    crate::cli::serve::report_summary(r.summary)
}

pub fn generate_man(a: GenerateManArgs) -> Result<()> {
    std::fs::create_dir_all(&a.dir)?;
    let cmd = super::Cli::command();
    clap_mangen::generate_to(cmd, &a.dir)
        .with_context(|| format!("writing man pages to {}", a.dir.display()))?;
    Ok(())
}
