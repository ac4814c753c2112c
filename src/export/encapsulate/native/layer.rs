//! The layer tars of an ostree native container, as ostree-ext 0.15 (tar format v1) lays
//! them out, so that its importer (`container unencapsulate`, `image pull`, bootc) and a
//! container runtime both read them.
//!
//! Every layer starts with the skeleton of a `bare-split-xattrs` repository: the directories
//! `sysroot/ostree/repo/objects/00`…`ff`, `extensions`, `refs/…`, `state`, `tmp/cache` and the
//! `config` file. Then:
//!
//! - the **commit layer** (first in the image): the root directory, the skeleton, the commit
//!   object and its detached metadata (`.commitmeta`, the signatures) — ostree-ext's importer
//!   wants the commit as the first object — then every dirmeta and dirtree object, each next
//!   to the directory entry of its checkout path, depth first (a directory's `dirmeta`, its
//!   entry, its `dirtree`); `/sysroot` gets no entry of its own (the skeleton has it) and
//!   `var/tmp` (mode 1777) is added when the tree has none; then its content objects, if any;
//! - a **chunk layer**: content objects only.
//!
//! A content object is written in checksum order as: its xattrs as a `.file-xattrs` object
//! named by their SHA-256 (once per layer), a `.file-xattrs-link` hardlink to it, the `.file`
//! (content, owner, mode; a symlink for a symlink), then each checkout path of the object as a
//! hardlink to the `.file` (a zero-sized regular file as an empty file, as ostree-ext does).
//! Checkout paths under `usr/etc` are written as `etc`. Xattrs travel in the `.file-xattrs`
//! objects only, not in the tar headers; every entry has the same mtime. File data streams
//! from the repository.

use std::collections::HashSet;
use std::io::{self, Write};

use ostree::gio::prelude::*;
use ostree::{ObjectType, Repo, gio, glib};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::export::encapsulate::tar::{Entry, Meta, symlink_target, write_entry};
use crate::export::encapsulate::walk::{Kind, Node};
use crate::image::EncapsulatedCommit;
use crate::image::ostree_native::object_path;

/// The repository inside every layer.
const REPO: &str = "sysroot/ostree/repo";
/// The repository's configuration, as ostree-ext writes it.
const REPO_CONFIG: &[u8] = b"[core]\nrepo_version=1\nmode=bare-split-xattrs\n";
/// The standard subdirectories of the repository.
const REPO_SUBDIRS: [&str; 8] = [
    "extensions",
    "refs",
    "refs/heads",
    "refs/mirrors",
    "refs/remotes",
    "state",
    "tmp",
    "tmp/cache",
];

/// A content object and its checkout paths (tree paths, `usr/etc` not yet mapped).
pub(super) type Object<'n> = (&'n str, Vec<&'n str>);

/// The checkout path in the tar of tree path `path`: `usr/etc` travels as `etc`.
pub(super) fn tar_path(path: &str) -> String {
    match path.strip_prefix("usr/etc") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("etc{rest}"),
        _ => path.to_string(),
    }
}

/// The tree path of checkout path `path` in a layer (the inverse of [`tar_path`]).
pub(super) fn tree_path(path: &str) -> String {
    match path.strip_prefix("etc") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("usr/etc{rest}"),
        _ => path.to_string(),
    }
}

/// Writes the layers of one commit.
pub(super) struct LayerWriter<'r> {
    repo: &'r Repo,
    rev: &'r str,
    mtime: u64,
}

fn default_meta(mode: u32) -> Meta {
    Meta {
        mode,
        ..Meta::default()
    }
}

impl<'r> LayerWriter<'r> {
    /// A writer for commit `rev` of `repo` giving every entry `mtime`.
    pub(super) fn new(repo: &'r Repo, rev: &'r str, mtime: u64) -> Self {
        LayerWriter { repo, rev, mtime }
    }

    fn io(&self, path: &str) -> impl FnOnce(io::Error) -> Error + use<> {
        let context = format!("writing {path} of {} into a layer", self.rev);
        move |cause| Error::Io { context, cause }
    }

    fn entry(&self, out: &mut dyn Write, path: &str, m: &Meta, e: Entry<'_>) -> Result<()> {
        write_entry(out, path.as_bytes(), m, e, self.mtime).map_err(self.io(path))
    }

    fn data(&self, out: &mut dyn Write, path: &str, data: &[u8]) -> Result<()> {
        let e = Entry::File {
            size: data.len() as u64,
            data: &mut &data[..],
        };
        self.entry(out, path, &default_meta(0o644), e)
    }

    fn dir(&self, out: &mut dyn Write, path: &str, m: &Meta) -> Result<()> {
        self.entry(out, &format!("{path}/"), m, Entry::Dir)
    }

    fn skeleton(&self, out: &mut dyn Write) -> Result<()> {
        let dir = default_meta(0o755);
        for p in ["sysroot", "sysroot/ostree", REPO] {
            self.dir(out, p, &dir)?;
        }
        self.dir(out, &format!("{REPO}/objects"), &dir)?;
        for i in 0..=255u8 {
            self.dir(out, &format!("{REPO}/objects/{i:02x}"), &dir)?;
        }
        for d in REPO_SUBDIRS {
            self.dir(out, &format!("{REPO}/{d}"), &dir)?;
        }
        self.data(out, &format!("{REPO}/config"), REPO_CONFIG)
    }

    fn load_meta(&self, kind: ObjectType, csum: &str) -> Result<Vec<u8>> {
        let v = self
            .repo
            .load_variant(kind, csum)
            .map_err(Error::ostree(format!("loading {kind:?} object {csum}")))?;
        Ok(v.data_as_bytes().to_vec())
    }

    fn dir_meta(&self, csum: &str) -> Result<Meta> {
        let v = self
            .repo
            .load_variant(ObjectType::DirMeta, csum)
            .map_err(Error::ostree(format!("loading dirmeta {csum}")))?;
        let p = ostree::DirMetaParsed::from_variant(&v).map_err(|e| Error::Ostree {
            op: format!("parsing dirmeta {csum}"),
            cause: glib::Error::new(gio::IOErrorEnum::InvalidData, &e.to_string()),
        })?;
        Ok(Meta {
            uid: p.uid,
            gid: p.gid,
            mode: p.mode & 0o7777,
            xattrs: Vec::new(),
        })
    }

    /// The commit layer: structure, metadata objects, then `objects` (its share of content).
    pub(super) fn commit_layer(
        &self,
        out: &mut dyn Write,
        commit: &EncapsulatedCommit,
        nodes: &[Node],
        objects: &[Object<'_>],
    ) -> Result<()> {
        let Some(Node {
            kind: Kind::Dir {
                meta: root_meta, ..
            },
            ..
        }) = nodes.first()
        else {
            unreachable!("a walk starts at the root directory")
        };
        self.dir(out, ".", &self.dir_meta(root_meta)?)?;
        self.skeleton(out)?;
        let c = &commit.checksum;
        self.data(
            out,
            &object_path(c, "commit"),
            &commit.commit.data_as_bytes(),
        )?;
        if let Some(d) = &commit.detached {
            self.data(out, &object_path(c, "commitmeta"), &d.data_as_bytes())?;
        }
        let (mut metas, mut trees) = (HashSet::new(), HashSet::new());
        let mut var_tmp = false;
        for node in nodes {
            let Kind::Dir { meta, tree } = &node.kind else {
                continue;
            };
            if metas.insert(meta.as_str()) {
                let bytes = self.load_meta(ObjectType::DirMeta, meta)?;
                self.data(out, &object_path(meta, "dirmeta"), &bytes)?;
            }
            if !node.path.is_empty() && node.path != "sysroot" {
                self.dir(out, &tar_path(&node.path), &self.dir_meta(meta)?)?;
            }
            var_tmp |= node.path == "var/tmp";
            if trees.insert(tree.as_str()) {
                let bytes = self.load_meta(ObjectType::DirTree, tree)?;
                self.data(out, &object_path(tree, "dirtree"), &bytes)?;
            }
        }
        if !var_tmp {
            self.dir(out, "var/tmp", &default_meta(0o1777))?;
        }
        self.content(out, objects)?;
        out.write_all(&[0u8; 1024]).map_err(self.io("the end"))
    }

    /// A chunk layer: the skeleton and `objects`.
    pub(super) fn chunk_layer(&self, out: &mut dyn Write, objects: &[Object<'_>]) -> Result<()> {
        self.skeleton(out)?;
        self.content(out, objects)?;
        out.write_all(&[0u8; 1024]).map_err(self.io("the end"))
    }

    fn content(&self, out: &mut dyn Write, objects: &[Object<'_>]) -> Result<()> {
        let mut xattrs_written = HashSet::new();
        for (checksum, paths) in objects {
            let (input, info, xattrs) = self
                .repo
                .load_file(checksum, gio::Cancellable::NONE)
                .map_err(Error::ostree(format!(
                    "loading /{} (object {checksum}) of {}",
                    paths.first().copied().unwrap_or_default(),
                    self.rev
                )))?;
            let xattrs = xattrs.data_as_bytes().to_vec();
            let xattrs_csum = Digest::sha256_of(&xattrs).encoded().to_string();
            let xattrs_path = object_path(&xattrs_csum, "file-xattrs");
            if xattrs_written.insert(xattrs_csum) {
                self.data(out, &xattrs_path, &xattrs)?;
            }
            let link = Entry::Hardlink(xattrs_path.as_bytes());
            let link_path = object_path(checksum, "file-xattrs-link");
            self.entry(out, &link_path, &default_meta(0o644), link)?;
            let m = Meta {
                uid: info.attribute_uint32("unix::uid"),
                gid: info.attribute_uint32("unix::gid"),
                mode: info.attribute_uint32("unix::mode") & 0o7777,
                xattrs: Vec::new(),
            };
            let file_path = object_path(checksum, "file");
            let size = u64::try_from(info.size()).unwrap_or(0);
            let regular = info.file_type() != gio::FileType::SymbolicLink;
            if regular {
                let mut data: Box<dyn io::Read> = match input {
                    Some(i) => Box::new(i.into_read()),
                    None => Box::new(io::empty()),
                };
                let e = Entry::File {
                    size,
                    data: &mut data,
                };
                self.entry(out, &file_path, &m, e)?;
            } else {
                let target = symlink_target(self.rev, &file_path, &info)?;
                self.entry(out, &file_path, &m, Entry::Symlink(&target))?;
            }
            for p in paths {
                let e = if regular && size == 0 {
                    Entry::File {
                        size: 0,
                        data: &mut io::empty(),
                    }
                } else {
                    Entry::Hardlink(file_path.as_bytes())
                };
                self.entry(out, &tar_path(p), &m, e)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usr_etc_travels_as_etc() {
        for (tree, tar) in [
            ("usr/etc", "etc"),
            ("usr/etc/motd", "etc/motd"),
            ("usr/etcetera", "usr/etcetera"),
            ("usr/bin/sh", "usr/bin/sh"),
        ] {
            assert_eq!(tar_path(tree), tar);
            assert_eq!(tree_path(tar), tree);
        }
        assert_eq!(tree_path("etcetera"), "etcetera");
    }
}
