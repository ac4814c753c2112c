//! `ocitree encapsulate`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;
use ocitree::export::EncapsulateOptions;
use ocitree::export::encapsulate::Prior;
use ocitree::source::SourceRef;
use ocitree::spec::Platform;

use crate::cli::export::CompressionArgs;

/// Turn any OSTree commit into an OCI image that `ocitree import` gives back as the identical commit.
///
/// Two formats (--format). A bootable commit (commit metadata `ostree.bootable` true) is
/// written by default as an ostree native container, the format of bootc, rpm-ostree and
/// CoreOS images (ostree-ext tar format v1): `bootc switch`, `rpm-ostree rebase` and
/// ostree-ext read it back as the identical commit, signatures included. Its labels are
/// ostree-ext's (`ostree.commit`, `ostree.final-diffid`, `ostree.bootable`, `containers.bootc`,
/// `ostree.linux`, `version`); --max-layers N gives the commit layer and at most N-1 chunks
/// of content, each annotated `ostree.components` with the directories it holds.
///
/// Any other commit is written in ocitree's own format: the commit's tree becomes deterministic layer tars (every directory with its metadata,
/// numeric owners, full modes, xattrs, symlinks, hardlinks for files sharing a content
/// object); the commit object and its detached metadata (signatures) travel as config labels
/// (`ocitree.commit`, `ocitree.commit.object`, `ocitree.commit.detached-metadata`). `created`
/// is the commit timestamp. The same commit with the same options gives the same digests.
///
/// Layers are gzip-compressed unless --compression says otherwise (a docker archive holds them
/// uncompressed). A commit made by
/// `flatpak build-export` also gets the labels `flatpak build-import-bundle --oci` reads
/// (`org.flatpak.ref`, `org.flatpak.metadata`, …). Trees holding names that start with `.wh.`
/// are refused (OCI reads them as whiteouts).
#[derive(Debug, Args)]
pub struct EncapsulateArgs {
    /// Commit to encapsulate: a ref or checksum of the repository, or an image name.
    #[arg(value_name = "REV")]
    rev: String,
    /// Destination: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REFERENCE] (FILE - writes to standard output), or docker://REGISTRY/REPO[:TAG] (pushed, with the registry options).
    #[arg(value_name = "DEST")]
    dest: String,
    /// What to write: ostree-native (an ostree-ext image for bootc and rpm-ostree; default for a bootable commit), ocitree-encapsulated (layer tars that import gives back as the identical commit; default otherwise), or file-tree (an OCI artifact of nested indexes, one blob per regular file, title = file name; see README "Directory trees as nested indexes"). file-tree writes to oci:, oci-archive: or docker:// and takes only --max-blobs, --subdir and the registry options.
    #[arg(long, value_name = "FORMAT", value_parser = ["ostree-native", "ocitree-encapsulated", "file-tree"])]
    format: Option<String>,
    /// Sign the commit first (its signatures travel in the image and are checked by
    /// `import --verify-*`).
    #[command(flatten)]
    sign: crate::cli::serve::SignArgs,
    /// Split the tree into at most N layers by content (files sharing an object stay together). Default 1, or the prior image's count.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    max_layers: Option<u32>,
    /// An earlier encapsulation whose layer boundaries to keep: an image in the repository, or oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE. Each file stays in the layer its path had, a new file joins its neighbours', so a one-file change changes at most two layers.
    #[arg(long, value_name = "IMAGE")]
    prior: Option<String>,
    /// Add a config label (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    label: Vec<String>,
    /// Add a manifest annotation (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    annotation: Vec<String>,
    /// A JSON file holding the config's "config" object (as in the OCI image spec: ExposedPorts, Volumes, StopSignal, Labels, …); the other options are applied over it.
    #[arg(long, value_name = "FILE")]
    config_json: Option<std::path::PathBuf>,
    /// Config Cmd: a JSON array (exec form), else a command run by /bin/sh -c.
    #[arg(long, value_name = "CMD")]
    cmd: Option<String>,
    /// Config Entrypoint: a JSON array (exec form), else a command run by /bin/sh -c.
    #[arg(long, value_name = "ENTRYPOINT")]
    entrypoint: Option<String>,
    /// Add a config environment variable (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Config WorkingDir.
    #[arg(long, value_name = "DIR")]
    workingdir: Option<String>,
    /// Config User (USER[:GROUP], names or numbers).
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// Platform of the image, as os/arch[/variant] (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// mtime of every tar entry, in seconds since the epoch (default: the commit timestamp for one layer; 0 with --max-layers or --prior, so unchanged layers keep their digests across versions; 0 for ostree-native, as ostree-ext writes).
    #[arg(long, value_name = "SECONDS")]
    mtime: Option<u64>,
    #[command(flatten)]
    compression: CompressionArgs,
    /// file-tree: most file blobs per manifest; a directory with more files is split into several manifests (in name order).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_blobs: Option<u32>,
    /// file-tree: write this directory of the commit (a/b) instead of its root.
    #[arg(long, value_name = "PATH")]
    subdir: Option<String>,
    #[command(flatten)]
    registry: crate::cli::registry::RegistryArgs,
}

fn key_values(what: &str, list: &[String]) -> Result<BTreeMap<String, String>> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--{what} {kv:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// buildah's rule: a JSON array is the exec form, anything else runs through `/bin/sh -c`.
fn command(what: &str, s: &str) -> Result<Vec<String>> {
    if s.trim_start().starts_with('[') {
        serde_json::from_str(s).with_context(|| format!("--{what}: not a JSON array of strings"))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), s.into()])
    }
}

/// The options given that a file tree does not take: refused rather than ignored (a
/// `--sign-by` that signs nothing must not look like it did).
fn not_for_file_tree(a: &EncapsulateArgs) -> Vec<&'static str> {
    let given = [
        ("--sign-by", !a.sign.gpg_keys.is_empty()),
        ("--gpg-homedir", a.sign.gpg_homedir.is_some()),
        ("--sign-ed25519", !a.sign.ed25519_key_files.is_empty()),
        ("--max-layers", a.max_layers.is_some()),
        ("--prior", a.prior.is_some()),
        ("--label", !a.label.is_empty()),
        ("--annotation", !a.annotation.is_empty()),
        ("--config-json", a.config_json.is_some()),
        ("--cmd", a.cmd.is_some()),
        ("--entrypoint", a.entrypoint.is_some()),
        ("--env", !a.env.is_empty()),
        ("--workingdir", a.workingdir.is_some()),
        ("--user", a.user.is_some()),
        ("--platform", a.platform.is_some()),
        ("--mtime", a.mtime.is_some()),
        ("--compression", a.compression.is_given()),
    ];
    given
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
}

pub fn run(repo_path: &Path, a: EncapsulateArgs) -> Result<()> {
    let dest = SourceRef::parse(&a.dest)?;
    if a.format.as_deref() == Some("file-tree") {
        let refused = not_for_file_tree(&a);
        if !refused.is_empty() {
            bail!(
                "--format file-tree takes only --max-blobs, --subdir and the registry options, not {}",
                refused.join(", ")
            );
        }
        return crate::cli::file_tree::encapsulate(
            repo_path,
            &a.rev,
            &dest,
            a.max_blobs,
            a.subdir,
            &a.registry,
        );
    }
    if a.max_blobs.is_some() || a.subdir.is_some() {
        bail!("--max-blobs and --subdir go with --format file-tree");
    }
    let mut opts = EncapsulateOptions::new();
    opts.format = a.format.as_deref().map(str::parse).transpose()?;
    opts.max_layers = a.max_layers.map(|n| n as usize);
    opts.prior = a.prior.as_deref().map(Prior::parse);
    opts.labels = key_values("label", &a.label)?;
    opts.annotations = key_values("annotation", &a.annotation)?;
    if let Some(f) = &a.config_json {
        let text = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        let v: serde_json::Value =
            serde_json::from_slice(&text).with_context(|| format!("{}: not JSON", f.display()))?;
        match v {
            serde_json::Value::Object(m) => opts.exec_base = Some(m),
            _ => bail!("{}: expected a JSON object", f.display()),
        }
    }
    opts.cmd = a.cmd.as_deref().map(|c| command("cmd", c)).transpose()?;
    opts.entrypoint = a
        .entrypoint
        .as_deref()
        .map(|c| command("entrypoint", c))
        .transpose()?;
    for e in &a.env {
        if !e.contains('=') {
            bail!("--env {e:?}: expected KEY=VALUE");
        }
    }
    opts.env = a.env;
    opts.working_dir = a.workingdir;
    opts.user = a.user;
    opts.platform = a.platform.as_deref().map(Platform::parse).transpose()?;
    opts.mtime = a.mtime;
    opts.compression = a.compression.parse(&dest)?;
    let repo = ocitree::repo::open(repo_path)?;
    let sign = a.sign.options();
    if !sign.is_empty() {
        // The signatures travel in the image with the commit's detached metadata.
        let commit = ocitree::image::refs::resolve_rev(&repo, &a.rev)?;
        ocitree::sign::sign_commit(&repo, &commit, &sign)
            .with_context(|| format!("signing {} before encapsulating it", a.rev))?;
    }
    if let SourceRef::Registry(r) = &dest {
        let registry = a.registry.options()?;
        let (written, pushed) =
            ocitree::export::push_encapsulated(&repo, &a.rev, r, &opts, &registry)
                .with_context(|| format!("encapsulating {} to {dest}", a.rev))?;
        out!("Commit:   {}", written.commit);
        out!("Format:   {}", written.format);
        out!("Pushed:   {}", pushed.manifest_digest);
        out!(
            "Blobs:    {} uploaded ({} bytes), {} already there",
            pushed.uploaded,
            pushed.bytes,
            pushed.existing
        );
        return Ok(());
    }
    let r = ocitree::export::encapsulate(&repo, &a.rev, &dest, &opts)
        .with_context(|| format!("encapsulating {} to {dest}", a.rev))?;
    let to_stdout = ocitree::export::sink::writes_to_stdout(&dest);
    let mut lines = vec![
        format!("Commit:   {}", r.commit),
        format!("Format:   {}", r.format),
        if matches!(dest, SourceRef::DockerArchive { .. }) {
            format!("Image ID: {}", r.manifest_digest)
        } else {
            format!("Manifest: {}", r.manifest_digest)
        },
        format!("Layers:   {} ({} paths)", r.layers.len(), r.paths),
    ];
    lines.extend(r.layers.iter().map(|d| format!("  {d}")));
    // Standard output may be the archive itself: the summary goes to stderr then. Write
    // errors (a closed pipe) are returned, not panicked on.
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stderr().lock())
    } else {
        Box::new(std::io::stdout().lock())
    };
    for l in lines {
        writeln!(out, "{l}")?;
    }
    out.flush()?;
    Ok(())
}
