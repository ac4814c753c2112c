//! One directory → its document: file blobs written through the sink (once per content
//! object, once per digest), then a manifest of the files, or an index of file shards and
//! subdirectory documents, depth first.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use ostree::gio::prelude::*;
use ostree::{ObjectType, Repo, gio};
use serde_json::{Value, json};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::export::encapsulate::tar::xattrs_of;
use crate::export::encapsulate::walk::load_dirtree;
use crate::export::sink::Sink;
use crate::image::file_tree::{
    ARTIFACT_TYPE, EMPTY_CONFIG, EMPTY_CONFIG_TYPE, ENTRIES, EXTRA_DIR, EXTRA_SYMLINK, Extra,
    FILE_MEDIA_TYPE, MAX_DEPTH, Meta, TITLE,
};
use crate::spec::{MEDIA_TYPE_INDEX, MEDIA_TYPE_MANIFEST};

/// What was written.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub manifests: usize,
    pub indexes: usize,
    pub files: usize,
    pub blobs: usize,
    pub blob_bytes: u64,
}

/// Writes the documents of one tree.
pub struct Builder<'a> {
    repo: &'a Repo,
    rev: &'a str,
    sink: &'a mut Sink,
    max_blobs: usize,
    /// Content object → its blob (digest, size).
    blobs: HashMap<String, (Digest, u64)>,
    /// Blob digests written.
    written: std::collections::HashSet<Digest>,
    config: Option<Value>,
    counts: Counts,
}

/// A directory's document, or nothing for an empty directory (its parent lists it).
enum Doc {
    Empty(Meta),
    Written(Value),
}

impl<'a> Builder<'a> {
    pub fn new(repo: &'a Repo, rev: &'a str, sink: &'a mut Sink, max_blobs: usize) -> Self {
        Builder {
            repo,
            rev,
            sink,
            max_blobs,
            blobs: HashMap::new(),
            written: Default::default(),
            config: None,
            counts: Counts::default(),
        }
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    fn unencapsulable(&self, path: &str, reason: String) -> Error {
        Error::Unencapsulable {
            rev: self.rev.to_string(),
            path: path.to_string(),
            reason,
        }
    }

    /// The root's document (bytes and media type; not yet written: the sink tags it).
    pub fn root(&mut self, contents: &str, meta: &str) -> Result<(Vec<u8>, &'static str)> {
        let meta = self.dir_meta(meta, "")?;
        self.dir(contents, meta, "", 0, true)
            .map(|d| d.expect("the root is always a document"))
    }

    fn dir_meta(&self, csum: &str, path: &str) -> Result<Meta> {
        let v = self
            .repo
            .load_variant(ObjectType::DirMeta, csum)
            .map_err(Error::ostree(format!("loading dirmeta of /{path}")))?;
        let p = ostree::DirMetaParsed::from_variant(&v).map_err(|e| Error::InvalidImage {
            image: self.rev.to_string(),
            reason: format!("dirmeta of /{path}: {e}"),
        })?;
        Ok(Meta {
            mode: p.mode & 0o7777,
            uid: p.uid,
            gid: p.gid,
            xattrs: xattrs_of(p.xattrs),
        })
    }

    /// The empty config descriptor (its blob written once).
    fn config(&mut self) -> Result<Value> {
        if let Some(c) = &self.config {
            return Ok(c.clone());
        }
        let d = self.sink.put_document(EMPTY_CONFIG)?;
        let c = json!({"mediaType": EMPTY_CONFIG_TYPE, "digest": d.as_str(), "size": EMPTY_CONFIG.len()});
        self.config = Some(c.clone());
        Ok(c)
    }

    /// Writes a document that is not the root; returns its descriptor.
    fn put(&mut self, doc: &Value, media_type: &str) -> Result<Value> {
        let bytes = serde_json::to_vec(doc).expect("JSON values serialize");
        let d = self.sink.put_document(&bytes)?;
        Ok(json!({
            "mediaType": media_type,
            "digest": d.as_str(),
            "size": bytes.len(),
            "artifactType": ARTIFACT_TYPE,
        }))
    }

    fn manifest(
        &mut self,
        layers: &[Value],
        annotations: &BTreeMap<String, String>,
    ) -> Result<Value> {
        self.counts.manifests += 1;
        let mut m = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": self.config()?,
            "layers": layers,
        });
        if !annotations.is_empty() {
            m["annotations"] = json!(annotations);
        }
        Ok(m)
    }

    /// Directory `path` (dirtree `contents`): its document written (or, for the root,
    /// returned as bytes), or `Empty` for an empty directory below the root.
    fn dir(
        &mut self,
        contents: &str,
        meta: Meta,
        path: &str,
        depth: usize,
        root: bool,
    ) -> Result<Option<(Vec<u8>, &'static str)>> {
        match self.dir_doc(contents, meta, path, depth, root)? {
            (Doc::Written(v), media_type) => {
                let bytes = serde_json::to_vec(&v).expect("JSON values serialize");
                Ok(Some((bytes, media_type)))
            }
            (Doc::Empty(_), _) => Ok(None),
        }
    }

    fn dir_doc(
        &mut self,
        contents: &str,
        meta: Meta,
        path: &str,
        depth: usize,
        root: bool,
    ) -> Result<(Doc, &'static str)> {
        if depth > MAX_DEPTH {
            return Err(self.unencapsulable(
                path,
                format!("directories nested more than {MAX_DEPTH} deep"),
            ));
        }
        let (files, dirs) = load_dirtree(self.repo, contents, path)?;
        if !root && files.is_empty() && dirs.is_empty() {
            return Ok((Doc::Empty(meta), ""));
        }
        let join = |name: &str| {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}/{name}")
            }
        };
        let mut layers = Vec::new();
        let mut extras: Vec<Extra> = Vec::new();
        for (name, csum) in files {
            let csum = hex::encode(csum);
            let child = join(&name);
            if let Some(layer) = self.file(&name, &csum, &child, &mut extras)? {
                layers.push(layer);
            }
        }
        let mut subdirs = Vec::new();
        for (name, tree, dmeta) in dirs {
            let child = join(&name);
            let m = self.dir_meta(&hex::encode(dmeta), &child)?;
            match self.dir_doc(&hex::encode(tree), m, &child, depth + 1, false)? {
                (Doc::Empty(m), _) => {
                    extras.push(m.extra(&name, EXTRA_DIR, None).ok_or_else(|| {
                        self.unencapsulable(&child, "an xattr name is not UTF-8".into())
                    })?)
                }
                (Doc::Written(doc), media_type) => {
                    let mut desc = self.put(&doc, media_type)?;
                    desc["annotations"] = json!({ TITLE: name });
                    subdirs.push(desc);
                }
            }
        }
        extras.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut annotations = meta
            .annotations(0o755)
            .ok_or_else(|| self.unencapsulable(path, "an xattr name is not UTF-8".into()))?;
        if !extras.is_empty() {
            annotations.insert(
                ENTRIES.to_string(),
                serde_json::to_string(&extras).expect("entries serialize"),
            );
        }
        if subdirs.is_empty() && !layers.is_empty() && layers.len() <= self.max_blobs {
            let m = self.manifest(&layers, &annotations)?;
            return Ok((Doc::Written(m), MEDIA_TYPE_MANIFEST));
        }
        let mut entries = Vec::new();
        for shard in layers.chunks(self.max_blobs) {
            let m = self.manifest(shard, &BTreeMap::new())?;
            entries.push(self.put(&m, MEDIA_TYPE_MANIFEST)?);
        }
        entries.extend(subdirs);
        self.counts.indexes += 1;
        let mut index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_TYPE_INDEX,
            "artifactType": ARTIFACT_TYPE,
            "manifests": entries,
        });
        if !annotations.is_empty() {
            index["annotations"] = json!(annotations);
        }
        Ok((Doc::Written(index), MEDIA_TYPE_INDEX))
    }

    /// A regular file's layer descriptor (its blob written), or `None` for a symlink (added
    /// to `extras`).
    fn file(
        &mut self,
        name: &str,
        csum: &str,
        path: &str,
        extras: &mut Vec<Extra>,
    ) -> Result<Option<Value>> {
        let (input, info, xattrs) =
            self.repo
                .load_file(csum, gio::Cancellable::NONE)
                .map_err(Error::ostree(format!(
                    "loading /{path} (object {csum}) of {}",
                    self.rev
                )))?;
        let meta = Meta {
            mode: info.attribute_uint32("unix::mode") & 0o7777,
            uid: info.attribute_uint32("unix::uid"),
            gid: info.attribute_uint32("unix::gid"),
            xattrs: xattrs_of(xattrs.get().unwrap_or_default()),
        };
        let not_utf8 = |what: &str| self.unencapsulable(path, format!("{what} is not UTF-8"));
        if info.file_type() == gio::FileType::SymbolicLink {
            let target = info.symlink_target().unwrap_or_default();
            let target = target
                .to_str()
                .ok_or_else(|| not_utf8("the symlink target"))?
                .to_string();
            extras.push(
                meta.extra(name, EXTRA_SYMLINK, Some(target))
                    .ok_or_else(|| not_utf8("an xattr name"))?,
            );
            return Ok(None);
        }
        let mut annotations = meta
            .annotations(0o644)
            .ok_or_else(|| not_utf8("an xattr name"))?;
        annotations.insert(TITLE.to_string(), name.to_string());
        self.counts.files += 1;
        let (digest, size) = match self.blobs.get(csum) {
            Some(b) => b.clone(),
            None => {
                let mut data: Box<dyn Read> = match input {
                    Some(i) => Box::new(i.into_read()),
                    None => Box::new(std::io::empty()),
                };
                let b = self.sink.add_raw_blob(&mut data).map_err(|e| Error::Io {
                    context: format!("writing /{path} of {} as a blob", self.rev),
                    cause: std::io::Error::other(e.to_string()),
                })?;
                if self.written.insert(b.0.clone()) {
                    self.counts.blobs += 1;
                    self.counts.blob_bytes += b.1;
                }
                self.blobs.insert(csum.to_string(), b.clone());
                b
            }
        };
        Ok(Some(json!({
            "mediaType": FILE_MEDIA_TYPE,
            "digest": digest.as_str(),
            "size": size,
            "annotations": annotations,
        })))
    }
}
