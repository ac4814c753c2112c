//! Metadata keys of the commits ocitree writes. Every key has the `ocitree.` prefix; nothing else
//! in the crate spells a key. An image commit's detached metadata (beside the commit, not part
//! of its checksum) holds [`SOURCES`], [`PREVIOUS`] and [`BUILT`]: where the image came from,
//! which commit it replaced and how its tree was built, by local name.
//!
//! | key | type | on | meaning |
//! |---|---|---|---|
//! | `ocitree.manifest` | `s` | image | the manifest, byte for byte |
//! | `ocitree.manifest-digest` | `s` | image | its digest |
//! | `ocitree.config` | `s` | image | the config, byte for byte |
//! | `ocitree.layers` | `as` | image | layer blob digests, in order |
//! | `ocitree.diff-ids` | `as` | image | layer diff_ids, in order |
//! | `ocitree.encapsulated` | `s` | image record | the encapsulated commit, or the commit of an ostree native container, the image ref points at (see [`crate::image::encapsulated`], [`crate::image::ostree_native`]) |
//! | `ocitree.ostree-base` | `s` | image | for an ostree native container with derived layers: the commit it carries, which they were applied on (see [`crate::image::ostree_native::derived`]) |
//! | `ocitree.file-tree` | `s` | image | for an imported file tree: JSON of its `--max-blobs` and file, blob and byte counts (see [`crate::image::file_tree::FileTreeRecord`]) |
//! | `ocitree.layer.digest` | `s` | layer | blob digest the layer was first imported from |
//! | `ocitree.layer.diff-id` | `s` | layer | digest of the uncompressed tar |
//! | `ocitree.layer.media-type` | `s` | layer | media type of that blob |
//! | `ocitree.layer.kind` | `s` | layer | `file` for an artifact layer (the blob as one file); absent for a tar |
//! | `ocitree.layer.whiteouts` | `as` | layer | paths of whiteout and opaque markers (kept as files) |
//! | `ocitree.layer.implicit-dirs` | `as` | layer | directories the tar never named (created for a child) |
//! | `ocitree.layer.links` | `a(ss)` | layer | hardlinks to files of lower layers: (path, target) |
//! | `ocitree.layer.late-dirs` | `as` | layer | directories the tar named only after entries below them (only when there are any) |
//! | `ocitree.layer.skipped` | `a(ss)` | layer | entries OSTree cannot store: (path, kind) |
//! | `ocitree.layer.tar-split` | `ay` | layer | zstd records rebuilding the exact tar (see [`crate::layer::tarsplit`]) |
//! | `ocitree.layer.tar-split-version` | `u` | layer | version of that record format |
//! | `ocitree.layer.rules` | `u` | layer | version of the rules the tar layer's tree was built under (see [`crate::layer::rules`]) |
//! | `ocitree.layer.exact-gzip` | `ay` | layer | records rebuilding the original gzip blob from the tar (see `layer::exact_gzip`, feature `exact-gzip`); only when that rebuild was checked at import |
//! | `ocitree.layer.exact-gzip-format` | `(us)` | layer | (version of that record format, version of the preflate-rs crate that made it) |

/// Image commit's **detached** metadata (not part of the checksum): `a{ss}`, image name →
/// the source reference it was imported from. One commit can be several names' image.
pub const SOURCES: &str = "ocitree.sources";
/// Image commit's **detached** metadata: `a{ss}`, image name → the commit that name pointed
/// at before this one (what `ocitree delta --from-previous` makes a delta from).
pub const PREVIOUS: &str = "ocitree.previous";
/// Image commit's **detached** metadata: `a{ss}`, image name → how a plain import built
/// the tree of that name's image (the reading, the layer rules and the layer commits merged;
/// see [`crate::import::up_to_date`]). Absent when the name was imported with a layer
/// selection, per-dir layers or per-type rules: a plain import then builds the tree again.
pub const BUILT: &str = "ocitree.built";
/// Image commit metadata of ocitree before 0.2 (read, never written): the source reference.
pub const LEGACY_SOURCE: &str = "ocitree.source";
/// Image commit: manifest bytes.
pub const MANIFEST: &str = "ocitree.manifest";
/// Image commit: manifest digest.
pub const MANIFEST_DIGEST: &str = "ocitree.manifest-digest";
/// Image commit: config bytes.
pub const CONFIG: &str = "ocitree.config";
/// Image commit: layer blob digests in order.
pub const LAYERS: &str = "ocitree.layers";
/// Image commit: diff_ids in order.
pub const DIFF_IDS: &str = "ocitree.diff-ids";
/// Image record of an encapsulated commit or of an ostree native container's commit: that
/// commit's checksum.
pub const ENCAPSULATED: &str = "ocitree.encapsulated";
/// Image commit of an ostree native container with derived layers: the checksum of the
/// commit the image carries (`ostree.commit`), which the derived layers were applied on.
pub const OSTREE_BASE: &str = "ocitree.ostree-base";
/// Image commit of an imported file tree ([`crate::image::file_tree`]): a JSON
/// [`crate::image::file_tree::FileTreeRecord`] (`--max-blobs` it was sharded with, file,
/// blob and byte counts), which `images`, `inspect` and `export` read.
pub const FILE_TREE: &str = "ocitree.file-tree";
/// Layer commit: blob digest.
pub const LAYER_DIGEST: &str = "ocitree.layer.digest";
/// Layer commit: diff_id.
pub const LAYER_DIFF_ID: &str = "ocitree.layer.diff-id";
/// Layer commit: blob media type.
pub const LAYER_MEDIA_TYPE: &str = "ocitree.layer.media-type";
/// Layer commit: `file` for an artifact layer ([`crate::layer::file`]).
pub const LAYER_KIND: &str = "ocitree.layer.kind";
/// Artifact layer commit holding a compressed tar's blob: the layer commit of its tree
/// ([`crate::layer::treated`]).
pub const LAYER_TREE_COMMIT: &str = "ocitree.layer.tree-commit";
/// Layer commit: whiteout marker paths.
pub const LAYER_WHITEOUTS: &str = "ocitree.layer.whiteouts";
/// Layer commit: implicitly created directories.
pub const LAYER_IMPLICIT_DIRS: &str = "ocitree.layer.implicit-dirs";
/// Layer commit: hardlinks into lower layers.
pub const LAYER_LINKS: &str = "ocitree.layer.links";
/// Layer commit: hardlinks written before their target, which came later in the same layer
/// (set only when there are any). A lower-layer file at the target when the layer is applied
/// is what the link takes, as extracting the tar in order gives.
pub const LAYER_FORWARD_LINKS: &str = "ocitree.layer.forward-links";
/// Layer commit: hardlinks written before the same layer put a directory at their target
/// (set only when there are any). In tar order the link took the file the lower layers have
/// there, which must exist when the layer is applied.
pub const LAYER_EARLY_LINKS: &str = "ocitree.layer.early-links";
/// Layer commit: directories that replaced a non-directory of the same layer (set only when
/// there are any): like an opaque directory, they hide what lower layers had there.
pub const LAYER_REPLACED_DIRS: &str = "ocitree.layer.replaced-dirs";
/// Layer commit: paths the tar named only after entries below them (set only when there are
/// any): a directory, or a file or symlink over a directory the layer made for entries that
/// left nothing in its tree (a hardlink waiting for its target, a skipped device or FIFO).
/// Over a lower-layer non-directory such a layer is refused: extracting it in tar order
/// writes those entries through a symlink (or fails on a file) before the path's own entry
/// replaces it, which no tree of the layer alone can say.
pub const LAYER_LATE_DIRS: &str = "ocitree.layer.late-dirs";
/// Layer commit: skipped entries.
pub const LAYER_SKIPPED: &str = "ocitree.layer.skipped";
/// Layer commit: tar-split records.
pub const LAYER_TAR_SPLIT: &str = "ocitree.layer.tar-split";
/// Layer commit: tar-split format version.
pub const LAYER_TAR_SPLIT_VERSION: &str = "ocitree.layer.tar-split-version";
/// Tar layer commit: the version of the rules its tree was built under
/// ([`crate::layer::rules`]); a layer under other rules is read again.
pub const LAYER_RULES: &str = "ocitree.layer.rules";
/// Layer commit: records rebuilding the original gzip blob bit for bit (feature `exact-gzip`).
pub const LAYER_EXACT_GZIP: &str = "ocitree.layer.exact-gzip";
/// Layer commit: (record format version, preflate-rs version) of [`LAYER_EXACT_GZIP`].
pub const LAYER_EXACT_GZIP_FORMAT: &str = "ocitree.layer.exact-gzip-format";

/// Image config labels of an encapsulated commit (see [`crate::image::encapsulated`]).
///
/// | label | value |
/// |---|---|
/// | `ocitree.commit` | the commit checksum (hex) |
/// | `ocitree.commit.object` | the commit object (its GVariant bytes), base64 |
/// | `ocitree.commit.detached-metadata` | the detached metadata (`a{sv}` bytes, signatures), base64; absent when there is none |
pub mod labels {
    /// The encapsulated commit's checksum.
    pub const COMMIT: &str = "ocitree.commit";
    /// The commit object, base64.
    pub const COMMIT_OBJECT: &str = "ocitree.commit.object";
    /// The detached metadata, base64.
    pub const COMMIT_DETACHED: &str = "ocitree.commit.detached-metadata";
}
