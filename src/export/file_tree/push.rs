//! Pushing a layout whose root is a tree of indexes and manifests (a file tree) to a registry:
//! depth first, children before the document that names them (registries check that), each
//! document by digest and the root by the reference's tag. A document the registry already
//! has (`HEAD /manifests/DIGEST`) is skipped with everything below it, so a new version of a
//! large tree costs one request per unchanged subtree and uploads only new blobs.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use ureq::http::Method;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::file_tree::MAX_DEPTH;
use crate::registry::client::{Access, Client, Payload};
use crate::registry::push::{Sent, push_blob};
use crate::registry::{ImageReference, PushReport, RegistryOptions};
use crate::spec::{Descriptor, Index, METADATA_LIMIT, Manifest};

/// A push in progress.
struct Walk<'a> {
    client: Client,
    layout: &'a Path,
    report: PushReport,
    /// Blobs uploaded at once.
    parallel: usize,
}

/// Pushes the single root (index or manifest) of the layout at `layout` and everything it
/// names to `dest`. [`PushReport::uploaded`], `existing` and `bytes` count file blobs and
/// configs; documents are not counted.
///
/// # Errors
/// The layout is not one root, a document is malformed, a request fails or the registry
/// refuses.
pub fn push_tree(
    layout: &Path,
    dest: &ImageReference,
    opts: &RegistryOptions,
) -> Result<PushReport> {
    let image = format!("oci:{}", layout.display());
    let index: Index = serde_json::from_slice(&read(&layout.join("index.json"))?).map_err(|e| {
        Error::InvalidImage {
            image: image.clone(),
            reason: format!("index.json: {e}"),
        }
    })?;
    let [root] = index.manifests.as_slice() else {
        return Err(Error::InvalidImage {
            image,
            reason: format!(
                "{} manifests in the layout, expected one",
                index.manifests.len()
            ),
        });
    };
    let mut w = Walk {
        client: Client::new(dest, opts, Access::Push)?,
        layout,
        report: PushReport::default(),
        parallel: opts.parallel,
    };
    let digest = root.digest()?;
    w.node(root, Some(&dest.manifest_reference()), 0)?;
    w.report.manifest_digest = digest.to_string();
    Ok(w.report)
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(Error::io(format!("reading {}", p.display())))
}

impl Walk<'_> {
    fn blob_path(&self, d: &Digest) -> std::path::PathBuf {
        self.layout
            .join("blobs")
            .join(d.algorithm())
            .join(d.encoded())
    }

    fn invalid(&self, reason: String) -> Error {
        Error::InvalidImage {
            image: format!("oci:{}", self.layout.display()),
            reason,
        }
    }

    /// Pushes document `desc` and what it names; under `reference` (the root's tag), else
    /// by digest, skipped when the registry has it.
    fn node(&mut self, desc: &Descriptor, reference: Option<&str>, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH + 1 {
            return Err(self.invalid(format!("documents nested more than {MAX_DEPTH} deep")));
        }
        let digest = desc.digest()?;
        if reference.is_none() && self.has_manifest(&digest)? {
            return Ok(());
        }
        let bytes = read(&self.blob_path(&digest))?;
        if bytes.len() as u64 > METADATA_LIMIT {
            return Err(self.invalid(format!("{digest}: document too large")));
        }
        if desc.is_index() {
            let idx: Index = serde_json::from_slice(&bytes)
                .map_err(|e| self.invalid(format!("{digest}: {e}")))?;
            for child in &idx.manifests {
                self.node(child, None, depth + 1)?;
            }
        } else {
            let m: Manifest = serde_json::from_slice(&bytes)
                .map_err(|e| self.invalid(format!("{digest}: {e}")))?;
            let mut blobs = Vec::new();
            for b in std::iter::once(&m.config).chain(&m.layers) {
                let d = b.digest()?;
                if !blobs.contains(&d) {
                    blobs.push(d);
                }
            }
            self.blobs(&blobs)?;
        }
        let reference = reference.map_or_else(|| digest.to_string(), str::to_string);
        let url = self.client.url(&format!("/manifests/{reference}"));
        let resp = self.client.send(
            Method::PUT,
            &url,
            &[("Content-Type", &desc.media_type)],
            Payload::Bytes(&bytes),
        )?;
        if !resp.status().is_success() {
            return Err(self.client.status_error(
                &url,
                "pushing a document of the file tree",
                resp,
            ));
        }
        Ok(())
    }

    /// Pushes `blobs` on [`RegistryOptions::parallel`] connections at once.
    fn blobs(&mut self, blobs: &[Digest]) -> Result<()> {
        let next = AtomicUsize::new(0);
        let this = &*self;
        let results: Vec<Result<Vec<Sent>>> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..this.parallel.clamp(1, blobs.len().max(1)))
                .map(|_| {
                    s.spawn(|| {
                        let mut sent = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(d) = blobs.get(i) else {
                                return Ok(sent);
                            };
                            sent.push(push_blob(&this.client, d, &this.blob_path(d), None)?);
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join()
                        .unwrap_or_else(|_| Err(this.invalid("a push thread panicked".into())))
                })
                .collect()
        });
        for r in results {
            for sent in r? {
                self.report.count(sent);
            }
        }
        Ok(())
    }

    fn has_manifest(&self, digest: &Digest) -> Result<bool> {
        let url = self.client.url(&format!("/manifests/{digest}"));
        let resp = self.client.send(
            Method::HEAD,
            &url,
            &[("Accept", crate::registry::ACCEPT_MANIFESTS)],
            Payload::Empty,
        )?;
        if resp.status().is_success() {
            return Ok(true);
        }
        if resp.status() == 404 {
            return Ok(false);
        }
        Err(self
            .client
            .status_error(&url, &format!("checking manifest {digest}"), resp))
    }
}
