//! Pushing an OCI layout (export writes one in the repository's tmp directory, see
//! `export::push`) to a registry repository: for each blob: HEAD (skip what the registry has), cross-repository mount when the image
//! came from another repository of the same registry, else upload (POST, then one streamed
//! PUT, or PATCH chunks of [`CHUNK`] bytes for larger blobs, resumed or restarted after a
//! failure: [`crate::registry::upload`]); last, PUT the manifest — always
//! an OCI manifest: a docker v2 schema 2 one is converted ([`to_oci`]), blobs unchanged.

use std::path::Path;

use serde_json::{Value, json};
use ureq::http::Method;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::registry::client::{Access, Client, Payload};
use crate::registry::registries_conf::RegistriesConf;
use crate::registry::upload;
use crate::registry::{ImageReference, RegistryOptions};
use crate::spec::METADATA_LIMIT;
use crate::spec::{
    Index, MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST, Manifest, Platform,
};

pub use crate::registry::upload::CHUNK;

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
    /// Uploads that failed part-way and continued from where the registry said it stood.
    pub resumed: usize,
    /// Uploads that failed part-way and started over (the registry had dropped them).
    pub restarted: usize,
}

/// How one blob got to the registry.
pub(crate) enum Sent {
    Existing,
    Mounted,
    Uploaded(upload::Uploaded),
}

impl PushReport {
    /// Counts one blob sent.
    pub(crate) fn count(&mut self, sent: Sent) {
        match sent {
            Sent::Existing => self.existing += 1,
            Sent::Mounted => self.mounted += 1,
            Sent::Uploaded(u) => {
                self.uploaded += 1;
                self.bytes += u.bytes;
                self.resumed += u.resumed;
                self.restarted += u.restarted;
            }
        }
    }
}

/// A manifest of a layout, ready to push: its bytes (converted to OCI when they were docker
/// v2 schema 2), digest and media type.
struct Ready {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: String,
    manifest: Manifest,
    converted: bool,
}

/// Reads the manifest `digest` of the layout at `layout` and converts it to OCI if needed.
fn ready(layout: &Path, digest: &Digest) -> Result<Ready> {
    let invalid = |reason: String| Error::InvalidImage {
        image: format!("oci:{}", layout.display()),
        reason,
    };
    let p = blob_path(layout, digest);
    let bytes = std::fs::read(&p).map_err(Error::io(format!("reading {}", p.display())))?;
    if bytes.len() as u64 > METADATA_LIMIT {
        return Err(invalid("manifest too large".into()));
    }
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("manifest: {e}")))?;
    Ok(match to_oci(&bytes) {
        Some(b) => Ready {
            digest: Digest::sha256_of(&b),
            bytes: b,
            media_type: MEDIA_TYPE_MANIFEST.to_string(),
            manifest,
            converted: true,
        },
        // The layout's manifest is sha256 (export_image writes it), and so is a converted one.
        None => Ready {
            media_type: manifest
                .media_type
                .clone()
                .unwrap_or_else(|| MEDIA_TYPE_MANIFEST.to_string()),
            bytes,
            digest: digest.clone(),
            manifest,
            converted: false,
        },
    })
}

fn blob_path(layout: &Path, d: &Digest) -> std::path::PathBuf {
    layout.join("blobs").join(d.algorithm()).join(d.encoded())
}

/// Refuses a push to `dest@DIGEST` of something else than `digest`.
fn check_digest(dest: &ImageReference, digest: &Digest, what: &str) -> Result<()> {
    match &dest.digest {
        Some(d) if d != digest => Err(Error::InvalidReference {
            reference: format!("docker://{dest}"),
            reason: format!("the exported {what}'s digest is {digest}, not {d}"),
        }),
        _ => Ok(()),
    }
}

/// A push client for `dest`, as registries.conf has it (blocked, insecure).
fn push_client(dest: &ImageReference, opts: &RegistryOptions) -> Result<Client> {
    let endpoint = RegistriesConf::load(opts.registries_conf.as_deref())?.push_endpoint(dest)?;
    Client::new(dest, &endpoint.options(opts), Access::Push)
}

/// PUTs a manifest (or index) document under `reference` (a tag or its digest).
fn put_manifest(client: &Client, reference: &str, media_type: &str, bytes: &[u8]) -> Result<()> {
    let url = client.url(&format!("/manifests/{reference}"));
    let resp = client.send(
        Method::PUT,
        &url,
        &[("Content-Type", media_type)],
        Payload::Bytes(bytes),
    )?;
    if !resp.status().is_success() {
        return Err(client.status_error(&url, "pushing the manifest", resp));
    }
    Ok(())
}

/// Pushes the config and layers of `m` (blobs of the layout at `layout`), counting in `report`.
fn push_blobs(
    client: &Client,
    layout: &Path,
    m: &Manifest,
    mount_from: Option<&str>,
    report: &mut PushReport,
) -> Result<()> {
    for b in std::iter::once(&m.config).chain(&m.layers) {
        let digest = b.digest()?;
        report.count(push_blob(
            client,
            &digest,
            &blob_path(layout, &digest),
            mount_from,
        )?);
    }
    Ok(())
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
    let index_path = layout.join("index.json");
    let invalid = |reason: String| Error::InvalidImage {
        image: format!("oci:{}", layout.display()),
        reason,
    };
    let index: Index = serde_json::from_slice(
        &std::fs::read(&index_path)
            .map_err(Error::io(format!("reading {}", index_path.display())))?,
    )
    .map_err(|e| invalid(format!("index.json: {e}")))?;
    let [desc] = index.manifests.as_slice() else {
        return Err(invalid(format!(
            "{} manifests in the layout, expected one",
            index.manifests.len()
        )));
    };
    let m = ready(layout, &desc.digest()?)?;
    check_digest(dest, &m.digest, "manifest")?;
    let client = push_client(dest, opts)?;
    let mount_from = mount_from.filter(|r| *r != dest.repository);
    if let Some(from) = mount_from {
        client.add_pull_scope(from);
    }
    let mut report = PushReport::default();
    push_blobs(&client, layout, &m.manifest, mount_from, &mut report)?;
    put_manifest(&client, &dest.manifest_reference(), &m.media_type, &m.bytes)?;
    report.manifest_digest = m.digest.to_string();
    report.converted = m.converted;
    Ok(report)
}

/// Pushes the images `manifests` of the OCI layout at `layout` (each by digest, with its
/// platform), then an OCI index listing them, under `dest`'s tag (or digest, which must be
/// the index's). Docker v2 schema 2 manifests are pushed converted to OCI, and the index
/// names them by their new digests. The report's `manifest_digest` is the index's.
///
/// # Errors
/// As [`push_layout`].
pub fn push_index(
    layout: &Path,
    manifests: &[(Digest, Platform)],
    dest: &ImageReference,
    opts: &RegistryOptions,
) -> Result<PushReport> {
    let client = push_client(dest, opts)?;
    let mut report = PushReport::default();
    let mut entries = Vec::new();
    let mut ready_all = Vec::new();
    for (digest, platform) in manifests {
        let m = ready(layout, digest)?;
        entries.push(json!({
            "mediaType": m.media_type,
            "digest": m.digest.as_str(),
            "size": m.bytes.len(),
            "platform": platform_json(platform),
        }));
        ready_all.push(m);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_INDEX,
        "manifests": entries,
    }))
    .expect("JSON values serialize");
    let index_digest = Digest::sha256_of(&index);
    check_digest(dest, &index_digest, "index")?;
    for m in &ready_all {
        push_blobs(&client, layout, &m.manifest, None, &mut report)?;
        put_manifest(&client, m.digest.as_str(), &m.media_type, &m.bytes)?;
        report.converted |= m.converted;
    }
    put_manifest(
        &client,
        &dest.manifest_reference(),
        MEDIA_TYPE_INDEX,
        &index,
    )?;
    report.manifest_digest = index_digest.to_string();
    Ok(report)
}

/// An index entry's `platform` object.
fn platform_json(p: &Platform) -> Value {
    let mut v = json!({"architecture": p.architecture, "os": p.os});
    if let Some(variant) = &p.variant {
        v["variant"] = json!(variant);
    }
    v
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
    let location = upload::location(client, &start, &resp)?;
    Ok(Sent::Uploaded(upload::upload(
        client, digest, path, &start, location,
    )?))
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
}
