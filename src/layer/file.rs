//! An artifact layer (not a filesystem tar: JSON, a Helm chart, any blob) → a layer commit
//! holding the blob, byte for byte, as one file.
//!
//! The commit's tree is a single file [`BLOB`] (`0644 root:root`) whose content is the verified
//! blob; the name it gets in an image depends on the manifest that uses it (its title
//! annotation), so the merge places it ([`crate::merge::LayerTree::artifact`]), not the layer.
//! Export copies the blob back unchanged, so the layer keeps its digest.

use ostree::{MutableTree, Repo, glib};

use crate::blob::BlobReader;
use crate::blob::VerifiedReader;
use crate::entries::{Entry, EntryKind};
use crate::error::LayerError;
use crate::layer::object;
use crate::layer::stream::{ImportedLayer, LayerBlob};
use crate::layer::writer::ObjectWriter;
use crate::meta;

/// The name of the blob file in an artifact layer commit.
pub const BLOB: &str = "blob";

/// [`meta::LAYER_KIND`] of an artifact layer.
pub const KIND: &str = "file";

/// The checksum of the file object holding the blob of artifact layer commit `commit`.
///
/// # Errors
/// The commit is missing or holds no [`BLOB`] file.
pub fn blob_object(repo: &Repo, commit: &str) -> Result<String, glib::Error> {
    use ostree::gio::prelude::*;
    let (root, _) = repo.read_commit(commit, ostree::gio::Cancellable::NONE)?;
    let file = root.child(BLOB);
    let file = file.downcast_ref::<ostree::RepoFile>().ok_or_else(|| {
        glib::Error::new(
            ostree::gio::IOErrorEnum::NotFound,
            &format!("artifact layer {commit} has no {BLOB} file"),
        )
    })?;
    file.ensure_resolved()?;
    Ok(file.checksum().to_string())
}

/// Stores `blob` (verified against the layer's digest and size) as an artifact layer commit.
///
/// # Errors
/// The blob does not match its descriptor, or libostree fails.
pub fn import_file_layer(
    repo: &Repo,
    blob: BlobReader,
    layer: &LayerBlob,
) -> Result<ImportedLayer, LayerError> {
    let ostree_err = |op| {
        move |cause| LayerError::Ostree {
            path: BLOB.into(),
            op,
            cause,
        }
    };
    let mut verified = VerifiedReader::new(blob, &layer.digest, layer.size)
        .map_err(|e| LayerError::Read(std::io::Error::other(e)))?;
    let entry = Entry {
        path: vec![BLOB.into()],
        raw_path: BLOB.into(),
        kind: EntryKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        xattrs: Vec::new(),
        size: layer.size,
    };
    let csum = ObjectWriter::new(repo).file(&entry, &mut verified)?;
    // The digest is checked by the read that reaches the end.
    std::io::copy(&mut verified, &mut std::io::sink()).map_err(LayerError::Read)?;
    let root = MutableTree::new();
    root.set_metadata_checksum(
        &object::default_dirmeta(repo).map_err(ostree_err("writing dirmeta"))?,
    );
    root.replace_file(BLOB, &csum)
        .map_err(ostree_err("adding the blob"))?;
    let dict = glib::VariantDict::new(None);
    dict.insert(meta::LAYER_DIGEST, layer.digest.as_str());
    dict.insert(meta::LAYER_DIFF_ID, layer.digest.as_str());
    dict.insert(meta::LAYER_MEDIA_TYPE, layer.media_type.as_str());
    dict.insert(meta::LAYER_KIND, KIND);
    let digest = layer.digest.as_str();
    let refs = [
        crate::refname::blob_ref(digest),
        crate::refname::diffid_ref(digest),
    ];
    crate::repo::collection::bind(repo, &dict, &refs);
    let subject = format!("artifact layer {}", layer.digest);
    let commit = crate::repo::write_tree_commit(repo, &root, &subject, &dict, 0)
        .map_err(ostree_err("writing layer commit"))?;
    Ok(ImportedLayer {
        commit,
        diff_id: layer.digest.clone(),
        skipped: Vec::new(),
        exact_gzip: crate::layer::stream::ExactGzipStatus::NotAttempted,
    })
}
