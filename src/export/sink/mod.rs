//! Where an export goes, whatever made its layers: an OCI image layout directory
//! (`oci:DIR[:TAG]`), an archive of one (`oci-archive:FILE[:TAG]`, `-` for standard output), or a
//! `docker save` archive (`docker-archive:FILE[:REFERENCE]`). Both [`crate::export::export_image`]
//! (imported images) and [`crate::export::encapsulate()`] (any commit) write through a [`Sink`]:
//! layers first, as they are produced, then config and manifest.
//!
//! Nothing appears at the destination until [`Sink::finish`]: everything is written into a
//! staging directory first ([`crate::export::staging`]), so that a failed or killed export
//! leaves the destination as it was. An archive path that is a FIFO or a character device is
//! written into as standard output is, never replaced; a symlink is followed; other files
//! that are not regular files are refused.

use std::fs;
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::decompress::Compression;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::export::compress::LayerCompression;
use crate::export::layer::{LayerBlobOut, write_blob, write_exact_gzip_blob};
use crate::export::staging::{self, Stage};
use crate::source::{Selector, SourceRef};
use crate::spec::{ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX};

mod archive;
mod layout;

use archive::ArchiveOut;
pub use archive::writes_to_stdout;
use layout::{lock_layout, read_index};

fn io(what: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        context: format!("writing {}", what.display()),
        cause: e,
    }
}

/// A temporary file in `dir` that becomes a blob: readable by all as the documents written with
/// [`fs::write`] (mode 0666 less the umask; a tempfile's own 0600 would make the layer blobs
/// of a layout unreadable to other users and to a web server serving it).
fn blob_tempfile(dir: &Path) -> Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(io(dir))
}

/// Where the finished layout or archive goes.
#[derive(Debug)]
enum Target {
    /// A new layout directory: the staged one is renamed to this path.
    NewLayout(PathBuf),
    /// An existing layout directory: new blobs are moved into it, then its `index.json` is
    /// replaced.
    Layout(PathBuf),
    /// The staged layout is tarred to this output.
    OciArchive(ArchiveOut),
    /// The staged docker archive is tarred to this output.
    DockerArchive(ArchiveOut),
}

/// An export destination being written.
#[derive(Debug)]
pub struct Sink {
    target: Target,
    /// The layout (or docker archive) being assembled, in the staging directory.
    dir: PathBuf,
    /// The staging directory (removed when the sink is dropped).
    stage: Stage,
    tag: Option<String>,
    /// Docker archives: layer file names, in order.
    docker_layers: Vec<String>,
}

impl Sink {
    /// Opens `dest` for writing: a staging directory beside it (inside it for an existing
    /// layout; beside a symlink's target; in the temporary directory for standard output, a
    /// FIFO or a device, which is opened now), after removing those that killed exports to
    /// the same destination left.
    ///
    /// # Errors
    /// A digest selector (a destination takes a tag), a registry, a layout path that is not
    /// a directory, an archive path that is a directory, socket or block device, a FIFO or
    /// device that cannot be opened, or the staging directory cannot be created.
    pub fn open(dest: &SourceRef) -> Result<Sink> {
        let tag = match dest.selector() {
            Selector::Default => None,
            Selector::Tag(t) => Some(t.clone()),
            Selector::Digest(_) => {
                return Err(Error::InvalidReference {
                    reference: dest.to_string(),
                    reason: "a destination takes a tag, not a digest".into(),
                });
            }
        };
        let target = match dest {
            SourceRef::OciDir { path, .. } => match fs::metadata(path) {
                Ok(m) if m.is_dir() => Target::Layout(path.clone()),
                Ok(_) => {
                    return Err(Error::InvalidReference {
                        reference: dest.to_string(),
                        reason: format!("{} exists and is not a directory", path.display()),
                    });
                }
                Err(_) => Target::NewLayout(path.clone()),
            },
            SourceRef::Registry(_) => {
                return Err(Error::InvalidReference {
                    reference: dest.to_string(),
                    reason: "a registry is pushed to (push_image, push_encapsulated), not \
                             written as files"
                        .into(),
                });
            }
            SourceRef::OciArchive { path, .. } => {
                Target::OciArchive(ArchiveOut::of(dest, path.as_deref())?)
            }
            SourceRef::DockerArchive { path, .. } => {
                Target::DockerArchive(ArchiveOut::of(dest, path.as_deref())?)
            }
        };
        let stage = match &target {
            Target::Layout(d) => {
                staging::clean_stale(d, staging::MARK)?;
                Stage::new_in(d, staging::MARK)?
            }
            Target::NewLayout(p)
            | Target::OciArchive(ArchiveOut::File(p))
            | Target::DockerArchive(ArchiveOut::File(p)) => {
                let (parent, prefix) = staging::sibling(p);
                fs::create_dir_all(&parent).map_err(io(&parent))?;
                staging::clean_stale(&parent, &prefix)?;
                Stage::new_in(&parent, &prefix)?
            }
            Target::OciArchive(ArchiveOut::Stdout | ArchiveOut::Stream(..))
            | Target::DockerArchive(ArchiveOut::Stdout | ArchiveOut::Stream(..)) => {
                let tmp = std::env::temp_dir();
                staging::clean_stale(&tmp, staging::STDOUT_PREFIX)?;
                Stage::new_in(&tmp, staging::STDOUT_PREFIX)?
            }
        };
        let dir = stage.path().join("layout");
        let sink = Sink {
            target,
            dir,
            stage,
            tag,
            docker_layers: Vec::new(),
        };
        fs::create_dir(&sink.dir).map_err(io(&sink.dir))?;
        // A malformed index.json is found now, not after every layer is written.
        if let Target::Layout(d) = &sink.target {
            read_index(d)?;
        }
        if !sink.is_docker() {
            let blobs = sink.blobs();
            fs::create_dir_all(&blobs).map_err(io(&blobs))?;
            let layout = sink.dir.join("oci-layout");
            fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io(&layout))?;
        }
        Ok(sink)
    }

    /// Whether this is a docker archive (layers are stored uncompressed, and the manifest is
    /// docker's `manifest.json`, not the OCI manifest).
    pub fn is_docker(&self) -> bool {
        matches!(self.target, Target::DockerArchive(_))
    }

    fn blobs(&self) -> PathBuf {
        self.dir.join("blobs/sha256")
    }

    /// Writes one layer: `tar` writes the uncompressed tar, which is hashed with `diff_id` and
    /// compressed with `compression` (docker archives: never compressed). `what` names the
    /// layer in errors.
    ///
    /// # Errors
    /// `tar`'s errors, or writing fails.
    pub fn add_layer(
        &mut self,
        compression: &LayerCompression,
        diff_id: Hasher,
        what: &str,
        tar: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<LayerBlobOut> {
        let compression = if self.is_docker() {
            LayerCompression::new(Compression::None)
        } else {
            *compression
        };
        let out = self.add_blob(None, &mut |file| {
            write_blob(&compression, diff_id.clone(), file, what, tar)
        })?;
        out.ok_or_else(|| Error::InvalidImage {
            image: what.into(),
            reason: "layer blob not kept".into(),
        })
    }

    /// Writes one gzip layer of an OCI layout as its original blob `digest`, rebuilt from
    /// exact-gzip `records` ([`write_exact_gzip_blob`]) and the tar that `tar` writes. `None`
    /// (and nothing written) when the rebuilt blob is not `digest`.
    ///
    /// # Errors
    /// `tar`'s errors, the records do not fit the tar, or writing fails.
    pub fn add_exact_gzip_layer(
        &mut self,
        records: &[u8],
        digest: &Digest,
        diff_id: Hasher,
        what: &str,
        tar: &mut dyn FnMut(&mut dyn Write) -> Result<()>,
    ) -> Result<Option<LayerBlobOut>> {
        self.add_blob(Some(digest), &mut |file| {
            write_exact_gzip_blob(records, diff_id.clone(), file, what, tar)
        })
    }

    /// Writes a layer blob that `write` makes into a temporary file, then keeps it under its
    /// name, unless it does not have the `expect`ed digest (then `None`).
    fn add_blob(
        &mut self,
        expect: Option<&Digest>,
        write: &mut dyn FnMut(&mut (dyn Write + Send)) -> Result<LayerBlobOut>,
    ) -> Result<Option<LayerBlobOut>> {
        let tmp_dir = if self.is_docker() {
            self.dir.clone()
        } else {
            self.blobs()
        };
        let tmp = blob_tempfile(&tmp_dir)?;
        let mut file = BufWriter::new(tmp.as_file());
        let out = write(&mut file)?;
        file.flush().map_err(io(&tmp_dir))?;
        drop(file);
        if expect.is_some_and(|d| *d != out.digest) {
            return Ok(None);
        }
        let dest = if self.is_docker() {
            let name = format!("{}.tar", out.diff_id.encoded());
            self.docker_layers.push(name.clone());
            self.dir.join(name)
        } else {
            self.blobs().join(out.digest.encoded())
        };
        tmp.persist(&dest).map_err(|e| io(&dest)(e.error))?;
        Ok(Some(out))
    }

    /// Writes the blob that `data` yields (streamed through a temporary file, hashed on the
    /// way; kept once per digest) into an OCI layout; returns its digest and size.
    ///
    /// # Errors
    /// Reading `data` or writing fails, or this is a docker archive (which holds no blobs).
    pub fn add_raw_blob(&mut self, data: &mut dyn std::io::Read) -> Result<(Digest, u64)> {
        if self.is_docker() {
            return Err(Error::InvalidReference {
                reference: "docker-archive".into(),
                reason: "a docker archive holds images, not blobs".into(),
            });
        }
        let dir = self.blobs();
        let tmp = blob_tempfile(&dir)?;
        let mut hasher = Hasher::sha256();
        let mut out = BufWriter::new(tmp.as_file());
        let mut buf = vec![0u8; 64 << 10];
        let mut size = 0u64;
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(&dir)(e)),
            };
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).map_err(io(&dir))?;
            size += n as u64;
        }
        out.flush().map_err(io(&dir))?;
        drop(out);
        let digest = hasher.finish();
        let dest = dir.join(digest.encoded());
        if !dest.exists() {
            tmp.persist(&dest).map_err(|e| io(&dest)(e.error))?;
        }
        Ok((digest, size))
    }

    /// Writes `data` (a manifest, an index, a config) as a blob of the layout; returns its
    /// digest.
    ///
    /// # Errors
    /// Writing fails.
    pub fn put_document(&self, data: &[u8]) -> Result<Digest> {
        self.put_blob(data)
    }

    /// Writes `data` as a blob of the layout; returns its digest.
    fn put_blob(&self, data: &[u8]) -> Result<Digest> {
        let d = Digest::sha256_of(data);
        let p = self.blobs().join(d.encoded());
        fs::write(&p, data).map_err(io(&p))?;
        Ok(d)
    }

    /// Writes config and manifest (of media type `media_type`), tags the manifest, and for
    /// archives writes the archive. Returns the digest of the manifest written, or for a
    /// docker archive (which keeps only the config and the layer order of `manifest`) the
    /// config's digest: the image ID `docker load` reports.
    ///
    /// # Errors
    /// Writing fails, or an existing `index.json` is malformed.
    pub fn finish(self, config: &[u8], manifest: &[u8], media_type: &str) -> Result<Digest> {
        let (digest, desc) = if self.is_docker() {
            let config_digest = Digest::sha256_of(config);
            let config_name = format!("{}.json", config_digest.encoded());
            let p = self.dir.join(&config_name);
            fs::write(&p, config).map_err(io(&p))?;
            let tags: Vec<&str> = self.tag.iter().map(String::as_str).collect();
            let doc =
                json!([{ "Config": config_name, "RepoTags": tags, "Layers": self.docker_layers }]);
            let bytes = serde_json::to_vec(&doc).expect("JSON values serialize");
            let p = self.dir.join("manifest.json");
            fs::write(&p, &bytes).map_err(io(&p))?;
            (config_digest, Value::Null)
        } else {
            self.put_blob(config)?;
            let digest = self.put_blob(manifest)?;
            let desc =
                json!({"mediaType": media_type, "digest": digest.as_str(), "size": manifest.len()});
            (digest, desc)
        };
        self.complete(&desc, config)?;
        Ok(digest)
    }

    /// Writes the root document `doc` (an index or manifest whose blobs are written already)
    /// of media type `media_type`, tags it, and completes the layout or OCI archive. Returns
    /// its digest.
    ///
    /// # Errors
    /// A docker archive (it holds one image manifest), or writing fails.
    pub fn finish_document(self, doc: &[u8], media_type: &str) -> Result<Digest> {
        if self.is_docker() {
            return Err(Error::InvalidReference {
                reference: "docker-archive".into(),
                reason: "a docker archive holds one image manifest, not an OCI index".into(),
            });
        }
        let digest = self.put_blob(doc)?;
        self.complete(
            &json!({"mediaType": media_type, "digest": digest.as_str(), "size": doc.len()}),
            &[],
        )?;
        Ok(digest)
    }

    /// Tags the manifest descriptor `desc` in the layout's `index.json` and moves the staged
    /// layout or archive to its target (`config`: a docker archive's; `desc` is not used).
    fn complete(&self, desc: &Value, config: &[u8]) -> Result<()> {
        match &self.target {
            Target::NewLayout(p) => {
                self.write_index(None, desc)?;
                if let Err(e) = fs::rename(&self.dir, p) {
                    // Another export made the layout since `open` found none: this one adds
                    // its tag to it, as to any existing layout.
                    use std::io::ErrorKind::{AlreadyExists, DirectoryNotEmpty};
                    if !matches!(e.kind(), AlreadyExists | DirectoryNotEmpty) {
                        return Err(io(p)(e));
                    }
                    self.move_into(p, desc)?;
                }
            }
            Target::Layout(p) => self.move_into(p, desc)?,
            Target::OciArchive(out) => {
                self.write_index(None, desc)?;
                self.write_archive(out, None)?;
            }
            Target::DockerArchive(out) => {
                // docker load wants the layers, then the config, then manifest.json.
                let mut names = self.docker_layers.clone();
                names.push(format!("{}.json", Digest::sha256_of(config).encoded()));
                names.push("manifest.json".into());
                self.write_archive(out, Some(&names))?;
            }
        }
        Ok(())
    }

    /// Moves the staged blobs into the existing layout `dest` (those it lacks), then its
    /// `oci-layout` if it has none, then replaces its `index.json` by its own plus `desc`: each
    /// step a rename, so that `index.json` only ever names blobs that are there whole. The
    /// layout is locked meanwhile ([`layout::lock_layout`]), so that concurrent exports to it do not
    /// drop each other's tags.
    fn move_into(&self, dest: &Path, desc: &Value) -> Result<()> {
        let _lock = lock_layout(dest)?;
        let blobs = dest.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io(&blobs))?;
        let staged = self.blobs();
        for e in fs::read_dir(&staged).map_err(io(&staged))? {
            let e = e.map_err(io(&staged))?;
            let to = blobs.join(e.file_name());
            if !to.exists() {
                fs::rename(e.path(), &to).map_err(io(&to))?;
            }
        }
        let layout = dest.join("oci-layout");
        if !layout.exists() {
            fs::rename(self.dir.join("oci-layout"), &layout).map_err(io(&layout))?;
        }
        // read now, under the lock: what another export added meanwhile is kept
        self.write_index(read_index(dest)?, desc)?;
        let index = dest.join("index.json");
        fs::rename(self.dir.join("index.json"), &index).map_err(io(&index))
    }

    /// Tars the staged directory (all of it, or `names` in that order) to `out`
    /// ([`archive::write`]).
    fn write_archive(&self, out: &ArchiveOut, names: Option<&[String]>) -> Result<()> {
        archive::write(&self.dir, &self.stage.path().join("archive"), out, names)
    }

    /// Writes the staged `index.json`: `existing` (an existing layout's, if any) plus the
    /// manifest descriptor `desc`, replacing one with the same tag.
    fn write_index(&self, existing: Option<Value>, desc: &Value) -> Result<()> {
        let path = self.dir.join("index.json");
        let mut index = existing.unwrap_or_else(
            || json!({"schemaVersion": 2, "mediaType": MEDIA_TYPE_INDEX, "manifests": []}),
        );
        let list = index["manifests"]
            .as_array_mut()
            .expect("checked by read_index");
        let mut desc = desc.clone();
        if let Some(t) = &self.tag {
            list.retain(|m| m["annotations"][ANNOTATION_REF_NAME].as_str() != Some(t));
            desc["annotations"] = json!({ ANNOTATION_REF_NAME: t });
        }
        list.push(desc);
        fs::write(
            &path,
            serde_json::to_vec(&index).expect("JSON values serialize"),
        )
        .map_err(io(&path))
    }
}
