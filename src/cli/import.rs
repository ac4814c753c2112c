//! `ocitree import`.

use std::path::Path;

use anyhow::{Context, Result};
use clap::Args;
use ocitree::layer::stream::ExactGzipStatus;
use ocitree::source::SourceRef;
use ocitree::spec::Platform;
use ocitree::{ImportOptions, OnSpecial};
use serde_json::json;

use crate::cli::progress::{self, JsonLines};

/// Import an image: each layer becomes a commit, the image one merged commit.
///
/// Layers already in the repository (by blob digest or diff_id) are not read again. The import
/// is one transaction: on any error the repository is left as it was.
///
/// Prints the image name, manifest digest, layer counts and the image commit checksum. On a
/// terminal, progress bars (overall and per layer) go to standard error.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    image: SourceArgs,
    /// Fail on entries OSTree cannot store (device nodes, FIFOs) instead of skipping them with a warning.
    #[arg(long)]
    strict: bool,
    /// Print one JSON object per line on standard output instead: progress events
    /// (platform-first-of-several, resolved, layer-reused, layer-download, layer-start, layer-bytes, layer-done, done), skipped
    /// entries and a final "imported" result. Fields are digests, numbers and bounded strings.
    #[arg(long, conflicts_with = "quiet")]
    json: bool,
    /// No progress bars; print only the image commit checksum (warnings still go to stderr).
    #[arg(long, short)]
    quiet: bool,
    /// Do not analyse gzip layers for an exact export (faster import). Builds with the exact-gzip feature analyse every gzip layer so that `export` can rebuild its original bytes and keep its digest; other builds never do.
    #[arg(long)]
    no_exact_gzip: bool,
    /// Read at most N layers at once, each on its own threads (default: one per core). Memory
    /// grows with N, never with layer size; 1 reads the layers one after another.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Read the image in this format instead of the one its config labels name: plain (apply
    /// the layers; works for every image), ocitree-encapsulated (an `ocitree encapsulate`
    /// image, giving back the identical commit), flatpak (a `flatpak build-bundle --oci` image,
    /// committed as flatpak installs it, with its app/ or runtime/ ref), ostree-native (an
    /// ostree-ext image, as bootc and rpm-ostree images are, giving back the identical commit,
    /// with any derived layers applied on it as ostree-ext applies them) or file-tree (a
    /// directory tree as nested indexes, as `encapsulate --format file-tree` writes it;
    /// recognised by its artifactType without this flag).
    #[arg(long, value_name = "FORMAT", value_parser = ["plain", "ocitree-encapsulated", "flatpak", "ostree-native", "file-tree"])]
    format: Option<String>,
    /// How the derived layers of an ostree native container (those after
    /// `ostree.final-diffid`) are applied: ostree-ext (the tree `ostree-ext-cli container image
    /// pull` gives) or oci (ostree-ext's path rules, but the OCI layer rules where ostree-ext
    /// departs from them: a directory the layer names takes its metadata, whiteouts never hide
    /// files of their own layer, files linked into `sysroot/` keep their xattrs).
    #[arg(long, value_name = "RULES", default_value = "ostree-ext", value_parser = ["ostree-ext", "oci"])]
    derived_layers: String,
    /// Verify the signatures of the OSTree commit the image carries (an `ocitree encapsulate`
    /// image) against the public keys in this GPG keyring file (repeatable); no valid
    /// signature is an error and the repository is left as it was.
    #[arg(long, value_name = "FILE")]
    verify_gpg_keyring: Vec<std::path::PathBuf>,
    /// Verify against this ed25519 public key (base64 of 32 bytes) or file of them, one a line
    /// (repeatable).
    #[arg(long, value_name = "KEY|FILE")]
    verify_ed25519: Vec<String>,
    /// Verify against the keys of this OSTree remote of the repository (its GPG keyring,
    /// verification-ed25519-key and verification-ed25519-file).
    #[arg(long, value_name = "NAME")]
    verify_remote: Option<String>,
    #[command(flatten)]
    sign: crate::cli::serve::SignArgs,
    /// When NAME pointed at another commit before, also make the static delta from that commit
    /// to the new one (as `ocitree delta NAME --from-previous`), so ostree clients update
    /// through it.
    #[arg(long)]
    delta_from_previous: bool,
    /// Import every platform's image of a multi-platform index, each under its own name
    /// NAME@OS/ARCH[/VARIANT] (app@linux/amd64, app@linux/arm/v7); NAME is required. Docker
    /// attestation manifests are left out. Prints one line per image: name, manifest, commit.
    #[arg(long, conflicts_with = "platform")]
    all_platforms: bool,
}

/// The image to read and the name to give it: shared by import and check.
#[derive(Debug, Args)]
struct SourceArgs {
    /// Image source: oci:DIR[:TAG|@DIGEST], oci-archive:FILE[:TAG|@DIGEST], docker-archive:FILE[:REFERENCE] (docker save format), docker://HOST[:PORT]/REPO[:TAG|@DIGEST] (a registry); FILE - reads the archive from standard input.
    #[arg(value_name = "SOURCE")]
    source: String,
    /// Local image name (default: the registry reference, or the tag's full reference, else DIRNAME:TAG or FILESTEM:TAG; `image` for standard input). Give one to keep an untagged archive from reusing the name of another.
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// Platform to pick from a multi-platform index, as os/arch[/variant] (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// From an index, take only manifests of this artifact type (the manifest's artifactType,
    /// else its config media type), e.g. application/vnd.cncf.helm.config.v1+json.
    #[arg(long, value_name = "TYPE")]
    artifact_type: Option<String>,
    /// Apply only layers of this media type (repeatable). Layers that are not filesystem tars
    /// (JSON, Helm charts, any blob) become files named by their
    /// org.opencontainers.image.title annotation (a relative path), else DIGEST.EXT.
    #[arg(long, value_name = "TYPE")]
    layer_media_type: Vec<String>,
    /// Apply layers of this media type as filesystem tars (repeatable), as Flux's `operation:
    /// extract`; one that is no tar is an error. Flux and Timoni content, ORAS directories and
    /// image layers are extracted without it.
    #[arg(long, value_name = "TYPE")]
    extract: Vec<String>,
    /// Keep layers of this media type as files (repeatable), as Flux's `operation: copy`:
    /// named NAME (a relative path), else by title, else DIGEST.EXT.
    #[arg(long, value_name = "TYPE[=NAME]")]
    copy: Vec<String>,
    /// Apply only the layer at this 0-based position of the manifest (repeatable).
    #[arg(long, value_name = "N")]
    layer_index: Vec<usize>,
    /// merge: apply the layers onto one tree (whiteouts and all); per-dir: put each layer in
    /// its own directory, named ALGORITHM-HEX after its digest.
    #[arg(long, value_name = "MODE", value_parser = ["merge", "per-dir"], default_value = "merge")]
    layers: String,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

impl SourceArgs {
    fn parse(self) -> Result<(SourceRef, ImportOptions)> {
        let source = SourceRef::parse(&self.source)?;
        let mut opts = ImportOptions::new();
        opts.name = self.name;
        opts.platform = self.platform.as_deref().map(Platform::parse).transpose()?;
        opts.artifact_type = self.artifact_type;
        opts.layers.media_types = self.layer_media_type;
        opts.layers.indexes = self.layer_index;
        opts.layer_rules.extract = self.extract;
        opts.layer_rules.copy = self
            .copy
            .iter()
            .map(|c| ocitree::select::LayerRules::parse_copy(c))
            .collect();
        opts.layers_mode = ocitree::select::LayersMode::parse(&self.layers)?;
        opts.registry = self.registry.options()?;
        Ok((source, opts))
    }
}

pub fn run(repo_path: &Path, a: ImportArgs) -> Result<()> {
    let (source, mut opts) = a.image.parse()?;
    opts.on_special = if a.strict {
        OnSpecial::Fail
    } else {
        OnSpecial::Skip
    };
    opts.progress = progress::reporter(a.json, a.quiet);
    opts.exact_gzip &= !a.no_exact_gzip;
    opts.jobs = a.jobs.map_or(0, usize::from);
    opts.format = a.format.as_deref().map(str::parse).transpose()?;
    opts.derived_rules = a.derived_layers.parse().map_err(anyhow::Error::msg)?;
    opts.verify.gpg_keyrings = a.verify_gpg_keyring;
    opts.verify.ed25519_keys = a.verify_ed25519;
    opts.verify.remote = a.verify_remote;
    opts.sign = a.sign.options();
    opts.delta_from_previous = a.delta_from_previous;
    let repo = ocitree::repo::open_or_create(repo_path, ocitree::ostree::RepoMode::BareUser)?;
    if a.all_platforms {
        let reports = ocitree::import::import_all_platforms(&repo, &source, &opts)
            .with_context(|| format!("importing every platform of {source}"))?;
        for r in &reports {
            warn_left_refs(r);
            if a.json {
                JsonLines::print(&json!({
                    "event": "imported",
                    "name": JsonLines::bounded(&r.name),
                    "manifest": r.manifest_digest,
                    "commit": r.commit,
                    "layers_imported": r.layers_imported,
                    "layers_reused": r.layers_reused,
                }));
            } else if a.quiet {
                out!("{}", r.commit);
            } else {
                out!("Image:    {} {} {}", r.name, r.manifest_digest, r.commit);
            }
        }
        return Ok(());
    }
    let report =
        ocitree::import(&repo, &source, &opts).with_context(|| format!("importing {source}"))?;
    crate::cli::serve::warn_if_unsigned(report.summary);
    if a.json {
        warn_left_refs(&report);
        for s in &report.skipped {
            JsonLines::print(&json!({
                "event": "skipped",
                "layer": s.layer,
                "path": JsonLines::bounded(&s.path),
                "kind": s.kind,
            }));
        }
        if let Some(binding) = &report.collection_mismatch {
            JsonLines::print(&json!({
                "event": "collection-mismatch",
                "binding": binding,
            }));
        }
        JsonLines::print(&json!({
            "event": "imported",
            "name": JsonLines::bounded(&report.name),
            "manifest": report.manifest_digest,
            "commit": report.commit,
            "layers_imported": report.layers_imported,
            "layers_reused": report.layers_reused,
            "replaced": report.replaced,
        }));
        return Ok(());
    }
    for s in &report.skipped {
        eprintln!(
            "warning: image {}: layer {}: skipped {} /{} (OSTree cannot store it)",
            report.name, s.layer, s.kind, s.path
        );
    }
    if let Some(binding) = &report.collection_mismatch {
        let bound = match binding {
            Some(b) => format!("collection {b}"),
            None => "no collection".into(),
        };
        eprintln!(
            "warning: image {}: it carries its commit unchanged, bound to {bound}, not to this \
             repository's collection ID: clients whose remote sets collection-id cannot pull it \
             (encapsulate it in a repository with that collection ID to bind it)",
            report.name
        );
    }
    for (layer, status) in &report.exact_gzip {
        if let ExactGzipStatus::NotExact(why) = status {
            eprintln!(
                "note: layer {layer}: its gzip stream cannot be rebuilt bit for bit ({why}); export will re-compress it"
            );
        }
    }
    if a.quiet {
        out!("{}", report.commit);
        return Ok(());
    }
    let total = report.layers_imported + report.layers_reused;
    out!("Image:    {}", report.name);
    out!("Manifest: {}", report.manifest_digest);
    out!(
        "Layers:   {total} ({} imported, {} reused)",
        report.layers_imported,
        report.layers_reused
    );
    if !report.exact_gzip.is_empty() {
        let (mut kept, mut data, mut blobs) = (0, 0, 0);
        for (_, s) in &report.exact_gzip {
            if let ExactGzipStatus::Kept {
                data_size,
                blob_size,
            } = s
            {
                (kept, data, blobs) = (kept + 1, data + data_size, blobs + blob_size);
            }
        }
        out!(
            "Exact:    {kept} of {} gzip layers can be exported bit for bit ({data} bytes of data, {:.3}% of their blobs)",
            report.exact_gzip.len(),
            data as f64 * 100.0 / blobs.max(1) as f64
        );
    }
    if let Some(t) = &report.file_tree {
        out!(
            "Blobs:    {} fetched ({} bytes), {} from local objects",
            t.blobs_fetched,
            t.bytes_fetched,
            t.blobs_local
        );
    }
    for s in &report.signers {
        out!("Verified: {} {}", s.kind, s.who);
    }
    for b in &report.bound_refs {
        out!("Ref:      {b} (the commit is bound to it)");
    }
    for l in &report.bound_refs_left {
        out!("Ref:      {}", left_ref(l));
    }
    if let Some(old) = &report.replaced {
        out!(
            "Replaced: {old} (what {} pointed at before; `ocitree prune` frees what only it used)",
            report.name
        );
    }
    if let Some(d) = &report.delta {
        out!("Delta:    {d}");
    }
    out!("Commit:   {}", report.commit);
    Ok(())
}

/// A bound ref import left alone, said in one line.
fn left_ref(l: &ocitree::image::bound::LeftRef) -> String {
    match &l.commit {
        Some(c) => format!(
            "{} exists and was not made by ocitree: left at {c} (the commit is bound to it; clients pulling {} get {c}, not this image)",
            l.name, l.name
        ),
        None => format!(
            "{} not created: its name is too long for ocitree to mark it as its own (the commit is bound to it)",
            l.name
        ),
    }
}

/// Where the report is not printed in full: the bound refs left alone, on stderr.
fn warn_left_refs(report: &ocitree::import::ImportReport) {
    for l in &report.bound_refs_left {
        eprintln!("warning: image {}: ref {}", report.name, left_ref(l));
    }
}

/// Check an image source against the repository without importing: reads only the manifest
/// and config, and lists which layers an import would read and how many bytes.
///
/// Status is "up to date" (NAME already is this manifest), "update available" (NAME is
/// another one), "same manifest, tree to build again (N layer(s) to read)" (NAME is this
/// manifest, but its tree was built another way: with a layer selection or per-dir layers,
/// or from layers an earlier ocitree stored under other layer rules, which an import reads
/// again) or "not imported" (no image is called NAME). The repository must exist;
/// nothing is written to it.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    image: SourceArgs,
}

pub fn check(repo_path: &Path, a: CheckArgs) -> Result<()> {
    let (source, mut opts) = a.image.parse()?;
    opts.progress = progress::reporter(false, true);
    let repo = ocitree::repo::open(repo_path)?;
    let r = ocitree::import::check(&repo, &source, &opts)
        .with_context(|| format!("checking {source}"))?;
    let missing = r.layers.iter().filter(|l| !l.present).count();
    out!("Image:    {}", r.name);
    out!("Manifest: {}", r.manifest_digest);
    out!(
        "Status:   {}",
        if r.up_to_date {
            "up to date".to_string()
        } else if r.imported_manifest.as_deref() == Some(r.manifest_digest.as_str()) {
            // built another way (a layer selection, per-dir layers), or from layers an
            // earlier ocitree stored under other layer rules
            format!("same manifest, tree to build again ({missing} layer(s) to read)")
        } else if r.imported {
            "update available".to_string()
        } else {
            "not imported".to_string()
        }
    );
    out!(
        "Layers:   {} ({} present, {missing} to fetch, {} bytes)",
        r.layers.len(),
        r.layers.len() - missing,
        r.bytes_to_fetch()
    );
    for l in &r.layers {
        let state = if l.present { "present" } else { "fetch  " };
        out!("  {state} {} {} bytes", l.digest, l.size);
    }
    Ok(())
}
