//! Derived layers of an ostree native container (layers after `ostree.final-diffid`, a
//! Containerfile's `RUN` or `COPY`), applied on the rebuilt commit's tree the way ostree-ext
//! 0.15 applies them (`container image pull`), at the tree level, without a checkout.
//!
//! ostree-ext filters each derived layer's tar (`tar/write.rs`), commits it with
//! `ostree commit --tree=tar=`, checks the base commit out and checks each layer commit out
//! over it (`process_whiteouts`, `UnionFiles`), then commits the checkout. What that gives,
//! and what this module does, per top-level name of the layer:
//!
//! | layer path | lands at |
//! |---|---|
//! | `usr/…` | `usr/…` |
//! | `etc/…` | `usr/etc/…` (OSTree keeps the default `/etc` there) |
//! | `var/…` | `usr/share/factory/var/…` (copied to `/var` at boot by systemd-tmpfiles); `var/…` itself when libostree is 2024.3 or newer, as ostree-ext decides from the libostree it runs on |
//! | `run`, `tmp`, `proc`, `sys`, `dev` (API filesystems) | the entry itself, when the layer names it and the tree lacks it; everything below is dropped |
//! | anything else at the top (`opt`, `home`, `sysroot`, top-level files, top-level whiteouts) | dropped |
//!
//! Then, per directory, as libostree's checkout does:
//! - a directory that already exists keeps its mode, owner and xattrs (the layer's are used
//!   only for a directory it creates) — unlike the OCI layer rules, where the layer's entry
//!   wins;
//! - an opaque marker (`.wh..wh..opq`) removes the whole directory first, which is then
//!   created with the layer's metadata;
//! - files are visited in name order (bytewise), then subdirectories: `.wh.NAME` removes
//!   `NAME` from the tree as it is at that moment, any other file replaces what is there
//!   (a directory too). **Difference from the OCI spec** (followed here, as ostree-ext does
//!   it): a file of the same layer whose name sorts before its whiteout (names starting with
//!   a character below `.`, or `.` and a character below `w`, such as `.bashrc` and
//!   `.wh..bashrc`) is removed too; the spec says a whiteout only hides lower layers;
//! - a hardlink into `sysroot/ostree/repo/objects` of the same layer (how a build tool writes
//!   a changed base file) gives the file its content; the object store itself is dropped.
//!   ostree-ext writes such a file from the object's tar header without its PAX records, so
//!   a file written after the object (below `usr` or `var`) loses its xattrs; one written
//!   before it (below `etc`) keeps them. Tars are taken to list entries in path order, as
//!   umoci, buildah and docker write them.
//!
//! Known differences, where ostree-ext fails but ocitree applies the files the tar holds: a
//! hardlink whose target ostree-ext dropped or moved (into `opt/`, within `var/`), and a
//! hardlink into `sysroot/` whose entries have a zero mtime (ostree-ext treats links into
//! `sysroot/` specially only for changed files, by mtime, which a layer commit does not keep).
//! A directory the tar never named gets `0755 root:root` where ostree-ext's `ostree commit`
//! takes the owner of the entry below it.
//!
//! [`DerivedRules::Oci`] (`import --derived-layers oci`) follows the OCI layer rules where
//! ostree-ext departs from them: a directory the layer names takes the layer's metadata,
//! whiteouts act only on what the layers below left, and a file linked into `sysroot/` keeps
//! its xattrs. The path rules above stay (they are the format's, not a departure).
//!
//! Refused (exit 2, image and layer named), where ostree-ext fails or would write outside the
//! tree: a layer directory over a non-directory or a symlink (ostree-ext follows symlinks
//! on the host), a hardlink to a file of the image below (ostree-ext's `ostree commit` finds
//! no target), an entry OSTree cannot store (device node, FIFO) outside the dropped paths,
//! a base whose root is transient (`usr/lib/ostree/prepare-root.conf`, where ostree-ext keeps
//! other top-level directories) and a base with an SELinux policy (`usr/etc/selinux`), whose
//! labels ostree-ext computes for every file of the merged tree.

use std::collections::{HashMap, HashSet};

use ostree::{MutableTree, Repo, gio};

use crate::error::LayerError;
use crate::merge::LayerTree;
use crate::merge::apply::{err, join};
use crate::mtree::{self, Node};

/// The API filesystems ostree-ext keeps empty.
const API_FILESYSTEMS: [&str; 5] = ["run", "tmp", "proc", "sys", "dev"];
/// A directory whose children ostree-ext's checkout removes first.
const OPAQUE: &str = ".wh..wh..opq";
/// A whiteout for ostree-ext's checkout: any non-symlink whose name starts so.
const WHITEOUT_PREFIX: &str = ".wh.";
/// Where ostree-ext's tar format keeps the object store.
const SYSROOT_REPO: [&str; 3] = ["sysroot", "ostree", "repo"];

/// How derived layers are applied.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DerivedRules {
    /// As ostree-ext 0.15 applies them (`container image pull`): the default.
    #[default]
    OstreeExt,
    /// ostree-ext's path rules, but the OCI layer rules where ostree-ext departs from them.
    Oci,
}

impl std::str::FromStr for DerivedRules {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ostree-ext" => Ok(DerivedRules::OstreeExt),
            "oci" => Ok(DerivedRules::Oci),
            _ => Err(format!(
                "derived layer rules must be ostree-ext or oci, not {s:?}"
            )),
        }
    }
}

/// Where a derived layer's `var` lands: ostree-ext moves it to `usr/share/factory/var`
/// unless the libostree it runs on is 2024.3 or newer. ocitree runs on a libostree too and
/// decides the same way.
pub fn var_destination() -> &'static [&'static str] {
    if ostree::check_version(2024, 3) {
        &["var"]
    } else {
        &["usr", "share", "factory", "var"]
    }
}

/// Where a top-level entry `name` of a derived layer lands; `None` when it is dropped.
fn destination(name: &str) -> Option<Vec<String>> {
    let v = |p: &[&str]| p.iter().map(|s| s.to_string()).collect();
    match name {
        "usr" => Some(v(&["usr"])),
        "etc" => Some(v(&["usr", "etc"])),
        "var" => Some(v(var_destination())),
        n if API_FILESYSTEMS.contains(&n) => Some(vec![n.to_string()]),
        _ => None,
    }
}

/// Whether layer path `path` survives ostree-ext's filter (and so must be applied).
fn kept(path: &str) -> bool {
    let mut parts = path.split('/');
    let first = parts.next().unwrap_or_default();
    match destination(first) {
        None => false,
        Some(_) if API_FILESYSTEMS.contains(&first) => parts.next().is_none(),
        Some(_) => true,
    }
}

/// Refuses a base ostree-ext would treat in ways ocitree does not reproduce.
///
/// # Errors
/// [`LayerError::Derived`] naming the path that decides it.
pub fn check_base(root: &MutableTree) -> Result<(), LayerError> {
    let refuse = |path: &str, reason: &str| LayerError::Derived {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let at = |p: &str| {
        let parts: Vec<String> = p.split('/').map(String::from).collect();
        mtree::get_path(root, &parts).map_err(err(p, "reading the base tree"))
    };
    if at("usr/etc/selinux")?.is_some() {
        return Err(refuse(
            "usr/etc/selinux",
            "the base commit has an SELinux policy: ostree-ext labels every file of the \
             merged tree with it, which ocitree does not do; use --format plain",
        ));
    }
    if at("usr/lib/ostree/prepare-root.conf")?.is_some() {
        return Err(refuse(
            "usr/lib/ostree/prepare-root.conf",
            "the base commit configures its root (a transient root makes ostree-ext keep \
             top-level directories it otherwise drops), which ocitree does not read; use \
             --format plain",
        ));
    }
    Ok(())
}

/// Applies derived layers onto the tree of the rebuilt commit.
#[derive(Debug)]
pub struct DerivedApplier<'r> {
    repo: &'r Repo,
    root: MutableTree,
    default_meta: String,
    rules: DerivedRules,
    /// Regular files of the layer's `sysroot/ostree/repo` (by content object).
    sysroot_files: HashSet<String>,
    /// Content object → the same without xattrs.
    stripped: HashMap<String, String>,
}

impl<'r> DerivedApplier<'r> {
    /// An applier writing into `root` (the base commit's tree); `default_meta` is the dirmeta
    /// of parents it must create (`0755 root:root`, as `--tar-autocreate-parents` does).
    pub fn new(
        repo: &'r Repo,
        root: &MutableTree,
        default_meta: String,
        rules: DerivedRules,
    ) -> Self {
        DerivedApplier {
            repo,
            root: root.clone(),
            default_meta,
            rules,
            sysroot_files: HashSet::new(),
            stripped: HashMap::new(),
        }
    }

    /// The regular files below layer directory `path` (dirtree `contents`), into `out`.
    fn regular_files(
        &self,
        contents: &str,
        path: &str,
        out: &mut HashSet<String>,
    ) -> Result<(), LayerError> {
        let (files, dirs) = self.dirtree(contents, path)?;
        for (name, csum) in files {
            if !self.is_symlink(&csum, &join(path, &name))? {
                out.insert(csum);
            }
        }
        for (name, sub, _) in dirs {
            self.regular_files(&sub, &join(path, &name), out)?;
        }
        Ok(())
    }

    /// The layer's `sysroot/ostree/repo` directory, if any.
    fn sysroot_repo(&self, layer: &LayerTree) -> Result<Option<String>, LayerError> {
        let mut tree = layer.contents.clone();
        let mut path = String::new();
        for name in SYSROOT_REPO {
            let (_, dirs) = self.dirtree(&tree, &path)?;
            match dirs.into_iter().find(|(n, _, _)| n == name) {
                Some((_, c, _)) => tree = c,
                None => return Ok(None),
            }
            path = join(&path, name);
        }
        Ok(Some(tree))
    }

    /// File object `csum` without its xattrs (written when needed).
    fn without_xattrs(&mut self, csum: &str, path: &str) -> Result<String, LayerError> {
        if let Some(c) = self.stripped.get(csum) {
            return Ok(c.clone());
        }
        let (input, info, xattrs) = self
            .repo
            .load_file(csum, gio::Cancellable::NONE)
            .map_err(err(path, "reading file object"))?;
        let stripped = match (input, xattrs) {
            (Some(input), x) if x.n_children() > 0 => {
                let (stream, len) =
                    ostree::raw_file_to_content_stream(&input, &info, None, gio::Cancellable::NONE)
                        .map_err(err(path, "preparing file object"))?;
                self.repo
                    .write_content(None, &stream, len, gio::Cancellable::NONE)
                    .map_err(err(path, "writing file object"))?
                    .to_hex()
            }
            _ => csum.to_string(),
        };
        self.stripped.insert(csum.to_string(), stripped.clone());
        Ok(stripped)
    }

    /// The object a layer file `path` (object `csum`) lands as: ostree-ext gives a file
    /// hardlinked to a changed file of the layer's `sysroot/ostree/repo` (written after it,
    /// so below `usr` or `var` in a tar in path order) the object's data and owner **without
    /// its xattrs** (it copies the tar header but not the PAX records).
    fn landing(&mut self, csum: &str, path: &str) -> Result<String, LayerError> {
        let after_sysroot = path
            .split('/')
            .next()
            .is_some_and(|top| top > SYSROOT_REPO[0]);
        if self.rules == DerivedRules::OstreeExt
            && after_sysroot
            && self.sysroot_files.contains(csum)
        {
            self.without_xattrs(csum, path)
        } else {
            Ok(csum.to_string())
        }
    }

    fn dirtree(&self, csum: &str, path: &str) -> Result<mtree::DirtreeEntries, LayerError> {
        mtree::load_dirtree(self.repo, csum)
            .map_err(err(path, "loading dirtree"))?
            .ok_or_else(|| LayerError::Derived {
                path: path.to_string(),
                reason: "layer dirtree is not a dirtree".into(),
            })
    }

    fn is_symlink(&self, csum: &str, path: &str) -> Result<bool, LayerError> {
        let (info, _) = self
            .repo
            .query_file(csum, gio::Cancellable::NONE)
            .map_err(err(path, "reading file object"))?;
        Ok(info.file_type() == gio::FileType::SymbolicLink)
    }

    /// Applies one derived layer.
    ///
    /// # Errors
    /// [`LayerError::Derived`] or [`LayerError::BadHardlink`] for what is refused (see the
    /// module documentation); libostree failures.
    pub fn apply_layer(&mut self, layer: &LayerTree) -> Result<(), LayerError> {
        if let Some((path, target)) =
            (layer.links.iter().chain(&layer.early_links)).find(|(p, _)| kept(p))
        {
            return Err(LayerError::BadHardlink {
                path: path.clone(),
                target: target.clone(),
                reason: "is a file of the image below, not of this derived layer \
                         (ostree-ext refuses such a link)",
            });
        }
        for (dir, names) in &layer.skipped {
            if let Some(name) = names.iter().find(|n| kept(&join(dir, n))) {
                return Err(LayerError::Derived {
                    path: join(dir, name),
                    reason: "an entry OSTree cannot store (device node or FIFO) outside the \
                             paths ostree-ext drops"
                        .into(),
                });
            }
        }
        self.sysroot_files.clear();
        if let Some(repo_dir) = self.sysroot_repo(layer)? {
            let mut found = HashSet::new();
            self.regular_files(&repo_dir, &SYSROOT_REPO.join("/"), &mut found)?;
            self.sysroot_files = found;
        }
        let (files, dirs) = self.dirtree(&layer.contents, "")?;
        for (name, csum) in &files {
            let Some(dest) = destination(name) else {
                continue; // top-level files and whiteouts are dropped
            };
            let (parent, last) = self.parent_of(&dest, name)?;
            mtree::replace_with_file(&parent, &last, csum).map_err(err(name, "adding file"))?;
        }
        for (name, contents, meta) in &dirs {
            let Some(dest) = destination(name) else {
                continue;
            };
            let (parent, last) = self.parent_of(&dest, name)?;
            if API_FILESYSTEMS.contains(&name.as_str()) {
                // The directory itself when the tar names it; nothing below.
                if !layer.implicit.contains(name.as_str()) {
                    match mtree::get(&parent, &last).map_err(err(name, "reading tree"))? {
                        Some(Node::Dir(_)) => {}
                        Some(Node::File(_)) => return Err(not_a_dir(name)),
                        None => parent
                            .ensure_dir(&last)
                            .map_err(err(name, "adding directory"))?
                            .set_metadata_checksum(meta),
                    }
                }
                continue;
            }
            self.apply_dir(layer, &parent, &last, contents, meta, name)?;
        }
        Ok(())
    }

    /// The directory that is to hold `dest`'s last component, created (`0755 root:root`)
    /// where missing; `name` is the layer path, for errors.
    fn parent_of(&self, dest: &[String], name: &str) -> Result<(MutableTree, String), LayerError> {
        let (last, parents) = dest.split_last().expect("destinations are not empty");
        let mut cur = self.root.clone();
        for (i, p) in parents.iter().enumerate() {
            cur = match mtree::get(&cur, p).map_err(err(name, "reading tree"))? {
                Some(Node::Dir(d)) => d,
                Some(Node::File(_)) => return Err(not_a_dir(&parents[..=i].join("/"))),
                None => {
                    let d = cur.ensure_dir(p).map_err(err(name, "adding directory"))?;
                    d.set_metadata_checksum(&self.default_meta);
                    d
                }
            };
        }
        Ok((cur, last.clone()))
    }

    /// Checks the layer directory `path` (dirtree `contents`, dirmeta `meta`) out as `name`
    /// into the tree directory `parent`.
    fn apply_dir(
        &mut self,
        layer: &LayerTree,
        parent: &MutableTree,
        name: &str,
        contents: &str,
        meta: &str,
        path: &str,
    ) -> Result<(), LayerError> {
        let (files, dirs) = self.dirtree(contents, path)?;
        if files.iter().any(|(n, _)| n == OPAQUE) {
            match parent.remove(name, true) {
                Ok(()) => {}
                Err(e) if e.matches(gio::IOErrorEnum::NotFound) => {}
                Err(e) => return Err(err(path, "applying opaque marker")(e)),
            }
        }
        let dir = match mtree::get(parent, name).map_err(err(path, "reading tree"))? {
            Some(Node::Dir(d)) => {
                // ostree-ext: it keeps its metadata; OCI: the layer's entry wins.
                if self.rules == DerivedRules::Oci && !layer.implicit.contains(path) {
                    d.set_metadata_checksum(meta);
                }
                d
            }
            Some(Node::File(_)) => return Err(not_a_dir(path)),
            None => {
                let d = parent
                    .ensure_dir(name)
                    .map_err(err(path, "adding directory"))?;
                if !layer.special.contains(path) && self.sysroot_files.is_empty() {
                    // Nothing below to remove or link: the layer's subtree as it is.
                    d.fill_empty_from_dirtree(self.repo, contents, meta);
                    return Ok(());
                }
                d.set_metadata_checksum(meta);
                d
            }
        };
        // ostree-ext: files in name order, a whiteout removing what is there at that moment
        // (a file of this layer too); OCI: whiteouts first, acting on the layers below only.
        let mut files: Vec<&(String, String)> = files.iter().collect();
        if self.rules == DerivedRules::Oci {
            files.sort_by_key(|(n, _)| !n.starts_with(WHITEOUT_PREFIX));
        }
        for (fname, csum) in files {
            let child = join(path, fname);
            match fname.strip_prefix(WHITEOUT_PREFIX) {
                Some(target) if !self.is_symlink(csum, &child)? => {
                    if target.is_empty() {
                        return Err(LayerError::BadWhiteout {
                            path: child,
                            reason: "empty whiteout target",
                        });
                    }
                    match dir.remove(target, true) {
                        Ok(()) => {}
                        Err(e) if e.matches(gio::IOErrorEnum::NotFound) => {}
                        Err(e) => return Err(err(&child, "applying whiteout")(e)),
                    }
                }
                _ => {
                    let csum = self.landing(csum, &child)?;
                    mtree::replace_with_file(&dir, fname, &csum)
                        .map_err(err(&child, "adding file"))?
                }
            }
        }
        for (dname, sub_contents, sub_meta) in &dirs {
            let child = join(path, dname);
            self.apply_dir(layer, &dir, dname, sub_contents, sub_meta, &child)?;
        }
        Ok(())
    }
}

fn not_a_dir(path: &str) -> LayerError {
    LayerError::Derived {
        path: path.to_string(),
        reason: "a directory of the derived layer where the image below has a file or a \
                 symlink (ostree-ext fails there, or follows the symlink on the host)"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_names_go_where_ostree_ext_puts_them() {
        let d = |n| destination(n).map(|v| v.join("/"));
        assert_eq!(d("usr").as_deref(), Some("usr"));
        assert_eq!(d("etc").as_deref(), Some("usr/etc"));
        assert_eq!(d("var").map(|v| v.ends_with("var")), Some(true));
        assert_eq!(d("tmp").as_deref(), Some("tmp"));
        for dropped in ["opt", "sysroot", "home", ".wh.opt", "etcc", "boot"] {
            assert_eq!(d(dropped), None, "{dropped}");
        }
        assert!(kept("usr/bin/x"));
        assert!(kept("etc/x"));
        assert!(kept("run"));
        assert!(!kept("run/x"));
        assert!(!kept("sysroot/ostree/repo/objects/00/x.file"));
        assert!(!kept("opt/x"));
    }

    fn tree_with(path: &str) -> MutableTree {
        let root = MutableTree::new();
        let mut cur = root.clone();
        for c in path.split('/') {
            cur = cur.ensure_dir(c).unwrap();
        }
        root
    }

    #[test]
    fn bases_ostree_ext_treats_otherwise_are_refused() {
        assert!(check_base(&tree_with("usr/etc/motd.d")).is_ok());
        for (path, says) in [
            ("usr/etc/selinux", "SELinux"),
            ("usr/lib/ostree/prepare-root.conf", "transient root"),
        ] {
            let err = check_base(&tree_with(path)).unwrap_err().to_string();
            assert!(err.contains(path) && err.contains(says), "{err}");
        }
    }

    #[test]
    fn rules_parse() {
        assert_eq!("oci".parse::<DerivedRules>(), Ok(DerivedRules::Oci));
        assert_eq!(
            "ostree-ext".parse::<DerivedRules>(),
            Ok(DerivedRules::OstreeExt)
        );
        assert!("spec".parse::<DerivedRules>().is_err());
    }
}
