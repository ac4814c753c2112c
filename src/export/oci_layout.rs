//! Writing an imported image as an OCI image layout: a directory (`oci:DIR[:TAG]`), or an
//! archive of one (`oci-archive:FILE[:TAG]`, `oci-archive:-` for standard output).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ostree::Repo;
use serde_json::{Value, json};

use crate::decompress::Compression;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::export::layer::{BlobEncoding, LayerBlobOut, LayerRecords, write_layer_blob};
use crate::image::{ImageInfo, refs};
use crate::source::{Selector, SourceRef};
use crate::spec::{ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX};

/// What an export wrote.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ExportReport {
    /// Digest of the manifest written.
    pub manifest_digest: String,
    /// Whether that is the manifest the image was imported with.
    pub manifest_unchanged: bool,
    /// Layers whose compressed blob differs from the original (the tar inside does not).
    pub recompressed: usize,
    /// Layers written.
    pub layers: usize,
    /// Every layer blob written, in manifest order.
    pub layer_blobs: Vec<LayerExport>,
}

/// How one layer blob was written.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlobMethod {
    /// The tar, uncompressed, as it was imported.
    Plain,
    /// The original gzip bytes, rebuilt from the exact-gzip data recorded at import.
    ExactGzip,
    /// Compressed again, deterministically; why the original bytes were not rebuilt.
    Recompressed(String),
}

/// One layer blob an export wrote.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LayerExport {
    /// Blob digest in the image's manifest.
    pub original: String,
    /// Blob digest written (equal to `original` when the digest was kept).
    pub written: String,
    /// How the blob was made.
    pub method: BlobMethod,
}

impl LayerExport {
    /// Whether the blob kept its digest.
    pub fn kept(&self) -> bool {
        self.original == self.written
    }
}

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        context: format!("writing {}", what.display()),
        cause: e,
    }
}

/// Writes `data` as a blob of the layout at `dir`; returns its digest.
fn put_blob(dir: &Path, data: &[u8]) -> Result<Digest> {
    let d = Digest::sha256_of(data);
    let p = dir.join("blobs/sha256").join(d.encoded());
    fs::write(&p, data).map_err(io(&p))?;
    Ok(d)
}

/// Writes image `name` into the OCI layout directory `dir` (created if needed), tagged `tag`.
///
/// # Errors
/// The image or a layer is missing, a layer cannot be rebuilt exactly, or writing fails.
pub fn write_layout(
    repo: &Repo,
    name: &str,
    dir: &Path,
    tag: Option<&str>,
) -> Result<ExportReport> {
    let info = ImageInfo::load(repo, name)?;
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io(&blobs))?;
    let layout = dir.join("oci-layout");
    fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io(&layout))?;
    put_blob(dir, info.config.as_bytes())?;
    let mut manifest: Value =
        serde_json::from_str(&info.manifest).map_err(|e| Error::InvalidImage {
            image: name.into(),
            reason: format!("stored manifest: {e}"),
        })?;
    let mut recompressed = 0;
    let mut layer_blobs = Vec::new();
    for (i, (digest, diff_id)) in info.layers.iter().zip(&info.diff_ids).enumerate() {
        let (digest, diff_id) = (Digest::parse(digest)?, Digest::parse(diff_id)?);
        let commit = refs::find_layer(repo, &digest, &diff_id)?.ok_or_else(|| {
            Error::NotFound(format!("image {name}: layer {digest} (was it pruned?)"))
        })?;
        let desc = &mut manifest["layers"][i];
        let compression =
            Compression::from_media_type(desc["mediaType"].as_str().unwrap_or_default());
        let records = LayerRecords::load(repo, &commit)?;
        let write = |encoding| -> Result<(tempfile::NamedTempFile, LayerBlobOut)> {
            let tmp = tempfile::NamedTempFile::new_in(&blobs).map_err(io(&blobs))?;
            let mut file = std::io::BufWriter::new(tmp.as_file());
            let out = write_layer_blob(repo, &records, &diff_id, encoding, &mut file)?;
            file.flush().map_err(io(&blobs))?;
            drop(file);
            Ok((tmp, out))
        };
        let exact = match compression {
            Compression::Gzip => records.exact_gzip_for(&digest).and_then(|r| {
                match write(BlobEncoding::ExactGzip(r)) {
                    Ok((tmp, out)) if out.digest == digest => Ok((tmp, out)),
                    Ok((_, out)) => Err(format!("exact rebuild gave {}", out.digest)),
                    Err(e) => Err(format!("exact rebuild failed: {e}")),
                }
            }),
            Compression::Zstd => Err("zstd layers are re-compressed".into()),
            _ => Err(String::new()),
        };
        let (tmp, out, method) = match exact {
            Ok((tmp, out)) => (tmp, out, BlobMethod::ExactGzip),
            Err(why) => {
                let (tmp, out) = write(BlobEncoding::Compress(compression))?;
                let method = if compression == Compression::None {
                    BlobMethod::Plain
                } else {
                    BlobMethod::Recompressed(why)
                };
                (tmp, out, method)
            }
        };
        let dest = blobs.join(out.digest.encoded());
        tmp.persist(&dest).map_err(|e| io(&dest)(e.error))?;
        if out.digest != digest {
            recompressed += 1;
            desc["digest"] = json!(out.digest.as_str());
            desc["size"] = json!(out.size);
        }
        layer_blobs.push(LayerExport {
            original: digest.to_string(),
            written: out.digest.to_string(),
            method,
        });
    }
    let manifest_bytes = if recompressed == 0 {
        info.manifest.clone().into_bytes()
    } else {
        serde_json::to_vec(&manifest).map_err(|e| Error::InvalidImage {
            image: name.into(),
            reason: e.to_string(),
        })?
    };
    let manifest_digest = put_blob(dir, &manifest_bytes)?;
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    add_to_index(
        dir,
        json!({"mediaType": media_type, "digest": manifest_digest.as_str(), "size": manifest_bytes.len()}),
        tag,
    )?;
    Ok(ExportReport {
        manifest_unchanged: manifest_digest.as_str() == info.manifest_digest,
        manifest_digest: manifest_digest.to_string(),
        recompressed,
        layers: info.layers.len(),
        layer_blobs,
    })
}

/// Adds a manifest descriptor to the layout's `index.json`, replacing one with the same tag.
fn add_to_index(dir: &Path, mut desc: Value, tag: Option<&str>) -> Result<()> {
    let path = dir.join("index.json");
    let mut index: Value = match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::InvalidImage {
            image: format!("oci:{}", dir.display()),
            reason: format!("index.json: {e}"),
        })?,
        Err(_) => json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []}),
    };
    let list = index["manifests"]
        .as_array_mut()
        .ok_or_else(|| Error::InvalidImage {
            image: format!("oci:{}", dir.display()),
            reason: "index.json has no manifests list".into(),
        })?;
    if let Some(t) = tag {
        list.retain(|m| m["annotations"][ANNOTATION_REF_NAME].as_str() != Some(t));
        desc["annotations"] = json!({ ANNOTATION_REF_NAME: t });
    }
    list.push(desc);
    fs::write(
        &path,
        serde_json::to_vec(&index).expect("JSON values serialize"),
    )
    .map_err(io(&path))
}

/// Exports image `name` to `dest` (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`,
/// `docker-archive:FILE[:REFERENCE]`; `-` for standard output).
///
/// # Errors
/// As [`write_layout`]; a digest selector in `dest` is refused.
pub fn export_image(repo: &Repo, name: &str, dest: &SourceRef) -> Result<ExportReport> {
    let tag = match dest.selector() {
        Selector::Default => None,
        Selector::Tag(t) => Some(t.as_str()),
        Selector::Digest(_) => {
            return Err(Error::InvalidReference {
                reference: dest.to_string(),
                reason: "a destination takes a tag, not a digest".into(),
            });
        }
    };
    match dest {
        SourceRef::DockerArchive { path, .. } => {
            crate::export::docker_archive::write_archive(repo, name, path.as_deref(), tag)
        }
        SourceRef::OciDir { path, .. } => write_layout(repo, name, path, tag),
        SourceRef::OciArchive { path, .. } => {
            let staging = tempfile::tempdir().map_err(io(Path::new("temporary directory")))?;
            let report = write_layout(repo, name, staging.path(), tag)?;
            let out: Box<dyn Write> = match path {
                Some(p) => Box::new(fs::File::create(p).map_err(io(p))?),
                None => Box::new(std::io::stdout().lock()),
            };
            let target = path.clone().unwrap_or_else(|| PathBuf::from("-"));
            let mut b = tar::Builder::new(out);
            b.mode(tar::HeaderMode::Deterministic);
            b.append_dir_all(".", staging.path()).map_err(io(&target))?;
            b.into_inner()
                .and_then(|mut w| w.flush())
                .map_err(io(&target))?;
            Ok(report)
        }
    }
}
