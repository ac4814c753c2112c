//! Writing a checked file-tree plan ([`super::read`]) into the repository: one commit per
//! manifest (its files, as the manifest says), then the tree.
//!
//! Dedupe, so that a new version reads only the blobs that changed:
//! - A manifest already imported (ref `ocitree/blob/<manifest digest>` to a commit of kind
//!   [`KIND`]) is reused whole: none of its blobs is fetched.
//! - A blob already known is not fetched: its bytes are read from the local content object
//!   that holds them. Known blobs are those of this import so far and those listed in the
//!   [`BLOBS`] metadata (blob digest → content object) of every manifest commit of the image
//!   the name pointed at before, and of every manifest commit reused.
//! - Any other blob is fetched once, verified against its digest and size while it streams
//!   into a content object.

use std::collections::HashMap;
use std::io::Read;

use ostree::gio::prelude::*;
use ostree::{MutableTree, Repo, gio, glib};

use crate::blob::VerifiedReader;
use crate::digest::Digest;
use crate::entries::{Entry, EntryKind};
use crate::error::{Error, LayerError, Result};
use crate::image::file_tree::Meta;
use crate::import::file_tree::read::{Bare, Dir, Shard};
use crate::layer::writer::ObjectWriter;
use crate::refname;
use crate::source::Source;

/// [`crate::meta::LAYER_KIND`] of a manifest commit.
pub const KIND: &str = "file-tree";
/// Commit metadata of a manifest commit: `a(ss)`, blob digest → content object checksum.
pub const BLOBS: &str = "ocitree.file-tree.blobs";

/// What the blobs cost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileTreeStats {
    /// File blobs fetched from the source.
    pub blobs_fetched: usize,
    /// Their bytes.
    pub bytes_fetched: u64,
    /// Files whose bytes came from an object already in the repository.
    pub blobs_local: usize,
    /// Manifests imported now.
    pub manifests_imported: usize,
    /// Manifests already in the repository (none of their blobs read).
    pub manifests_reused: usize,
}

/// Writes manifests and tree (the caller holds the transaction).
#[derive(Debug)]
pub struct Writer<'a> {
    repo: &'a Repo,
    src: &'a mut dyn Source,
    image: &'a str,
    objects: ObjectWriter<'a>,
    known: HashMap<Digest, String>,
    /// Manifest digest → (file name → content object).
    shards: HashMap<Digest, HashMap<String, String>>,
    /// Commits written.
    pub written: Vec<String>,
    /// Statistics.
    pub stats: FileTreeStats,
}

fn ostree_err(what: String) -> impl FnOnce(glib::Error) -> Error {
    Error::ostree(what)
}

/// The [`BLOBS`] map of manifest commit `commit`, when it is one.
fn commit_blobs(repo: &Repo, commit: &str) -> Option<Vec<(String, String)>> {
    let v = repo.load_variant(ostree::ObjectType::Commit, commit).ok()?;
    let dict = glib::VariantDict::new(Some(&v.child_value(0)));
    let kind: String = dict.lookup(crate::meta::LAYER_KIND).ok()??;
    if kind != KIND {
        return None;
    }
    dict.lookup(BLOBS).ok()?
}

impl<'a> Writer<'a> {
    /// A writer reading blobs from `src` (named `image` in errors).
    pub fn new(repo: &'a Repo, src: &'a mut dyn Source, image: &'a str) -> Self {
        Writer {
            repo,
            src,
            image,
            objects: ObjectWriter::new(repo),
            known: HashMap::new(),
            shards: HashMap::new(),
            written: Vec::new(),
            stats: FileTreeStats::default(),
        }
    }

    fn learn(&mut self, commit: &str) {
        for (blob, csum) in commit_blobs(self.repo, commit).unwrap_or_default() {
            if let Ok(d) = Digest::parse(&blob) {
                self.known.entry(d).or_insert(csum);
            }
        }
    }

    /// Makes the blobs of the manifests of `previous` (an earlier image commit) known.
    pub fn learn_image(&mut self, manifests: &[String]) -> Result<()> {
        for m in manifests {
            if let Some(c) = crate::image::refs::resolve(self.repo, &refname::blob_ref(m))? {
                self.learn(&c);
            }
        }
        Ok(())
    }

    fn layer_err(&self, shard: &Digest, cause: LayerError) -> Error {
        Error::Layer {
            image: self.image.to_string(),
            layer: shard.to_string(),
            cause,
        }
    }

    /// Reuses the manifests already imported, then lets the source download every blob no
    /// local object holds (in the order [`Writer::shard`] will read them) while the first
    /// ones are written.
    ///
    /// # Errors
    /// libostree fails, or the downloads cannot be started.
    pub fn prepare(
        &mut self,
        shards: &[&Shard],
        spool: &std::path::Path,
        progress: &crate::progress::Reporter,
    ) -> Result<()> {
        for s in shards {
            if self.shards.contains_key(&s.digest) {
                continue;
            }
            if let Some(c) =
                crate::image::refs::resolve(self.repo, &refname::blob_ref(s.digest.as_str()))?
                && let Some(files) = self.reusable(&c, s)?
            {
                self.learn(&c);
                crate::repo::partial::unmark_if_whole(self.repo, &c)?;
                self.shards.insert(s.digest.clone(), files);
                self.stats.manifests_reused += 1;
            }
        }
        let mut fetch = Vec::new();
        let mut listed = std::collections::HashSet::new();
        for s in shards
            .iter()
            .filter(|s| !self.shards.contains_key(&s.digest))
        {
            for f in &s.files {
                if !self.known.contains_key(&f.blob) && listed.insert(f.blob.clone()) {
                    fetch.push((f.blob.clone(), f.size));
                }
            }
        }
        self.src.prefetch(&fetch, spool, progress)
    }

    /// Imports manifest `s` (unless [`Writer::prepare`] reused it); sets its ref in the
    /// transaction.
    pub fn shard(&mut self, s: &Shard) -> Result<()> {
        if self.shards.contains_key(&s.digest) {
            return Ok(());
        }
        let root = MutableTree::new();
        let dirmeta = crate::layer::object::default_dirmeta(self.repo)
            .map_err(ostree_err("writing dirmeta".into()))?;
        root.set_metadata_checksum(&dirmeta);
        let mut files = HashMap::new();
        let mut blobs: Vec<(String, String)> = Vec::new();
        for f in &s.files {
            let entry = entry(&f.name, EntryKind::File, &f.meta, f.size);
            let csum = match self.known.get(&f.blob).cloned() {
                Some(local) => {
                    let (input, _, _) = self
                        .repo
                        .load_file(&local, gio::Cancellable::NONE)
                        .map_err(ostree_err(format!(
                            "loading object {local} (blob {})",
                            f.blob
                        )))?;
                    let mut data: Box<dyn Read> = match input {
                        Some(i) => Box::new(i.into_read()),
                        None => Box::new(std::io::empty()),
                    };
                    self.stats.blobs_local += 1;
                    self.objects
                        .file(&entry, &mut data)
                        .map_err(|e| self.layer_err(&s.digest, e))?
                }
                None => {
                    let blob = self.src.open_blob(&f.blob)?;
                    let mut v = VerifiedReader::new(blob, &f.blob, f.size)?;
                    let csum = self
                        .objects
                        .file(&entry, &mut v)
                        .map_err(|e| self.layer_err(&s.digest, e))?;
                    // The digest is checked by the read that reaches the end.
                    std::io::copy(&mut v, &mut std::io::sink())
                        .map_err(|e| self.layer_err(&s.digest, LayerError::Read(e)))?;
                    self.stats.blobs_fetched += 1;
                    self.stats.bytes_fetched += f.size;
                    self.known.insert(f.blob.clone(), csum.clone());
                    csum
                }
            };
            root.replace_file(&f.name, &csum)
                .map_err(ostree_err(format!("adding {}", f.name)))?;
            blobs.push((f.blob.to_string(), csum.clone()));
            files.insert(f.name.clone(), csum);
        }
        let dict = glib::VariantDict::new(None);
        dict.insert(crate::meta::LAYER_DIGEST, s.digest.as_str());
        dict.insert(crate::meta::LAYER_KIND, KIND);
        dict.insert_value(BLOBS, &blobs.to_variant());
        let subject = format!("file-tree manifest {}", s.digest);
        let commit = crate::repo::write_tree_commit(self.repo, &root, &subject, &dict, 0).map_err(
            ostree_err(format!("writing the commit of manifest {}", s.digest)),
        )?;
        self.repo
            .transaction_set_ref(None, &refname::blob_ref(s.digest.as_str()), Some(&commit));
        self.written.push(commit);
        self.shards.insert(s.digest.clone(), files);
        self.stats.manifests_imported += 1;
        Ok(())
    }

    /// The files of manifest commit `commit` when they are exactly those of `s`.
    fn reusable(&self, commit: &str, s: &Shard) -> Result<Option<HashMap<String, String>>> {
        if commit_blobs(self.repo, commit).is_none() {
            return Ok(None);
        }
        let v = self
            .repo
            .load_variant(ostree::ObjectType::Commit, commit)
            .map_err(ostree_err(format!("loading commit {commit}")))?;
        let (contents, _) = crate::repo::commit_root(&v);
        // not a dirtree: a stored commit that cannot serve, so the shard is written again
        let Some((files, dirs)) = crate::mtree::load_dirtree(self.repo, &contents)
            .map_err(ostree_err(format!("loading the tree of commit {commit}")))?
        else {
            return Ok(None);
        };
        let files: HashMap<String, String> = files.into_iter().collect();
        let same = dirs.is_empty()
            && files.len() == s.files.len()
            && s.files.iter().all(|f| files.contains_key(&f.name));
        Ok(same.then_some(files))
    }

    /// The tree of `dir` (every manifest of it written already).
    pub fn tree(&mut self, dir: &Dir, mt: &MutableTree, path: &str) -> Result<()> {
        let err = |e: LayerError| Error::InvalidImage {
            image: self.image.to_string(),
            reason: format!("file tree, /{path}: {e}"),
        };
        let m = &dir.meta;
        let dirmeta = self
            .objects
            .dirmeta(m.uid, m.gid, m.mode, &m.xattrs)
            .map_err(err)?;
        mt.set_metadata_checksum(&dirmeta);
        for s in &dir.shards {
            let files = &self.shards[&s.digest];
            for f in &s.files {
                mt.replace_file(&f.name, &files[&f.name])
                    .map_err(ostree_err(format!("adding /{path}/{}", f.name)))?;
            }
        }
        for b in &dir.bare {
            match b {
                Bare::Symlink { name, target, meta } => {
                    let e = entry(name, EntryKind::Symlink(target.clone()), meta, 0);
                    let csum =
                        self.objects
                            .symlink(&e, target)
                            .map_err(|e| Error::InvalidImage {
                                image: self.image.to_string(),
                                reason: format!("file tree, /{path}: {e}"),
                            })?;
                    mt.replace_file(name, &csum)
                        .map_err(ostree_err(format!("adding /{path}/{name}")))?;
                }
                Bare::EmptyDir { name, meta } => {
                    let sub = mt
                        .ensure_dir(name)
                        .map_err(ostree_err(format!("adding /{path}/{name}")))?;
                    let c = self
                        .objects
                        .dirmeta(meta.uid, meta.gid, meta.mode, &meta.xattrs)
                        .map_err(|e| Error::InvalidImage {
                            image: self.image.to_string(),
                            reason: format!("file tree, /{path}/{name}: {e}"),
                        })?;
                    sub.set_metadata_checksum(&c);
                }
            }
        }
        for (name, d) in &dir.subdirs {
            let sub = mt
                .ensure_dir(name)
                .map_err(ostree_err(format!("adding /{path}/{name}")))?;
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}/{name}")
            };
            self.tree(d, &sub, &child)?;
        }
        Ok(())
    }
}

fn entry(name: &str, kind: EntryKind, m: &Meta, size: u64) -> Entry {
    Entry {
        path: vec![name.to_string()],
        raw_path: name.to_string(),
        kind,
        mode: m.mode,
        uid: m.uid,
        gid: m.gid,
        xattrs: m.xattrs.clone(),
        size,
    }
}
