//! Reading a file-tree artifact's documents (never a file blob) into a checked plan: every
//! name one path component and unique in its directory, every mode, owner and xattr valid,
//! nesting at most [`MAX_DEPTH`] deep, no document among its own ancestors, at most
//! [`MAX_DOCUMENTS`] documents. Anything else is an error naming the image and the path,
//! found before anything is written.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::file_tree::{
    ENTRIES, EXTRA_DIR, EXTRA_SYMLINK, Extra, MAX_DEPTH, MAX_DOCUMENTS, Meta, TITLE, bad_name,
};
use crate::resolve::read_blob;
use crate::source::Source;
use crate::spec::Descriptor;

/// One regular file: its blob and metadata.
#[derive(Clone, Debug)]
pub struct File {
    /// Its name.
    pub name: String,
    /// The blob holding its bytes.
    pub blob: Digest,
    /// Its size.
    pub size: u64,
    /// Owner, mode, xattrs.
    pub meta: Meta,
}

/// The files of one manifest.
#[derive(Clone, Debug)]
pub struct Shard {
    /// The manifest's digest.
    pub digest: Digest,
    /// Its files, in layer order.
    pub files: Vec<File>,
}

/// An entry without a blob.
#[derive(Clone, Debug)]
pub enum Bare {
    /// A symlink to `target`.
    Symlink {
        /// Its name.
        name: String,
        /// Its target, as written.
        target: String,
        /// Owner, xattrs (the mode of an OSTree symlink is always 0777).
        meta: Meta,
    },
    /// An empty directory.
    EmptyDir {
        /// Its name.
        name: String,
        /// Owner, mode, xattrs.
        meta: Meta,
    },
}

/// One directory of the tree.
#[derive(Clone, Debug, Default)]
pub struct Dir {
    /// Owner, mode, xattrs.
    pub meta: Meta,
    /// Its files, manifest by manifest.
    pub shards: Vec<Shard>,
    /// Symlinks and empty directories.
    pub bare: Vec<Bare>,
    /// Non-empty subdirectories, by name.
    pub subdirs: Vec<(String, Dir)>,
}

impl Dir {
    /// Every shard of the tree, depth first.
    pub fn all_shards<'a>(&'a self, out: &mut Vec<&'a Shard>) {
        out.extend(&self.shards);
        for (_, d) in &self.subdirs {
            d.all_shards(out);
        }
    }
}

/// The fields of an index or manifest this reader uses.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Reads the documents of one file tree from a source.
#[derive(Debug)]
pub struct Reader<'a> {
    src: &'a mut dyn Source,
    image: &'a str,
    docs: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `src`, named `image` in errors.
    pub fn new(src: &'a mut dyn Source, image: &'a str) -> Self {
        Reader {
            src,
            image,
            docs: 0,
        }
    }

    fn err(&self, path: &str, reason: impl std::fmt::Display) -> Error {
        Error::InvalidImage {
            image: self.image.to_string(),
            reason: format!("file tree, /{path}: {reason}"),
        }
    }

    fn doc(&mut self, desc: &Descriptor, path: &str) -> Result<Doc> {
        self.docs += 1;
        if self.docs > MAX_DOCUMENTS {
            return Err(self.err(path, format!("more than {MAX_DOCUMENTS} documents")));
        }
        let bytes = read_blob(self.src, self.image, desc)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| self.err(path, format!("document {}: {e}", desc.digest_str)))
    }

    /// The directory that document `desc` is, at `path` (`""`: the root).
    ///
    /// # Errors
    /// Hostile or malformed input (see the module documentation), or reading fails.
    pub fn dir(&mut self, desc: &Descriptor, path: &str) -> Result<Dir> {
        let mut stack = Vec::new();
        self.dir_at(desc, path, 0, &mut stack)
    }

    fn dir_at(
        &mut self,
        desc: &Descriptor,
        path: &str,
        depth: usize,
        stack: &mut Vec<Digest>,
    ) -> Result<Dir> {
        if depth > MAX_DEPTH {
            return Err(self.err(
                path,
                format!("directories nested more than {MAX_DEPTH} deep"),
            ));
        }
        let digest = desc.digest()?;
        if stack.contains(&digest) {
            return Err(self.err(path, format!("document {digest} contains itself (a cycle)")));
        }
        let doc = self.doc(desc, path)?;
        let meta =
            Meta::from_annotations(&doc.annotations, 0o755).map_err(|e| self.err(path, e))?;
        let mut dir = Dir {
            meta,
            ..Dir::default()
        };
        let mut names = HashSet::new();
        dir.bare = self.bare(&doc.annotations, path, &mut names)?;
        match (doc.manifests, doc.layers) {
            (Some(entries), None) => {
                stack.push(digest);
                for child in entries {
                    match child.annotations.get(TITLE) {
                        Some(name) => {
                            let sub = self.name(path, name, &mut names)?;
                            let d = self.dir_at(&child, &sub, depth + 1, stack)?;
                            dir.subdirs.push((name.clone(), d));
                        }
                        None if child.is_index() => {
                            return Err(self.err(
                                path,
                                format!("index entry {} has no title (only file manifests may be untitled)", child.digest_str),
                            ));
                        }
                        None => {
                            let m = self.doc(&child, path)?;
                            let Some(layers) = m.layers else {
                                return Err(self
                                    .err(path, format!("{} is not a manifest", child.digest_str)));
                            };
                            dir.shards.push(self.shard(
                                child.digest()?,
                                &layers,
                                path,
                                &mut names,
                            )?);
                        }
                    }
                }
                stack.pop();
            }
            (None, Some(layers)) => dir
                .shards
                .push(self.shard(digest, &layers, path, &mut names)?),
            _ => {
                return Err(self.err(
                    path,
                    format!(
                        "document {} is neither an index nor a manifest",
                        desc.digest_str
                    ),
                ));
            }
        }
        Ok(dir)
    }

    /// `name` checked and recorded; returns the child's path.
    fn name(&self, path: &str, name: &str, names: &mut HashSet<String>) -> Result<String> {
        let shown = crate::error::printable(name);
        if let Some(why) = bad_name(name) {
            return Err(self.err(path, format!("title {shown:?} is {why}")));
        }
        if !names.insert(name.to_string()) {
            return Err(self.err(path, format!("{shown:?} appears twice in the directory")));
        }
        Ok(if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}/{name}")
        })
    }

    fn shard(
        &self,
        digest: Digest,
        layers: &[Descriptor],
        path: &str,
        names: &mut HashSet<String>,
    ) -> Result<Shard> {
        let mut files = Vec::with_capacity(layers.len());
        for l in layers {
            let name = l.annotations.get(TITLE).ok_or_else(|| {
                self.err(
                    path,
                    format!("layer {} of manifest {digest} has no title", l.digest_str),
                )
            })?;
            let child = self.name(path, name, names)?;
            let meta =
                Meta::from_annotations(&l.annotations, 0o644).map_err(|e| self.err(&child, e))?;
            files.push(File {
                name: name.clone(),
                blob: l.digest()?,
                size: l.size,
                meta,
            });
        }
        Ok(Shard { digest, files })
    }

    fn bare(
        &self,
        annotations: &BTreeMap<String, String>,
        path: &str,
        names: &mut HashSet<String>,
    ) -> Result<Vec<Bare>> {
        let Some(text) = annotations.get(ENTRIES) else {
            return Ok(Vec::new());
        };
        let list: Vec<Extra> =
            serde_json::from_str(text).map_err(|e| self.err(path, format!("{ENTRIES}: {e}")))?;
        let mut out = Vec::with_capacity(list.len());
        for e in list {
            let child = self.name(path, &e.name, names)?;
            let is_link = e.kind == EXTRA_SYMLINK;
            let default_mode = if is_link { 0o777 } else { 0o755 };
            let meta = Meta::parse(
                e.mode.as_deref(),
                e.owner.as_deref(),
                e.xattrs.as_ref(),
                default_mode,
            )
            .map_err(|r| self.err(&child, r))?;
            out.push(match (e.kind.as_str(), e.target) {
                (EXTRA_SYMLINK, Some(target)) if !target.is_empty() && !target.contains('\0') => {
                    Bare::Symlink {
                        name: e.name,
                        target,
                        meta,
                    }
                }
                (EXTRA_DIR, None) => Bare::EmptyDir { name: e.name, meta },
                (kind, _) => {
                    return Err(self.err(
                        &child,
                        format!(
                            "entry of type {:?}: expected \"symlink\" with a non-empty target or \"dir\" without one",
                            crate::error::printable(kind)
                        ),
                    ));
                }
            });
        }
        Ok(out)
    }
}
