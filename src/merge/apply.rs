//! OCI changeset application over OSTree trees (image-spec `layer.md`).
//!
//! Per directory of a layer, in this order: an opaque marker clears the lower children, each
//! `.wh.NAME` removes the lower `NAME`, then the layer's own files and directories are added.
//! Because markers act only on what the lower layers left, entries of the same layer are never
//! hidden by that layer's markers, whatever their order in the tar.
//!
//! Other rules:
//! - a file or symlink replaces whatever was there; a directory replaces a non-directory;
//! - a directory the tar named replaces the lower directory's mode, owner and xattrs; one it did
//!   not name (implicit) keeps them;
//! - an implicit directory over a lower symlink follows the symlink **inside the root**
//!   (merged-/usr images: `lib -> usr/lib`, then `lib/x` lands in `usr/lib/x`); over a lower
//!   file it is an error, as extracting the tar fails there (`ENOTDIR`). Where the symlink
//!   leads through a path the same layer changes (a non-directory there, or a directory over
//!   a lower non-directory), or into a directory the layer also writes under its own name
//!   where the two meet, or when an entry lands on a symlink of that way, it is an error
//!   too: the tar's order, which the layer tree does not keep, decided whether the entry went
//!   through the old path or the new one, or which of two entries for one path came last;
//! - a directory the tar names only after entries below it is an error over a lower
//!   non-directory (in tar order those entries went through the lower symlink, or failed on
//!   the lower file, before the directory replaced it);
//! - a directory that replaced a non-directory of the same layer hides the lower directory's
//!   contents, as an opaque one does (in tar order the non-directory removed them);
//! - whiteout and opaque markers never create anything: below a non-directory, a missing
//!   directory or a symlink to one, they are no-ops (a directory the tar never named that
//!   holds only markers does not appear in the merged tree);
//! - an entry the layer could not store (device node, FIFO) still owns its path: what the
//!   lower layers had there is removed;
//! - AUFS metadata (`.wh..wh.plnk/`, `.wh..wh.aufs`, `.wh..wh.orph/` at the root) is hidden;
//! - hardlinks to lower-layer files take the file the lower layers left at the target path;
//!   so does a hardlink written before a target of the same layer when the lower layers have
//!   a file there (extracted in tar order, the link is made before the target is replaced).
//!
//! # Security
//! Symlinks are resolved against the merged tree itself, never the host: absolute targets
//! restart at the tree's root and `..` stops at it. Resolution gives up after
//! [`MAX_SYMLINK_HOPS`] links.

use std::collections::{HashMap, HashSet, VecDeque};

use ostree::{MutableTree, Repo, gio, glib};

use crate::entries::whiteout::{self, Whiteout};
use crate::error::LayerError;
use crate::merge::LayerTree;
use crate::mtree::{self, Node};

pub use crate::mtree::MAX_SYMLINK_HOPS;

type Dirtree = (Vec<(String, String)>, Vec<(String, String, String)>);

/// Applies layers onto one merged tree.
#[derive(Debug)]
pub struct Merger<'r> {
    repo: &'r Repo,
    root: MutableTree,
    default_meta: String,
    symlinks: HashMap<String, Option<String>>,
    /// Real paths where the layer being applied put a directory over a lower non-directory.
    pub(super) replaced_lower: HashSet<String>,
    /// Real paths a resolution of the layer being applied passed after following a symlink,
    /// with the path it resolved.
    pub(super) passed: Vec<(String, String)>,
    /// Real paths the layer being applied wrote (or removed) in a directory it reached through
    /// a lower symlink, with the layer path that did.
    pub(super) aliased: HashMap<String, String>,
}

/// A directory of the merged tree found by [`Merger::resolve_dir`].
struct Resolved {
    dir: MutableTree,
    /// Its real path.
    path: Vec<String>,
    /// The real paths of the symlinks followed on the way.
    route: Vec<Vec<String>>,
}

/// The error of libostree operation `op` on `path` of a layer.
pub(crate) fn err<'a>(
    path: &'a str,
    op: &'static str,
) -> impl FnOnce(glib::Error) -> LayerError + 'a {
    move |cause| LayerError::Ostree {
        path: path.to_string(),
        op,
        cause,
    }
}

/// `dir/name`, or `name` at the root (`dir` empty).
pub(crate) fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl<'r> Merger<'r> {
    /// A merger writing into `root`; `default_meta` is the dirmeta of directories it must create.
    pub fn new(repo: &'r Repo, root: &MutableTree, default_meta: String) -> Self {
        Merger {
            repo,
            root: root.clone(),
            default_meta,
            symlinks: HashMap::new(),
            replaced_lower: HashSet::new(),
            passed: Vec::new(),
            aliased: HashMap::new(),
        }
    }

    pub(super) fn dirtree(&self, csum: &str, path: &str) -> Result<Dirtree, LayerError> {
        mtree::load_dirtree(self.repo, csum)
            .map_err(err(path, "loading dirtree"))?
            .ok_or_else(|| LayerError::Ostree {
                path: path.to_string(),
                op: "parsing dirtree",
                cause: glib::Error::new(gio::IOErrorEnum::InvalidData, "not a dirtree"),
            })
    }

    /// The target of a content object if it is a symlink.
    pub(super) fn symlink_target(&mut self, csum: &str) -> Result<Option<String>, LayerError> {
        if let Some(t) = self.symlinks.get(csum) {
            return Ok(t.clone());
        }
        let (info, _) = self
            .repo
            .query_file(csum, gio::Cancellable::NONE)
            .map_err(err("", "reading file object"))?;
        let target = (info.file_type() == gio::FileType::SymbolicLink)
            .then(|| {
                info.symlink_target()
                    .map(|p| p.to_string_lossy().into_owned())
            })
            .flatten();
        self.symlinks.insert(csum.to_string(), target.clone());
        Ok(target)
    }

    /// Applies one layer.
    ///
    /// # Errors
    /// libostree failures, unresolvable symlinked parents, hardlinks to nothing.
    pub fn apply_layer(&mut self, layer: &LayerTree) -> Result<(), LayerError> {
        self.replaced_lower.clear();
        self.passed.clear();
        self.aliased.clear();
        if !layer.implicit.contains("") {
            self.root.set_metadata_checksum(&layer.meta);
        }
        let root = self.root.clone();
        // What the lower layers have at the targets of forward links, before this layer.
        let mut lower_targets = Vec::new();
        for (path, target) in &layer.forward_links {
            let comps: Vec<String> = target.split('/').map(String::from).collect();
            if let Some(Node::File(csum)) =
                mtree::get_path(&root, &comps).map_err(err(path, "reading merged tree"))?
            {
                lower_targets.push((path, csum));
            }
        }
        // What early links take: the lower layers' file, before this layer's directory.
        let mut early = Vec::with_capacity(layer.early_links.len());
        for (path, target) in &layer.early_links {
            let comps: Vec<String> = target.split('/').map(String::from).collect();
            match mtree::get_path(&root, &comps).map_err(err(path, "reading merged tree"))? {
                Some(Node::File(csum)) => early.push((path, csum)),
                _ => {
                    return Err(LayerError::BadHardlink {
                        path: path.clone(),
                        target: target.clone(),
                        reason: "is a directory the layer wrote after the link, and the layers \
                                 below have no file there",
                    });
                }
            }
        }
        // A path named only after entries below it, over a lower non-directory: in tar order
        // those entries went through it (or failed), perhaps before a marker of this layer
        // (here, or opaque above it) removed it: looked up before the layer applies. Below a
        // directory that replaced a non-directory of this layer, the lower one was gone first.
        let mut late: Vec<&String> = (layer.late_dirs.iter())
            .filter(|p| {
                !layer
                    .replaced_dirs
                    .iter()
                    .any(|d| p.starts_with(&format!("{d}/")))
            })
            .collect();
        late.sort();
        for path in late {
            let mut comps: VecDeque<String> = path.split('/').map(String::from).collect();
            let name = comps.pop_back().expect("split yields one part");
            if let Some(Resolved { dir, .. }) =
                self.resolve_dir(Vec::new(), comps, path, false, None)?
                && let Some(Node::File(lower)) =
                    mtree::get(&dir, &name).map_err(err(path, "reading merged tree"))?
            {
                return Err(self.late_over_lower(path.clone(), &lower)?);
            }
        }
        self.apply_dir(layer, &root, &[], &layer.contents, "")?;
        for (path, csum) in early {
            self.place_link(layer, path, &csum)?;
        }
        for (path, target) in &layer.links {
            self.link_lower(layer, path, target)?;
        }
        for (path, csum) in lower_targets {
            self.place_link(layer, path, &csum)?;
        }
        // After the hardlinks too: their ways through lower symlinks count.
        self.check_aliases()
    }

    /// Applies the layer directory `path` (dirtree `contents`) onto the merged directory
    /// `merged`, found at `merged_path`.
    fn apply_dir(
        &mut self,
        layer: &LayerTree,
        merged: &MutableTree,
        merged_path: &[String],
        contents: &str,
        path: &str,
    ) -> Result<(), LayerError> {
        let (files, dirs) = self.dirtree(contents, path)?;
        if layer.replaced_dirs.contains(path)
            || files
                .iter()
                .any(|(n, _)| whiteout::classify(n) == Whiteout::Opaque)
        {
            mtree::clear(merged).map_err(err(path, "applying opaque marker"))?;
        }
        // Reached through a lower symlink: what lands here is recorded ([`Merger::alias`]).
        let real = merged_path.join("/");
        if real != path {
            for (name, _) in &files {
                let name = match whiteout::classify(name) {
                    Whiteout::None => name.as_str(),
                    Whiteout::Remove(target) => target,
                    _ => continue,
                };
                self.alias(join(&real, name), join(path, name))?;
            }
            for (name, _, _) in &dirs {
                let child = join(path, name);
                if !layer.implicit.contains(&child) {
                    self.alias(join(&real, name), child)?;
                }
            }
        }
        for (name, _) in &files {
            if let Whiteout::Remove(target) = whiteout::classify(name) {
                merged
                    .remove(target, true)
                    .map_err(err(path, "applying whiteout"))?;
            }
        }
        // Entries the layer could not store still own their path: the lower one goes.
        for name in layer.skipped.get(path).into_iter().flatten() {
            merged
                .remove(name, true)
                .map_err(err(path, "removing the path of a skipped entry"))?;
        }
        for (name, csum) in &files {
            if whiteout::classify(name) == Whiteout::None {
                mtree::replace_with_file(merged, name, csum).map_err(err(path, "adding file"))?;
            }
        }
        for (name, sub_contents, sub_meta) in &dirs {
            // AUFS metadata directories are hidden with all they hold
            if whiteout::classify(name) != Whiteout::None {
                continue;
            }
            let child = join(path, name);
            let mut child_merged_path = merged_path.to_vec();
            child_merged_path.push(name.clone());
            let implicit = layer.implicit.contains(&child);
            // A directory the tar never named that holds only whiteout markers creates nothing:
            // markers act on what exists, or are no-ops.
            let markers_only = implicit
                && layer.special.contains(&child)
                && !self.has_content(layer, sub_contents, &child)?;
            let existing = mtree::get(merged, name).map_err(err(&child, "reading merged tree"))?;
            let target = match existing {
                Some(Node::Dir(d)) => {
                    if !implicit {
                        d.set_metadata_checksum(sub_meta);
                    }
                    d
                }
                Some(Node::File(csum)) if implicit => {
                    if self.symlink_target(&csum)?.is_some() {
                        let rest = VecDeque::from([name.clone()]);
                        let found = self.resolve_dir(
                            merged_path.to_vec(),
                            rest,
                            &child,
                            !markers_only,
                            Some(layer),
                        )?;
                        let Some(Resolved {
                            dir: d,
                            path: p,
                            route,
                        }) = found
                        else {
                            continue; // markers below a symlink to nothing: no-op
                        };
                        self.check_way(layer, (&child, sub_contents), &p, &route, markers_only)?;
                        child_merged_path = p;
                        d
                    } else if markers_only {
                        continue; // only whiteouts below a non-directory: nothing to delete
                    } else {
                        return Err(LayerError::EntryConflict {
                            path: child,
                            reason: "the layer has entries below it without creating it as a \
                                     directory, and a lower layer has a file there"
                                .into(),
                        });
                    }
                }
                None if markers_only => continue, // nothing below to delete
                _ => {
                    if existing.is_some() {
                        self.replaced_lower.insert(child_merged_path.join("/"));
                    }
                    let d = mtree::replace_with_dir(merged, name)
                        .map_err(err(&child, "adding directory"))?;
                    if !layer.special.contains(&child) {
                        d.fill_empty_from_dirtree(self.repo, sub_contents, sub_meta);
                        continue;
                    }
                    d.set_metadata_checksum(sub_meta);
                    d
                }
            };
            self.apply_dir(layer, &target, &child_merged_path, sub_contents, &child)?;
        }
        Ok(())
    }

    /// Whether a layer subtree holds anything but whiteout markers (and AUFS metadata):
    /// files, or entries the dirtree does not show (skipped entries, lower-layer hardlinks).
    fn has_content(
        &self,
        layer: &LayerTree,
        contents: &str,
        path: &str,
    ) -> Result<bool, LayerError> {
        if layer.content_dirs.contains(path) {
            return Ok(true);
        }
        let (files, dirs) = self.dirtree(contents, path)?;
        if files
            .iter()
            .any(|(n, _)| whiteout::classify(n) == Whiteout::None)
        {
            return Ok(true);
        }
        for (name, c, _) in &dirs {
            if whiteout::classify(name) != Whiteout::None {
                continue;
            }
            let child = join(path, name);
            // a directory the tar named is content; an implicit one only if what it holds is
            if !layer.implicit.contains(&child) || self.has_content(layer, c, &child)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Resolves `rest` below the merged directory `start`, following symlinks inside the root;
    /// returns the directory and its real path. Missing directories are created when `create`
    /// says so; otherwise a missing directory or a file on the way gives `None`. A symlink loop
    /// on the way is an error either way.
    ///
    /// With `layer` (the layer being applied), a path the resolution reaches after following a
    /// symlink must be one the layer leaves as it finds it, or makes a directory where there
    /// was nothing ([`Merger::order_dependent`]): otherwise where the entry lands depends on
    /// whether the tar wrote it before or after the layer's own entry there.
    fn resolve_dir(
        &mut self,
        start: Vec<String>,
        rest: VecDeque<String>,
        for_path: &str,
        create: bool,
        layer: Option<&LayerTree>,
    ) -> Result<Option<Resolved>, LayerError> {
        let fail = |code, msg: &str| LayerError::Ostree {
            path: for_path.to_string(),
            op: "resolving parent directory",
            cause: glib::Error::new(code, msg),
        };
        let root = self.root.clone();
        let mut followed = false;
        let mut route = Vec::new();
        let mut passed = Vec::new();
        let resolved = mtree::resolve_in_root(start, rest, |p| {
            let node = mtree::get_path(&root, p).map_err(err(for_path, "reading merged tree"))?;
            if followed && layer.is_some() {
                passed.push(p.join("/"));
            }
            if let (true, Some(layer)) = (followed, layer)
                && let Some(what) = self.order_dependent(layer, p, node.as_ref())?
            {
                return Err(LayerError::EntryConflict {
                    path: for_path.to_string(),
                    reason: format!(
                        "the layer writes below it through a lower layer's symlink that leads \
                         through {:?}, where the same layer puts {what}: where the entry lands \
                         depends on which of the two the tar has first",
                        p.join("/")
                    ),
                });
            }
            let target = match node {
                Some(Node::File(csum)) => self.symlink_target(&csum)?,
                _ => None,
            };
            if target.is_some() {
                followed = true;
                route.push(p.to_vec());
            }
            Ok(target)
        })?;
        (self.passed).extend(passed.into_iter().map(|p| (p, for_path.to_string())));
        // A loop is an error even where nothing is created: extracting the tar fails there
        // (`ELOOP`), for a marker below it as for content.
        let Some(resolved) = resolved else {
            return Err(fail(
                gio::IOErrorEnum::TooManyLinks,
                "too many levels of symbolic links",
            ));
        };
        let mut cur = root;
        for (i, c) in resolved.iter().enumerate() {
            cur = match mtree::get(&cur, c).map_err(err(for_path, "reading merged tree"))? {
                Some(Node::Dir(d)) => d,
                _ if !create => return Ok(None),
                Some(Node::File(_)) => {
                    let msg = format!("/{} is a file, not a directory", resolved[..=i].join("/"));
                    return Err(fail(gio::IOErrorEnum::NotDirectory, &msg));
                }
                None => {
                    let d = cur
                        .ensure_dir(c)
                        .map_err(err(for_path, "creating directory"))?;
                    d.set_metadata_checksum(&self.default_meta);
                    d
                }
            };
        }
        Ok(Some(Resolved {
            dir: cur,
            path: resolved,
            route,
        }))
    }

    /// Places a hardlink to a file the lower layers left at `target`.
    fn link_lower(
        &mut self,
        layer: &LayerTree,
        path: &str,
        target: &str,
    ) -> Result<(), LayerError> {
        let target_comps: Vec<String> = target.split('/').map(String::from).collect();
        let csum = match mtree::get_path(&self.root, &target_comps)
            .map_err(err(path, "reading merged tree"))?
        {
            Some(Node::File(c)) => c,
            Some(Node::Dir(_)) => {
                return Err(LayerError::BadHardlink {
                    path: path.into(),
                    target: target.into(),
                    reason: "is a directory",
                });
            }
            None => {
                // the lower layers' file may be gone because this layer's whiteouts hide it
                let hidden = layer.hidden.iter().any(|h| {
                    h.is_empty()
                        || target == h
                        || target
                            .strip_prefix(h.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                });
                return Err(LayerError::BadHardlink {
                    path: path.into(),
                    target: target.into(),
                    reason: if hidden {
                        "is removed by a whiteout of this layer (whiteouts apply before the \
                         layer's entries), and this layer does not write it"
                    } else {
                        "does not exist in this layer or the layers below"
                    },
                });
            }
        };
        self.place_link(layer, path, &csum)
    }

    /// Puts file object `csum` at `path` (a hardlink of `layer`), creating missing parents.
    fn place_link(&mut self, layer: &LayerTree, path: &str, csum: &str) -> Result<(), LayerError> {
        let mut comps: VecDeque<String> = path.split('/').map(String::from).collect();
        let name = comps.pop_back().expect("split yields one part");
        let Resolved { dir, .. } = self
            .resolve_dir(Vec::new(), comps, path, true, Some(layer))?
            .expect("created when missing");
        mtree::replace_with_file(&dir, &name, csum).map_err(err(path, "adding hardlink"))
    }
}
