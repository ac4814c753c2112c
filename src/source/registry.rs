//! A registry repository as a [`Source`]: the manifest the reference names (fetched from
//! `/v2/REPO/manifests/`) wrapped in a synthesized `index.json`, manifests of a manifest list
//! fetched by digest, and blobs from `/v2/REPO/blobs/` — layer blobs through a
//! [`Prefetch`] pool when the import asks for them ahead. With mirrors in registries.conf
//! ([`RegistriesConf`]), the first place (mirror, then the origin) that serves the manifest
//! serves everything else, and the places after it serve the blobs and manifests by digest
//! it fails on ([`Places`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use ureq::http::Method;

use crate::blob::BlobReader;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::registry::client::{Access, Client, Payload};
use crate::registry::fetch::{self, Prefetch};
use crate::registry::places::Places;
use crate::registry::registries_conf::RegistriesConf;
use crate::registry::{ACCEPT_MANIFESTS, ImageReference, RegistryOptions};
use crate::source::Source;
use crate::spec::metadata_limit;
use crate::spec::{ANNOTATION_REF_NAME, Index, MEDIA_TYPE_INDEX};

/// Bytes of fetched manifests and indexes kept in memory: past it the oldest are dropped (and
/// fetched again by digest if read again), so a registry serving many large indexes cannot
/// grow memory. The one fetched last is always kept, however large.
pub const MANIFEST_CACHE_BYTES: usize = 16 << 20;

/// Manifests and indexes fetched, by digest, at most [`MANIFEST_CACHE_BYTES`] of them (the
/// oldest go first).
#[derive(Debug, Default)]
struct ManifestCache {
    by_digest: HashMap<Digest, Vec<u8>>,
    order: VecDeque<Digest>,
    bytes: usize,
}

impl ManifestCache {
    fn get(&self, digest: &Digest) -> Option<&Vec<u8>> {
        self.by_digest.get(digest)
    }

    fn insert(&mut self, digest: &Digest, bytes: &[u8]) {
        if self.by_digest.contains_key(digest) {
            return;
        }
        self.by_digest.insert(digest.clone(), bytes.to_vec());
        self.order.push_back(digest.clone());
        self.bytes += bytes.len();
        while self.bytes > MANIFEST_CACHE_BYTES && self.order.len() > 1 {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(b) = self.by_digest.remove(&old) {
                self.bytes -= b.len();
            }
        }
    }
}

/// A repository on a registry, read through the distribution API.
#[derive(Debug)]
pub struct Registry {
    /// The reference asked for (named in the synthesized index whichever place serves it).
    requested: ImageReference,
    /// The places to read from, in order (mirrors, then the origin); once the manifest is
    /// fetched, the first is the one that served it.
    places: Places,
    /// Manifests and indexes fetched lately, by digest.
    manifests: ManifestCache,
    /// Digests known to name manifests (fetched, or listed in an index served), fetched on
    /// demand.
    manifest_digests: HashSet<Digest>,
    prefetch: Option<Prefetch>,
    parallel: usize,
    /// The synthesized `index.json`, once made (the import reads it twice: to recognise a
    /// file tree, then to resolve).
    index: Option<Vec<u8>>,
}

impl Registry {
    /// Prepares a pull from `reference` (no request is made yet).
    ///
    /// # Errors
    /// An auth file or registries.conf is malformed, or the registry is blocked.
    pub fn open(reference: &ImageReference, opts: &RegistryOptions) -> Result<Registry> {
        let conf = RegistriesConf::load(opts.registries_conf.as_deref())?;
        let clients = conf
            .pull_endpoints(reference)?
            .iter()
            .map(|e| {
                Ok(Arc::new(Client::new(
                    &e.reference,
                    &e.options(opts),
                    Access::Pull,
                )?))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Registry {
            requested: reference.clone(),
            places: Places::new(clients),
            manifests: ManifestCache::default(),
            manifest_digests: HashSet::new(),
            prefetch: None,
            parallel: opts.parallel,
            index: None,
        })
    }

    /// The manifest from the first place that serves it, which then serves the rest.
    fn first_serving(&mut self) -> Result<(Vec<u8>, String, Digest)> {
        let (i, found) = self
            .places
            .first_ok(|client| get_manifest(client, &client.reference().manifest_reference()))?;
        self.places.keep_from(i);
        self.remember(&found)?;
        Ok(found)
    }

    /// GETs the manifest or index `digest` names (one an index served lists): from the
    /// serving place, or the places after it when it fails.
    fn fetch_manifest(&mut self, digest: &Digest) -> Result<(Vec<u8>, String, Digest)> {
        let (_, found) = self
            .places
            .first_ok(|client| get_manifest(client, digest.as_str()))?;
        self.remember(&found)?;
        Ok(found)
    }

    /// Keeps a manifest or index fetched, and notes the manifests an index lists.
    fn remember(&mut self, (bytes, media_type, digest): &(Vec<u8>, String, Digest)) -> Result<()> {
        if media_type == MEDIA_TYPE_INDEX || media_type == crate::spec::MEDIA_TYPE_DOCKER_LIST {
            let index: Index = serde_json::from_slice(bytes).map_err(|e| Error::Registry {
                url: self.places.first().url(&format!("/manifests/{digest}")),
                reason: format!("index: {e}"),
            })?;
            for m in index.manifests {
                if let Ok(d) = m.digest() {
                    self.manifest_digests.insert(d);
                }
            }
        }
        // Read again once dropped from the cache: by digest, from /manifests/.
        self.manifest_digests.insert(digest.clone());
        self.manifests.insert(digest, bytes);
        Ok(())
    }
}

/// GETs a manifest by tag or digest from `client`; returns its bytes, media type and digest
/// (checked when `reference` is a digest).
fn get_manifest(client: &Client, reference: &str) -> Result<(Vec<u8>, String, Digest)> {
    let url = client.url(&format!("/manifests/{reference}"));
    let mut resp = client.send(
        Method::GET,
        &url,
        &[("Accept", ACCEPT_MANIFESTS)],
        Payload::Empty,
    )?;
    if !resp.status().is_success() {
        return Err(client.status_error(&url, "manifest", resp));
    }
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
        .unwrap_or_default();
    let mut bytes = Vec::new();
    resp.body_mut()
        .as_reader()
        .take(metadata_limit().saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Registry {
            url: url.clone(),
            reason: format!("reading the manifest: {e}"),
        })?;
    if bytes.len() as u64 > metadata_limit() {
        return Err(Error::Registry {
            url,
            reason: format!("manifest larger than {} bytes", metadata_limit()),
        });
    }
    let digest = match Digest::parse(reference) {
        Ok(wanted) => {
            let mut h = wanted.hasher()?;
            h.update(&bytes);
            let found = h.finish();
            if found != wanted {
                return Err(Error::Registry {
                    url,
                    reason: format!("manifest digest mismatch: content hashes to {found}"),
                });
            }
            wanted
        }
        Err(_) => Digest::sha256_of(&bytes),
    };
    // The document's own mediaType wins over a generic Content-Type.
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Typed {
        media_type: Option<String>,
    }
    let media_type = serde_json::from_slice::<Typed>(&bytes)
        .ok()
        .and_then(|t| t.media_type)
        .unwrap_or(content_type);
    Ok((bytes, media_type, digest))
}

impl Source for Registry {
    fn index(&mut self) -> Result<Vec<u8>> {
        if let Some(i) = &self.index {
            return Ok(i.clone());
        }
        let reference = self.requested.clone();
        let (bytes, media_type, digest) = self.first_serving()?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "manifests": [{
                "mediaType": media_type,
                "digest": digest.as_str(),
                "size": bytes.len(),
                "annotations": { ANNOTATION_REF_NAME: reference.to_string() },
            }],
        });
        let bytes = serde_json::to_vec(&index).expect("JSON values serialize");
        self.index = Some(bytes.clone());
        Ok(bytes)
    }

    fn open_blob(&mut self, digest: &Digest) -> Result<BlobReader> {
        if let Some(b) = self.manifests.get(digest) {
            return Ok(Box::new(std::io::Cursor::new(b.clone())));
        }
        if self.manifest_digests.contains(digest) {
            let (bytes, _, _) = self.fetch_manifest(digest)?;
            return Ok(Box::new(std::io::Cursor::new(bytes)));
        }
        if let Some(p) = &self.prefetch
            && let Some(r) = p.take(digest)
        {
            return r;
        }
        let (_, blob) = self
            .places
            .first_ok(|client| fetch::open_blob(client, digest))?;
        Ok(blob)
    }

    fn prefetch(
        &mut self,
        blobs: &[(Digest, u64)],
        spool: &Path,
        progress: &crate::progress::Reporter,
    ) -> Result<()> {
        if !blobs.is_empty() {
            self.prefetch = Some(Prefetch::start(
                self.places.clone(),
                blobs,
                spool,
                self.parallel,
                progress.clone(),
            ));
        }
        Ok(())
    }
}
