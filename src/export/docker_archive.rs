//! Writing an imported image as a `docker save` archive (`docker-archive:FILE[:REFERENCE]`,
//! `docker-archive:-` for standard output): `manifest.json`, the config byte for byte, and
//! every layer as its exact uncompressed tar (so each layer's digest is its diff_id).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use ostree::Repo;
use serde_json::json;

use crate::decompress::Compression;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::export::layer::{BlobEncoding, LayerRecords, write_layer_blob};
use crate::export::{BlobMethod, ExportReport, LayerExport};
use crate::image::{ImageInfo, refs};

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        context: format!("writing {}", what.display()),
        cause: e,
    }
}

/// Writes image `name` as a docker archive to `out` (a file, or standard output for `None`),
/// tagged `reference` if given.
///
/// # Errors
/// The image or a layer is missing, a layer cannot be rebuilt exactly, or writing fails.
pub fn write_archive(
    repo: &Repo,
    name: &str,
    out: Option<&Path>,
    reference: Option<&str>,
) -> Result<ExportReport> {
    let info = ImageInfo::load(repo, name)?;
    let staging = tempfile::tempdir().map_err(io(Path::new("temporary directory")))?;
    let dir = staging.path();
    let config_digest = Digest::sha256_of(info.config.as_bytes());
    let config_name = format!("{}.json", config_digest.encoded());
    fs::write(dir.join(&config_name), &info.config).map_err(io(&dir.join(&config_name)))?;
    let mut layers = Vec::new();
    let mut layer_blobs = Vec::new();
    for (digest, diff_id) in info.layers.iter().zip(&info.diff_ids) {
        let (digest, diff_id) = (Digest::parse(digest)?, Digest::parse(diff_id)?);
        let commit = refs::find_layer(repo, &digest, &diff_id)?.ok_or_else(|| {
            Error::NotFound(format!("image {name}: layer {digest} (was it pruned?)"))
        })?;
        let file_name = format!("{}.tar", diff_id.encoded());
        let path = dir.join(&file_name);
        let mut f = BufWriter::new(fs::File::create(&path).map_err(io(&path))?);
        let records = LayerRecords::load(repo, &commit)?;
        let out = write_layer_blob(
            repo,
            &records,
            &diff_id,
            BlobEncoding::Compress(Compression::None),
            &mut f,
        )?;
        f.flush().map_err(io(&path))?;
        layers.push(file_name);
        layer_blobs.push(LayerExport {
            original: digest.to_string(),
            written: out.digest.to_string(),
            method: BlobMethod::Plain,
        });
    }
    let tags: Vec<&str> = reference.into_iter().collect();
    let manifest = json!([{ "Config": config_name, "RepoTags": tags, "Layers": layers }]);
    let manifest_bytes = serde_json::to_vec(&manifest).expect("JSON values serialize");
    fs::write(dir.join("manifest.json"), &manifest_bytes)
        .map_err(io(&dir.join("manifest.json")))?;
    let target = out.map_or_else(|| Path::new("-").to_path_buf(), Path::to_path_buf);
    let sink: Box<dyn Write> = match out {
        Some(p) => Box::new(BufWriter::new(fs::File::create(p).map_err(io(p))?)),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut b = tar::Builder::new(sink);
    b.mode(tar::HeaderMode::Deterministic);
    let mut names: Vec<String> = layers.clone();
    names.push(config_name);
    names.push("manifest.json".into());
    for n in &names {
        b.append_path_with_name(dir.join(n), n)
            .map_err(io(&target))?;
    }
    b.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(io(&target))?;
    Ok(ExportReport {
        manifest_digest: Digest::sha256_of(&manifest_bytes).to_string(),
        manifest_unchanged: false,
        recompressed: 0,
        layers: layers.len(),
        layer_blobs,
    })
}
