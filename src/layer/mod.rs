//! Tar entries → one layer commit.
//!
//! The layer commit holds the layer's files exactly as the tar had them, whiteout markers
//! included as plain files, so a layer can be reconstructed and shared by every image that
//! uses it. What OSTree's tree cannot express is recorded in the commit metadata (see
//! [`crate::meta`]): which directories the tar never named, hardlinks to lower layers, and the
//! entries that were skipped (their paths still belong to this layer: the merge removes what
//! lower layers had there). A GNU sparse member is stored as the expanded file, its map kept
//! in the tar-split. The commit's timestamp is 0, so the same layer gives the same
//! commit checksum in every repository.
//!
//! Here: the tar read entry by entry into the layer tree; in `order`, what an entry does to
//! the same layer's entries before it; in `commit`, the tree and its metadata written.

pub mod archive_object;
mod commit;
#[cfg(feature = "exact-gzip")]
pub mod exact_gzip;
pub mod file;
pub mod object;
mod order;
pub mod rules;
pub mod skipped;
pub mod sniff;
pub mod stream;
pub mod tarsplit;
pub mod treated;
pub mod write_queue;
pub mod writer;

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};

use ostree::{MutableTree, Repo, glib};

use crate::entries::sparse::{self, Sparse};
use crate::entries::whiteout::{self, Whiteout};
use crate::entries::{self, Entry, EntryKind, path};
use crate::error::LayerError;
use crate::mtree::{self, Node};
pub use skipped::{OnSpecial, Skipped};
use writer::ObjectWriter;

/// Identity of the blob a layer commit is made from.
#[derive(Clone, Debug)]
pub struct LayerSource {
    /// Blob digest.
    pub digest: String,
    /// diff_id (digest of the uncompressed tar).
    pub diff_id: String,
    /// Blob media type.
    pub media_type: String,
}

/// Builds one layer commit from a tar stream.
#[derive(Debug)]
pub struct LayerBuilder<'r> {
    repo: &'r Repo,
    objects: ObjectWriter<'r>,
    root: MutableTree,
    default_dirmeta: String,
    implicit: BTreeSet<String>,
    symlinks: HashMap<String, String>,
    whiteouts: Vec<String>,
    pending_links: Vec<(Entry, Vec<String>)>,
    forward_links: Vec<(String, String)>,
    early_links: Vec<(String, String)>,
    replaced_dirs: BTreeSet<String>,
    late_dirs: BTreeSet<String>,
    tar_split: Vec<u8>,
    exact_gzip: Option<(Vec<u8>, (u32, String))>,
    external_links: Vec<(String, String)>,
    skipped: Vec<Skipped>,
    on_special: OnSpecial,
    layer: String,
}

fn ostree_err<'a>(
    path: &'a [String],
    op: &'static str,
) -> impl FnOnce(glib::Error) -> LayerError + 'a {
    move |cause| LayerError::Ostree {
        path: path::join(path),
        op,
        cause,
    }
}

impl<'r> LayerBuilder<'r> {
    /// Starts an empty layer tree. `layer` names the blob in reports.
    ///
    /// # Errors
    /// libostree fails to write the default dirmeta.
    pub fn new(repo: &'r Repo, layer: &str, on_special: OnSpecial) -> Result<Self, LayerError> {
        let default_dirmeta =
            object::default_dirmeta(repo).map_err(|cause| LayerError::Ostree {
                path: String::new(),
                op: "writing dirmeta",
                cause,
            })?;
        let root = MutableTree::new();
        root.set_metadata_checksum(&default_dirmeta);
        let mut implicit = BTreeSet::new();
        implicit.insert(String::new());
        Ok(LayerBuilder {
            repo,
            objects: ObjectWriter::new(repo),
            root,
            default_dirmeta,
            implicit,
            symlinks: HashMap::new(),
            whiteouts: Vec::new(),
            pending_links: Vec::new(),
            forward_links: Vec::new(),
            early_links: Vec::new(),
            replaced_dirs: BTreeSet::new(),
            late_dirs: BTreeSet::new(),
            tar_split: Vec::new(),
            exact_gzip: None,
            external_links: Vec::new(),
            skipped: Vec::new(),
            on_special,
            layer: layer.to_string(),
        })
    }

    /// Hands small file objects to `queue`'s writer thread while [`LayerBuilder::add_tar`]
    /// runs; [`LayerBuilder::take_queue`] gives it back to finish before the commit.
    pub fn set_queue(&mut self, queue: write_queue::WriteQueue) {
        self.objects.set_queue(queue);
    }

    /// Stops using the writer thread (see [`LayerBuilder::set_queue`]).
    pub fn take_queue(&mut self) -> Option<write_queue::WriteQueue> {
        self.objects.take_queue()
    }

    /// Reads every entry of a tar stream into the tree, then drains the stream to its end
    /// (so that digests computed below see every byte).
    ///
    /// # Errors
    /// Any [`LayerError`]: bad entries, short streams, libostree failures.
    pub fn add_tar<R: Read>(&mut self, stream: R) -> Result<(), LayerError> {
        // The tap sits below BlockPad: it records the stream as it was, padding never added.
        let (tap, mut rec) = tarsplit::tap(stream).map_err(LayerError::Read)?;
        let (pad, gate) = entries::pad::BlockPad::new(tap);
        let mut archive = tar::Archive::new(pad);
        // The entry being read, for errors; after it is done, the last complete one.
        let mut current = String::new();
        let truncated = |e: LayerError, current: &str| match (e, gate.ended_at()) {
            (LayerError::Read(_), Some((at, in_data))) => {
                let reason = if in_data {
                    format!(
                        "the stream ends at byte {at}, inside this entry's data (which ends at byte {})",
                        gate.data_end()
                    )
                } else if current.is_empty() {
                    format!(
                        "the stream ends at byte {at}, inside the first header or extension record"
                    )
                } else {
                    format!(
                        "the stream ends at byte {at}, inside the header or extension record after this entry"
                    )
                };
                LayerError::Truncated {
                    path: current.to_string(),
                    reason,
                }
            }
            (e, _) => e,
        };
        for entry in archive.entries().map_err(LayerError::Read)? {
            let mut entry = entry.map_err(|e| truncated(LayerError::Read(e), &current))?;
            gate.set_data_end(entry.raw_file_position() + entry.size());
            current = entries::path::lossy(&entry.path_bytes());
            let pax = rec.extension_data(entry.raw_header_position());
            let Some((e, sparse)) = entries::parse_sparse(&mut entry, pax.as_deref())? else {
                continue;
            };
            if let Some(sparse) = sparse {
                self.add_sparse(e, sparse, &mut entry, &mut rec, &gate)
                    .map_err(|e| truncated(e, &current))?;
                continue;
            }
            // File data becomes an object and a reference; everything else is kept as bytes.
            let payload = e.kind == EntryKind::File
                && e.size > 0
                && e.path
                    .last()
                    .is_some_and(|n| whiteout::classify(n) == Whiteout::None);
            let size = e.size;
            if payload {
                rec.begin_payload(entry.raw_file_position(), size)
                    .map_err(LayerError::Read)?;
            }
            let csum = self
                .add_entry(e, &mut entry)
                .map_err(|e| truncated(e, &current))?;
            if let (true, Some(csum)) = (payload, csum) {
                rec.end_payload(size, &csum).map_err(LayerError::Read)?;
            }
        }
        gate.finish();
        rec.entries_done();
        entries::pad::drain_zeros(archive.into_inner())?;
        self.tar_split = rec.finish().map_err(LayerError::Read)?;
        Ok(())
    }

    /// Adds a GNU sparse member as the expanded file; the tar-split keeps its map, so that
    /// export stores the same segments again.
    fn add_sparse<R: Read>(
        &mut self,
        e: Entry,
        mut sp: Sparse,
        entry: &mut tar::Entry<'_, R>,
        rec: &mut tarsplit::Recorder,
        gate: &entries::pad::Gate,
    ) -> Result<(), LayerError> {
        let bad = |why: String| LayerError::UnsupportedEntry {
            path: e.raw_path.clone(),
            kind: format!("GNU sparse file ({why})"),
        };
        let mut start = entry.raw_file_position();
        let mut stored = entry.size();
        match sp.format {
            sparse::Format::OldGnu => {
                // tar-rs read the extension blocks and expands the data itself
                let mut header = [0u8; 512];
                header.copy_from_slice(entry.header().as_bytes());
                let at = entry.raw_header_position();
                let (map, ext) =
                    sparse::old_gnu_map(&header, &mut |i| rec.kept(at + 512 * (i + 1), 512))
                        .map_err(bad)?;
                sp.map = map;
                start = at + 512 * (1 + ext);
                stored = entry.header().entry_size().map_err(LayerError::Read)?;
                gate.set_data_end(start + stored);
            }
            sparse::Format::Pax10 => {
                let (map, used) = sparse::read_pax10_map(entry).map_err(|err| {
                    if err.kind() == io::ErrorKind::InvalidData {
                        bad(err.to_string())
                    } else {
                        LayerError::Read(err)
                    }
                })?;
                sp.map = map;
                start += used;
                stored = stored
                    .checked_sub(used)
                    .ok_or_else(|| bad("map larger than the member".into()))?;
            }
            sparse::Format::Pax00 | sparse::Format::Pax01 => {}
        }
        sparse::check(&sp.map, sp.real_size, stored).map_err(bad)?;
        let payload = stored > 0
            && e.path
                .last()
                .is_some_and(|n| whiteout::classify(n) == Whiteout::None);
        if payload {
            rec.begin_payload(start, stored).map_err(LayerError::Read)?;
        }
        let csum = match sp.format {
            sparse::Format::OldGnu => self.add_entry(e, entry)?,
            _ => self.add_entry(e, &mut sparse::Expand::new(entry, &sp.map, sp.real_size))?,
        };
        if let (true, Some(csum)) = (payload, csum) {
            rec.end_sparse_payload(stored, &csum, &sp.map)
                .map_err(LayerError::Read)?;
        }
        Ok(())
    }

    /// Keeps `records`, which rebuild the layer's compressed blob from its tar, in the commit
    /// ([`crate::meta::LAYER_EXACT_GZIP`]), with their `format`
    /// ([`crate::meta::LAYER_EXACT_GZIP_FORMAT`]).
    pub fn set_exact_gzip(&mut self, records: Vec<u8>, format: (u32, String)) {
        self.exact_gzip = Some((records, format));
    }

    /// Walks to the parent directory of `path`, creating missing directories as implicit.
    /// `None` when a parent is a non-directory and `keep_files` asks not to replace it (a
    /// whiteout there has nothing to delete); otherwise such a parent is an error, as tar
    /// extraction fails there (`ENOTDIR`).
    fn parent_dir(
        &mut self,
        entry: &str,
        comps: &[String],
        keep_files: bool,
    ) -> Result<Option<MutableTree>, LayerError> {
        let mut cur = self.root.clone();
        for (i, name) in comps.iter().enumerate() {
            cur = match mtree::get(&cur, name).map_err(ostree_err(comps, "reading tree"))? {
                Some(Node::Dir(d)) => d,
                Some(Node::File(_)) if keep_files => return Ok(None),
                // AUFS metadata directories are kept as marker files; what they hold goes below.
                Some(Node::File(_)) if whiteout::classify(name) == Whiteout::None => {
                    return Err(LayerError::EntryConflict {
                        path: entry.to_string(),
                        reason: format!(
                            "its parent {:?} is a file or symlink of this layer, not a directory",
                            path::join(&comps[..=i])
                        ),
                    });
                }
                _ => {
                    let d = mtree::replace_with_dir(&cur, name)
                        .map_err(ostree_err(comps, "creating directory"))?;
                    d.set_metadata_checksum(&self.default_dirmeta);
                    self.implicit.insert(path::join(&comps[..=i]));
                    d
                }
            };
        }
        Ok(Some(cur))
    }

    /// Rewrites `path` so that no parent component is a symlink of this layer: a tar may
    /// create `lib -> usr/lib` and then `lib/x`, which lands in `usr/lib/x` (as umoci and
    /// containerd extract it). Targets resolve inside the root; `..` stops at the root.
    /// Symlinks of lower layers are the merge's business.
    fn resolve_parents(&self, path: &[String]) -> Result<Vec<String>, LayerError> {
        let Some((name, parents)) = path.split_last() else {
            return Ok(Vec::new());
        };
        if self.symlinks.is_empty() {
            return Ok(path.to_vec());
        }
        let root = self.root.clone();
        let resolved = mtree::resolve_in_root_checked(
            Vec::new(),
            parents.iter().cloned(),
            |p| match mtree::get_path(&root, p).map_err(ostree_err(path, "reading tree"))? {
                Some(Node::File(csum)) => Ok(self.symlinks.get(&csum).cloned()),
                _ => Ok(None),
            },
            // `..` out of a directory this layer made is `..` out of it in the merged tree;
            // out of anything else (a lower layer's symlink, perhaps) it may lead elsewhere.
            |p| match mtree::get_path(&root, p).map_err(ostree_err(path, "reading tree"))? {
                Some(Node::Dir(_)) if !self.implicit.contains(&path::join(p)) => Ok(()),
                _ => Err(LayerError::EntryConflict {
                    path: path::join(path),
                    reason: format!(
                        "a symlink of this layer on its path leads through {:?}/.., and this \
                         layer did not create {:?} as a directory: where `..` goes depends on \
                         the lower layers",
                        path::join(p),
                        path::join(p)
                    ),
                }),
            },
        )?;
        let Some(mut out) = resolved else {
            return Err(LayerError::EntryConflict {
                path: path::join(path),
                reason: format!(
                    "too many levels of symbolic links in its parents (a loop, or more than {})",
                    mtree::MAX_SYMLINK_HOPS
                ),
            });
        };
        out.push(name.clone());
        Ok(out)
    }

    /// Whether resolving the parents of `target` (through this layer's symlinks) passes
    /// through `link`, the resolved path of a hardlink to it.
    fn resolves_through(&self, target: &[String], link: &[String]) -> Result<bool, LayerError> {
        let Some((_, parents)) = target.split_last() else {
            return Ok(false);
        };
        let root = self.root.clone();
        let mut through = false;
        mtree::resolve_in_root(Vec::new(), parents.iter().cloned(), |p| {
            through |= p == link;
            match mtree::get_path(&root, p).map_err(ostree_err(target, "reading tree"))? {
                Some(Node::File(csum)) => Ok(self.symlinks.get(&csum).cloned()),
                _ => Ok(None),
            }
        })?;
        Ok(through)
    }

    /// Adds one entry; returns the object checksum of a regular file's data.
    fn add_entry(
        &mut self,
        mut e: Entry,
        data: &mut dyn Read,
    ) -> Result<Option<String>, LayerError> {
        let marker = whiteout::check_path(&e.path).map_err(|reason| LayerError::BadWhiteout {
            path: e.raw_path.clone(),
            reason,
        })?;
        let is_marker = marker != Whiteout::None;
        e.path = self.resolve_parents(&e.path)?;
        if let EntryKind::Hardlink(target) = &e.kind {
            if self.resolves_through(target, &e.path)? {
                return Err(LayerError::BadHardlink {
                    path: e.raw_path.clone(),
                    target: path::join(target),
                    reason: "leads through the link's own path, which extracting the tar \
                             empties before it makes the link (umoci and GNU tar fail there)",
                });
            }
            let resolved = self.resolve_parents(target)?;
            if resolved == e.path {
                return Err(LayerError::BadHardlink {
                    path: e.raw_path.clone(),
                    target: path::join(target),
                    reason: "is the link's own path, which umoci and containerd remove before \
                             they make the link, and fail (GNU tar keeps the file)",
                });
            }
            e.kind = EntryKind::Hardlink(resolved);
        }
        let Some((name, parents)) = e.path.split_last() else {
            if e.kind != EntryKind::Dir {
                return Err(LayerError::EntryConflict {
                    path: e.raw_path.clone(),
                    reason: format!("a {} cannot replace the root directory", e.kind.describe()),
                });
            }
            let m = self.objects.dirmeta(e.uid, e.gid, e.mode, &e.xattrs)?;
            self.root.set_metadata_checksum(&m);
            self.implicit.remove("");
            return Ok(None);
        };
        // A whiteout below a non-directory has nothing to delete (umoci's repack writes
        // `d/.wh.x` after turning `d` into a file): it must not turn `d` back into a directory.
        let Some(parent) = self.parent_dir(&e.raw_path, parents, is_marker)? else {
            return Ok(None);
        };
        if !is_marker {
            self.replacing(&parent, &e)?;
        }
        let at = |op| ostree_err(&e.path, op);
        match &e.kind {
            _ if is_marker => {
                if self.marker_after_entries(whiteout::classify(name), &e.path) {
                    return Err(LayerError::BadWhiteout {
                        path: e.raw_path.clone(),
                        reason: "it comes after entries of the same layer at or below what it \
                                 removes: extracting the tar in order and applying markers \
                                 first give different trees (markers must come first)",
                    });
                }
                let marker = Entry {
                    kind: EntryKind::File,
                    size: e.size,
                    ..e.clone()
                };
                let csum = self.objects.file(&marker, data)?;
                mtree::replace_with_file(&parent, name, &csum).map_err(at("adding whiteout"))?;
                self.whiteouts.push(path::join(&e.path));
            }
            EntryKind::Dir => {
                let m = self.objects.dirmeta(e.uid, e.gid, e.mode, &e.xattrs)?;
                let d = mtree::replace_with_dir(&parent, name).map_err(at("adding directory"))?;
                d.set_metadata_checksum(&m);
                // made implicitly for an earlier entry below it: named late
                let p = path::join(&e.path);
                if self.implicit.remove(&p) {
                    self.late_dirs.insert(p);
                }
            }
            EntryKind::File => {
                let csum = self.objects.file(&e, data)?;
                mtree::replace_with_file(&parent, name, &csum).map_err(at("adding file"))?;
                return Ok(Some(csum));
            }
            EntryKind::Symlink(target) => {
                let csum = self.objects.symlink(&e, target)?;
                mtree::replace_with_file(&parent, name, &csum).map_err(at("adding symlink"))?;
                self.symlinks.insert(csum, target.clone());
            }
            EntryKind::Hardlink(target) => {
                let target = target.clone();
                if !self.link(&parent, &e, &target)? {
                    self.pending_links.push((e, target));
                }
            }
            EntryKind::CharDevice(..) | EntryKind::BlockDevice(..) | EntryKind::Fifo => {
                if self.on_special == OnSpecial::Fail {
                    return Err(LayerError::UnsupportedEntry {
                        path: e.raw_path.clone(),
                        kind: e.kind.describe(),
                    });
                }
                // The path belongs to this entry now: an earlier entry of this layer there is
                // gone, and the merge removes what lower layers had there.
                parent
                    .remove(name, true)
                    .map_err(at("removing replaced entry"))?;
                self.skipped.push(Skipped {
                    layer: self.layer.clone(),
                    path: path::join(&e.path),
                    kind: e.kind.describe(),
                });
            }
        }
        Ok(None)
    }
}
