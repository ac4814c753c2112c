//! `ocitree encapsulate --format file-tree` and `ocitree export` of an imported file tree:
//! the summary they print.

use std::path::Path;

use anyhow::{Context, Result};
use ocitree::export::file_tree::{
    FileTreeOptions, FileTreeReport, encapsulate_file_tree, export_file_tree,
};
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
    print(&r, dest)
}

/// `ocitree export NAME DEST` of an imported file tree: the same artifact again.
pub fn export(
    repo: &ocitree::ostree::Repo,
    name: &str,
    dest: &SourceRef,
    registry: &RegistryArgs,
) -> Result<()> {
    let mut opts = FileTreeOptions::new();
    opts.registry = registry.options()?;
    let r = export_file_tree(repo, name, dest, &opts)
        .with_context(|| format!("exporting {name} to {dest}"))?;
    print(&r, dest)?;
    println_to(
        dest,
        "Digest:    root digest unchanged (the artifact it was imported from)",
    )
}

fn print(r: &FileTreeReport, dest: &SourceRef) -> Result<()> {
    let mut lines = vec![
        format!("Commit:    {}", r.commit),
        format!("Root:      {}", r.root_digest),
        format!(
            "Documents: {} manifests, {} indexes",
            r.manifests, r.indexes
        ),
        format!(
            "Files:     {} ({} distinct blobs, {} bytes)",
            r.files, r.blobs, r.blob_bytes
        ),
    ];
    if let Some(p) = &r.push {
        lines.push(format!(
            "Pushed:    {} blobs uploaded ({} bytes), {} already there",
            p.uploaded, p.bytes, p.existing
        ));
    }
    for l in lines {
        println_to(dest, &l)?;
    }
    Ok(())
}

/// Standard output may be the archive itself: the summary goes to stderr then.
fn println_to(dest: &SourceRef, line: &str) -> Result<()> {
    if ocitree::export::sink::writes_to_stdout(dest) {
        eprintln!("{line}");
    } else {
        out!("{line}");
    }
    Ok(())
}
