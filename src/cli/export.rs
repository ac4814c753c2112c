//! `ocitree export`.

use std::path::Path;

use anyhow::{Context, Result, bail};
use clap::Args;
use ocitree::export::{BlobMethod, LayerCompression};
use ocitree::source::SourceRef;

/// Export an imported image as an OCI image: the same config and byte-identical layer tars.
///
/// Every layer tar is rebuilt from the repository (file data from its objects, headers and
/// padding from the tar-split recorded at import) and checked against its diff_id. Layers are
/// compressed as they were imported, or as --compression says. Uncompressed layers keep their
/// digests; so do gzip layers whose original bytes the import recorded (builds with the
/// exact-gzip feature, without --compression); others are re-compressed and get new blob
/// digests. Prints each layer's outcome and whether the manifest digest is unchanged.
///
/// An imported file tree (`encapsulate --format file-tree`) is written as the artifact it came
/// from, with the same root digest, or not at all (README, "Directory trees as nested
/// indexes").
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Image name (none with --index-of).
    #[arg(value_name = "NAME", required_unless_present = "index_of")]
    name: Option<String>,
    /// Destination: oci:DIR[:TAG], oci-archive:FILE[:TAG], docker-archive:FILE[:REFERENCE], docker://HOST[:PORT]/REPO[:TAG|@DIGEST] (push to a registry); FILE - writes to standard output.
    #[arg(value_name = "DEST")]
    dest: Option<String>,
    /// Export these images (repeatable, in this order) as one multi-platform index instead,
    /// each entry with the platform of its config: `export --index-of app@linux/amd64
    /// --index-of app@linux/arm64 DEST`. DEST is docker://… (each manifest pushed by digest,
    /// the index under the tag) or a new oci:DIR[:TAG].
    #[arg(long, value_name = "NAME")]
    index_of: Vec<String>,
    #[command(flatten)]
    compression: CompressionArgs,
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

/// Layer compression options, shared by export and encapsulate.
#[derive(Debug, Args)]
pub struct CompressionArgs {
    /// Compress every layer with this format (export: instead of the one it was imported
    /// with; encapsulate: default gzip).
    ///
    /// gzip is written in pigz-style 128 KiB blocks on every core, zstd with its worker
    /// threads; both are deterministic (same image, same options, same digests on any
    /// machine). Not for docker-archive, whose layers are always plain tars.
    #[arg(long, value_name = "FORMAT", value_parser = ["gzip", "zstd", "none"])]
    compression: Option<String>,
    /// Compression level: gzip 1-9 (default 6), zstd 1-19 (default 3).
    #[arg(long, value_name = "N", requires = "compression")]
    compression_level: Option<u32>,
}

impl CompressionArgs {
    /// Whether `--compression` was given.
    pub fn is_given(&self) -> bool {
        self.compression.is_some()
    }
}

impl CompressionArgs {
    /// The chosen compression, checked against the destination.
    pub fn parse(&self, dest: &SourceRef) -> Result<Option<LayerCompression>> {
        let Some(c) = &self.compression else {
            return Ok(None);
        };
        if matches!(dest, SourceRef::DockerArchive { .. }) && c != "none" {
            bail!("--compression {c}: docker-archive layers are always uncompressed tars");
        }
        Ok(Some(LayerCompression::parse(c, self.compression_level)?))
    }
}

pub fn run(repo_path: &Path, a: ExportArgs) -> Result<()> {
    let (name, dest) = match (a.name, a.dest) {
        (Some(n), Some(d)) if a.index_of.is_empty() => (n, d),
        (Some(d), None) if !a.index_of.is_empty() => (String::new(), d),
        _ if a.index_of.is_empty() => bail!("export NAME DEST: the destination is missing"),
        _ => bail!("export --index-of NAME... DEST: one destination, and no other NAME"),
    };
    let dest = SourceRef::parse(&dest)?;
    let mut opts = ocitree::export::ExportOptions::new();
    opts.compression = a.compression.parse(&dest)?;
    opts.registry = a.registry.options()?;
    let repo = ocitree::repo::open(repo_path)?;
    if a.index_of.is_empty()
        && ocitree::image::ImageInfo::load(&repo, &name).is_ok_and(|i| i.file_tree.is_some())
    {
        if a.compression.compression.is_some() {
            bail!("--compression: a file tree's blobs are its files, as they were imported");
        }
        return crate::cli::file_tree::export(&repo, &name, &dest, &a.registry);
    }
    if !a.index_of.is_empty() {
        let r =
            ocitree::export::export_index(&repo, &a.index_of, &dest, &opts).with_context(|| {
                format!("exporting an index of {} to {dest}", a.index_of.join(", "))
            })?;
        for (n, p, d) in &r.images {
            out!("Image:    {n} {p} {d}");
        }
        out!("Index:    {}", r.index_digest);
        if let Some(p) = &r.pushed {
            out!(
                "Blobs:    {} uploaded ({} bytes), {} already there",
                p.uploaded,
                p.bytes,
                p.existing
            );
        }
        return Ok(());
    }
    if let SourceRef::Registry(r) = &dest {
        let (export, pushed) = ocitree::export::push_image(&repo, &name, r, &opts)
            .with_context(|| format!("pushing {} to {dest}", name))?;
        out!("Image:    {}", name);
        out!("Pushed:   {}", pushed.manifest_digest);
        out!(
            "Blobs:    {} uploaded ({} bytes), {} already there, {} mounted",
            pushed.uploaded,
            pushed.bytes,
            pushed.existing,
            pushed.mounted
        );
        out!(
            "Layers:   {} (diff_ids identical; {} recompressed with new blob digests)",
            export.layers,
            export.recompressed
        );
        if pushed.resumed + pushed.restarted > 0 {
            out!(
                "Uploads:  {} resumed, {} restarted after a failure",
                pushed.resumed,
                pushed.restarted
            );
        }
        if pushed.converted {
            out!("Note:     docker v2 schema 2 manifest pushed as an OCI manifest");
        }
        return Ok(());
    }
    let report = ocitree::export::export_image(&repo, &name, &dest, &opts)
        .with_context(|| format!("exporting {} to {dest}", name))?;
    // Standard output may be the archive itself: the summary goes to stderr then.
    let to_stdout = ocitree::export::sink::writes_to_stdout(&dest);
    let docker = matches!(dest, SourceRef::DockerArchive { .. });
    let mut lines = vec![format!("Image:    {}", name)];
    if docker {
        // no manifest in a docker archive: docker names the image by its config
        lines.push(format!("Image ID: {}", report.manifest_digest));
        lines.push(format!(
            "Layers:   {} (uncompressed tars, each digest = its diff_id)",
            report.layers
        ));
    } else {
        lines.push(format!("Manifest: {}", report.manifest_digest));
        lines.push(format!(
            "Layers:   {} (diff_ids identical; {} kept their blob digest, {} recompressed with new blob digests)",
            report.layers,
            report.layers - report.recompressed,
            report.recompressed
        ));
        for l in &report.layer_blobs {
            lines.push(match &l.method {
                BlobMethod::Plain => format!("  kept     {} (uncompressed)", l.original),
                BlobMethod::ExactGzip => format!("  kept     {} (exact gzip rebuild)", l.original),
                BlobMethod::Copied => format!("  kept     {} (artifact blob, copied)", l.original),
                BlobMethod::Recompressed(_) if l.kept() => {
                    format!(
                        "  kept     {} (re-compressed to the same bytes)",
                        l.original
                    )
                }
                BlobMethod::Recompressed(why) => {
                    format!("  changed  {} -> {} ({why})", l.original, l.written)
                }
                _ => format!("  {} -> {}", l.original, l.written),
            });
            if !l.dropped_annotations.is_empty() {
                lines.push(format!(
                    "           dropped annotations {} (they describe the original blob's bytes)",
                    l.dropped_annotations.join(", ")
                ));
            }
        }
        lines.push(if report.manifest_unchanged {
            "Digest:   manifest digest unchanged".into()
        } else {
            "Note:     layer blob digests changed, so the manifest digest changed too".into()
        });
    }
    for l in lines {
        if to_stdout {
            eprintln!("{l}")
        } else {
            out!("{l}")
        }
    }
    Ok(())
}
