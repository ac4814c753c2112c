//! `ocitree encapsulate --format file-tree`: the summary it prints.

use std::path::Path;

use anyhow::{Context, Result};
use ocitree::export::file_tree::{FileTreeOptions, encapsulate_file_tree};
use ocitree::source::SourceRef;

use crate::cli::registry::RegistryArgs;

pub fn encapsulate(
    repo_path: &Path,
    rev: &str,
    dest: &SourceRef,
    max_blobs: Option<u32>,
    subdir: Option<String>,
    registry: &RegistryArgs,
) -> Result<()> {
    let mut opts = FileTreeOptions::new();
    if let Some(n) = max_blobs {
        opts.max_blobs = n as usize;
    }
    opts.subdir = subdir;
    opts.registry = registry.options()?;
    let repo = ocitree::repo::open(repo_path)?;
    let r = encapsulate_file_tree(&repo, rev, dest, &opts)
        .with_context(|| format!("writing {rev} as a file tree to {dest}"))?;
    out!("Commit:    {}", r.commit);
    out!("Root:      {}", r.root_digest);
    out!(
        "Documents: {} manifests, {} indexes",
        r.manifests,
        r.indexes
    );
    out!(
        "Files:     {} ({} distinct blobs, {} bytes)",
        r.files,
        r.blobs,
        r.blob_bytes
    );
    if let Some(p) = &r.push {
        out!(
            "Pushed:    {} blobs uploaded ({} bytes), {} already there",
            p.uploaded,
            p.bytes,
            p.existing
        );
    }
    Ok(())
}
