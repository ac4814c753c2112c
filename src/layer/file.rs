//! An artifact layer (not a filesystem tar: JSON, a Helm chart, any blob) → a layer commit
//! holding the blob, byte for byte, as one file.
//!
//! The commit's tree is a single file [`BLOB`] (`0644 root:root`) whose content is the verified
//! blob; the name it gets in an image depends on the manifest that uses it (its title
//! annotation), so the merge places it ([`crate::merge::LayerTree::artifact`]), not the layer.
//! Export copies the blob back unchanged, so the layer keeps its digest. A compressed tar an
//! artifact extracts is kept this way too, its commit naming the layer commit of its tree
//! ([`meta::LAYER_TREE_COMMIT`], see [`crate::layer::treated`]).

use ostree::{MutableTree, ObjectType, Repo, glib};

use crate::blob::BlobReader;
use crate::blob::VerifiedReader;
use crate::entries::{Entry, EntryKind};
use crate::error::LayerError;
use crate::layer::object;
use crate::layer::stream::{ExactGzipStatus, ImportedLayer, LayerBlob};
use crate::layer::writer::ObjectWriter;
use crate::meta;

/// The name of the blob file in an artifact layer commit.
pub const BLOB: &str = "blob";

/// [`meta::LAYER_KIND`] of an artifact layer.
pub const KIND: &str = "file";

fn ostree_err(op: &'static str) -> impl FnOnce(glib::Error) -> LayerError {
    move |cause| LayerError::Ostree {
        path: BLOB.into(),
        op,
        cause,
    }
}

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

/// Runs `consume` on another thread, with the repository and the content of file object
/// `csum` as a stream, read here (a gio stream stays on the thread that opened it) 256 KiB at
/// a time.
///
/// # Errors
/// The object is missing; a read error reaches `consume` as one.
pub fn with_object<T: Send>(
    repo: &Repo,
    csum: &str,
    consume: impl FnOnce(&Repo, BlobReader) -> T + Send,
) -> Result<T, glib::Error> {
    use ostree::gio::prelude::*;
    use std::io::Read;
    let (input, _, _) = repo.load_file(csum, ostree::gio::Cancellable::NONE)?;
    let input = input.ok_or_else(|| {
        glib::Error::new(
            ostree::gio::IOErrorEnum::NotFound,
            &format!("file object {csum} has no content"),
        )
    })?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
    Ok(std::thread::scope(|s| {
        let theirs = repo.clone();
        let consumer = s.spawn(move || {
            consume(
                &theirs,
                Box::new(Pipe {
                    rx,
                    cur: Vec::new(),
                    pos: 0,
                }),
            )
        });
        let mut input = input.into_read();
        loop {
            let mut chunk = Vec::with_capacity(256 << 10);
            match (&mut input).take(256 << 10).read_to_end(&mut chunk) {
                Ok(0) => break,
                Ok(_) => {
                    if tx.send(Ok(chunk)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    break;
                }
            }
        }
        drop(tx);
        consumer
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    }))
}

/// The reading end of [`with_object`].
struct Pipe {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

impl std::io::Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(chunk) => (self.cur, self.pos) = (chunk?, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Whether layer commit `commit` holds an artifact blob as a file (else a tar's tree), and
/// the layer commit of its tree if it records one.
///
/// # Errors
/// The commit is missing.
pub fn file_layer_info(repo: &Repo, commit: &str) -> Result<(bool, Option<String>), glib::Error> {
    let v = repo.load_variant(ObjectType::Commit, commit)?;
    let dict = glib::VariantDict::new(Some(&v.child_value(0)));
    let is_file = dict
        .lookup::<String>(meta::LAYER_KIND)
        .ok()
        .flatten()
        .as_deref()
        == Some(KIND);
    let tree = dict
        .lookup::<String>(meta::LAYER_TREE_COMMIT)
        .ok()
        .flatten();
    Ok((is_file, tree))
}

/// Whether layer commit `commit` holds an artifact blob as a file (else a tar's tree).
///
/// # Errors
/// The commit is missing.
pub fn is_file_layer(repo: &Repo, commit: &str) -> Result<bool, glib::Error> {
    file_layer_info(repo, commit).map(|(f, _)| f)
}

/// Stores `blob` (verified against the layer's digest and size) as a file object; returns
/// its checksum.
///
/// # Errors
/// The blob does not match its descriptor, or libostree fails.
pub fn store_blob(repo: &Repo, blob: BlobReader, layer: &LayerBlob) -> Result<String, LayerError> {
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
    Ok(csum)
}

/// Writes the artifact layer commit of blob object `csum`; `tree` is the layer commit of the
/// tree the blob (a compressed tar) gives, when it is extracted.
///
/// # Errors
/// libostree fails.
pub fn commit_file_layer(
    repo: &Repo,
    csum: &str,
    layer: &LayerBlob,
    tree: Option<&str>,
) -> Result<String, LayerError> {
    let root = MutableTree::new();
    root.set_metadata_checksum(
        &object::default_dirmeta(repo).map_err(ostree_err("writing dirmeta"))?,
    );
    root.replace_file(BLOB, csum)
        .map_err(ostree_err("adding the blob"))?;
    let dict = glib::VariantDict::new(None);
    dict.insert(meta::LAYER_DIGEST, layer.digest.as_str());
    dict.insert(meta::LAYER_DIFF_ID, layer.digest.as_str());
    dict.insert(meta::LAYER_MEDIA_TYPE, layer.media_type.as_str());
    dict.insert(meta::LAYER_KIND, KIND);
    if let Some(t) = tree {
        dict.insert(meta::LAYER_TREE_COMMIT, t);
    }
    let digest = layer.digest.as_str();
    let refs = [
        crate::refname::blob_ref(digest),
        crate::refname::diffid_ref(digest),
    ];
    crate::repo::collection::bind(repo, &dict, &refs);
    let subject = format!("artifact layer {}", layer.digest);
    crate::repo::write_tree_commit(repo, &root, &subject, &dict, 0)
        .map_err(ostree_err("writing layer commit"))
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
    let csum = store_blob(repo, blob, layer)?;
    let commit = commit_file_layer(repo, &csum, layer, None)?;
    Ok(ImportedLayer {
        commit,
        diff_id: layer.digest.clone(),
        skipped: Vec::new(),
        exact_gzip: ExactGzipStatus::NotAttempted,
    })
}
