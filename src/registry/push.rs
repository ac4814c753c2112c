//! Pushing an OCI layout (export writes one in the repository's tmp directory, see
//! `export::push`) to a registry repository: for each blob: HEAD (skip what the registry has), cross-repository mount when the image
//! came from another repository of the same registry, else upload (POST, then one streamed
//! PUT, or PATCH chunks of [`CHUNK`] bytes for larger blobs); last, PUT the manifest — always
//! an OCI manifest: a docker v2 schema 2 one is converted ([`to_oci`]), blobs unchanged.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};
use ureq::http::Method;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::registry::client::{Access, Client, Payload};
use crate::registry::{ImageReference, RegistryOptions};
use crate::spec::METADATA_LIMIT;
use crate::spec::{Index, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_MANIFEST, Manifest};

/// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size (the chunk
/// is the only part held in memory).
pub const CHUNK: u64 = 16 << 20;

/// What a push did.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PushReport {
    /// The digest of the manifest pushed.
    pub manifest_digest: String,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs the registry had already (HEAD).
    pub existing: usize,
    /// Blobs mounted from another repository of the registry.
    pub mounted: usize,
    /// Bytes uploaded.
    pub bytes: u64,
    /// The manifest was docker v2 schema 2 and was pushed converted to OCI.
    pub converted: bool,
}

/// How one blob got to the registry.
pub(crate) enum Sent {
    Existing,
    Mounted,
    Uploaded(u64),
}

/// Pushes the single image of the OCI layout at `layout` to `dest`. `mount_from` names a
/// repository of the same registry that may hold the blobs already.
///
/// # Errors
/// The layout is not one image, a request fails, the registry refuses, or `dest` names a
/// digest other than the manifest's.
pub fn push_layout(
    layout: &Path,
    dest: &ImageReference,
    opts: &RegistryOptions,
    mount_from: Option<&str>,
) -> Result<PushReport> {
    let image = format!("oci:{}", layout.display());
    let invalid = |reason: String| Error::InvalidImage {
        image: image.clone(),
        reason,
    };
    let blob_path = |d: &Digest| layout.join("blobs").join(d.algorithm()).join(d.encoded());
    let read = |p: &Path| std::fs::read(p).map_err(Error::io(format!("reading {}", p.display())));
    let index: Index = serde_json::from_slice(&read(&layout.join("index.json"))?)
        .map_err(|e| invalid(format!("index.json: {e}")))?;
    let [desc] = index.manifests.as_slice() else {
        return Err(invalid(format!(
            "{} manifests in the layout, expected one",
            index.manifests.len()
        )));
    };
    let layout_digest = desc.digest()?;
    let manifest_bytes = read(&blob_path(&layout_digest))?;
    if manifest_bytes.len() as u64 > METADATA_LIMIT {
        return Err(invalid("manifest too large".into()));
    }
    let manifest: Manifest =
        serde_json::from_slice(&manifest_bytes).map_err(|e| invalid(format!("manifest: {e}")))?;
    let (manifest_bytes, converted) = match to_oci(&manifest_bytes) {
        Some(b) => (b, true),
        None => (manifest_bytes, false),
    };
    // The layout's manifest is sha256 (export_image writes it), and so is a converted one.
    let manifest_digest = if converted {
        Digest::sha256_of(&manifest_bytes)
    } else {
        layout_digest
    };
    if let Some(d) = &dest.digest
        && *d != manifest_digest
    {
        return Err(Error::InvalidReference {
            reference: format!("docker://{dest}"),
            reason: format!("the exported manifest's digest is {manifest_digest}, not {d}"),
        });
    }
    let client = Client::new(dest, opts, Access::Push)?;
    let mount_from = mount_from.filter(|r| *r != dest.repository);
    if let Some(from) = mount_from {
        client.add_pull_scope(from);
    }
    let mut report = PushReport::default();
    let blobs = std::iter::once(&manifest.config).chain(&manifest.layers);
    for b in blobs {
        let digest = b.digest()?;
        match push_blob(&client, &digest, &blob_path(&digest), mount_from)? {
            Sent::Existing => report.existing += 1,
            Sent::Mounted => report.mounted += 1,
            Sent::Uploaded(n) => {
                report.uploaded += 1;
                report.bytes += n;
            }
        }
    }
    let media_type = if converted {
        MEDIA_TYPE_MANIFEST.to_string()
    } else {
        manifest
            .media_type
            .clone()
            .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_string())
    };
    let url = client.url(&format!("/manifests/{}", dest.manifest_reference()));
    let resp = client.send(
        Method::PUT,
        &url,
        &[("Content-Type", &media_type)],
        Payload::Bytes(&manifest_bytes),
    )?;
    if !resp.status().is_success() {
        return Err(client.status_error(&url, "pushing the manifest", resp));
    }
    report.manifest_digest = manifest_digest.to_string();
    report.converted = converted;
    Ok(report)
}

/// The OCI media type for a docker one, as containers/image converts them.
fn oci_media_type(docker: &str) -> Option<&'static str> {
    Some(match docker {
        MEDIA_TYPE_DOCKER_MANIFEST => MEDIA_TYPE_MANIFEST,
        "application/vnd.docker.container.image.v1+json" => {
            "application/vnd.oci.image.config.v1+json"
        }
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        }
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.docker.image.rootfs.diff.tar.zstd" => {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        }
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
            "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        }
        _ => return None,
    })
}

/// A docker v2 schema 2 manifest rewritten as an OCI manifest (media types of manifest,
/// config and layers; digests and sizes unchanged). `None` when it is not one.
pub fn to_oci(manifest: &[u8]) -> Option<Vec<u8>> {
    let mut m: Value = serde_json::from_slice(manifest).ok()?;
    if m["mediaType"].as_str() != Some(MEDIA_TYPE_DOCKER_MANIFEST) {
        return None;
    }
    m["mediaType"] = json!(MEDIA_TYPE_MANIFEST);
    let convert = |d: &mut Value| {
        if let Some(t) = d["mediaType"].as_str().and_then(oci_media_type) {
            d["mediaType"] = json!(t);
        }
    };
    convert(&mut m["config"]);
    if let Some(layers) = m.get_mut("layers").and_then(Value::as_array_mut) {
        layers.iter_mut().for_each(convert);
    }
    Some(serde_json::to_vec(&m).expect("JSON values serialize"))
}

/// Gets one blob to the registry.
pub(crate) fn push_blob(
    client: &Client,
    digest: &Digest,
    path: &Path,
    mount_from: Option<&str>,
) -> Result<Sent> {
    let url = client.url(&format!("/blobs/{digest}"));
    let resp = client.send(Method::HEAD, &url, &[], Payload::Empty)?;
    if resp.status().is_success() {
        return Ok(Sent::Existing);
    }
    if resp.status() != 404 {
        return Err(client.status_error(&url, &format!("checking blob {digest}"), resp));
    }
    let mut start = client.url("/blobs/uploads/");
    if let Some(from) = mount_from {
        start = format!("{start}?mount={digest}&from={from}");
    }
    let resp = client.send(Method::POST, &start, &[], Payload::Empty)?;
    if resp.status() == 201 && mount_from.is_some() {
        return Ok(Sent::Mounted);
    }
    if resp.status() != 202 {
        return Err(client.status_error(&start, &format!("starting upload of {digest}"), resp));
    }
    let mut location = location(client, &start, &resp)?;
    let size = std::fs::metadata(path)
        .map_err(Error::io(format!("reading {}", path.display())))?
        .len();
    let octet = ("Content-Type", "application/octet-stream");
    if size > CHUNK {
        let mut file =
            File::open(path).map_err(Error::io(format!("reading {}", path.display())))?;
        let mut buf = Vec::with_capacity(CHUNK as usize);
        let mut offset = 0u64;
        while offset < size {
            buf.clear();
            (&mut file)
                .take(CHUNK)
                .read_to_end(&mut buf)
                .map_err(Error::io(format!("reading {}", path.display())))?;
            if buf.is_empty() {
                return Err(Error::InvalidImage {
                    image: path.display().to_string(),
                    reason: "blob file shrank while uploading".into(),
                });
            }
            let range = format!("{offset}-{}", offset + buf.len() as u64 - 1);
            let resp = client.send(
                Method::PATCH,
                &location,
                &[octet, ("Content-Range", &range)],
                Payload::Bytes(&buf),
            )?;
            if resp.status() != 202 {
                return Err(client.status_error(&location, &format!("uploading {digest}"), resp));
            }
            location = self::location(client, &location, &resp)?;
            offset += buf.len() as u64;
        }
        let put = with_digest(&location, digest);
        let resp = client.send(Method::PUT, &put, &[], Payload::Empty)?;
        if resp.status() != 201 {
            return Err(client.status_error(&put, &format!("finishing {digest}"), resp));
        }
    } else {
        let put = with_digest(&location, digest);
        let resp = client.send(Method::PUT, &put, &[octet], Payload::File(path))?;
        if resp.status() != 201 {
            return Err(client.status_error(&put, &format!("uploading {digest}"), resp));
        }
    }
    Ok(Sent::Uploaded(size))
}

/// The absolute upload URL of a 202 answer's `Location`.
fn location(client: &Client, url: &str, resp: &ureq::http::Response<ureq::Body>) -> Result<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| client.absolute(l))
        .ok_or_else(|| Error::Registry {
            url: url.to_string(),
            reason: "upload answer without a Location".into(),
        })
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_manifests_become_oci() {
        let docker = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_DOCKER_MANIFEST,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:aa", "size": 1},
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": "sha256:bb", "size": 2},
                {"mediaType": "application/x-unknown", "digest": "sha256:cc", "size": 3},
            ],
        });
        let oci: Value =
            serde_json::from_slice(&to_oci(docker.to_string().as_bytes()).unwrap()).unwrap();
        assert_eq!(oci["mediaType"], MEDIA_TYPE_MANIFEST);
        assert_eq!(
            oci["config"]["mediaType"],
            "application/vnd.oci.image.config.v1+json"
        );
        assert_eq!(
            oci["layers"][0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        assert_eq!(oci["layers"][0]["digest"], "sha256:bb");
        assert_eq!(oci["layers"][1]["mediaType"], "application/x-unknown");
        let already = serde_json::json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_MANIFEST});
        assert!(to_oci(already.to_string().as_bytes()).is_none());
    }

    #[test]
    fn upload_urls_get_the_digest() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            with_digest("http://r/u/1", &d),
            format!("http://r/u/1?digest={d}")
        );
        assert_eq!(
            with_digest("http://r/u/1?_state=x", &d),
            format!("http://r/u/1?_state=x&digest={d}")
        );
    }
}
