//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/ALG/ENCODED`).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::blob::BlobReader;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::source::Source;

/// An OCI layout on disk.
#[derive(Debug)]
pub struct OciDir {
    root: PathBuf,
}

impl OciDir {
    /// Opens a layout directory.
    ///
    /// # Errors
    /// The path is not a directory holding `index.json`.
    pub fn open(root: &Path) -> Result<OciDir> {
        if !root.join("index.json").is_file() {
            return Err(Error::InvalidImage {
                image: format!("oci:{}", root.display()),
                reason: "not an OCI image layout (no index.json)".into(),
            });
        }
        Ok(OciDir {
            root: root.to_path_buf(),
        })
    }
}

impl Source for OciDir {
    fn index(&mut self) -> Result<Vec<u8>> {
        let p = self.root.join("index.json");
        let f = File::open(&p).map_err(Error::io(format!("reading {}", p.display())))?;
        super::read_metadata(f, &p.display().to_string())
    }

    fn open_blob(&mut self, digest: &Digest) -> Result<BlobReader> {
        // The digest was validated, so these two components cannot leave blobs/.
        let p = self
            .root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.encoded());
        let image = || format!("oci:{}", self.root.display());
        // Checked before opening: a directory opens (and fails only when read, with a bare
        // "Is a directory" naming nothing). A FIFO is a blob still being written (streamed
        // into a layout): read as it comes.
        match std::fs::metadata(&p) {
            Ok(m) if !m.is_file() && !std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type()) => {
                let kind = if m.is_dir() {
                    "a directory"
                } else {
                    "not a regular file"
                };
                return Err(Error::InvalidImage {
                    image: image(),
                    reason: format!("blob {digest}: {} is {kind}", p.display()),
                });
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound(format!("blob {digest} in {}", image())));
            }
            Err(e) => {
                return Err(Error::io(format!(
                    "{}: blob {digest}: opening {}",
                    image(),
                    p.display()
                ))(e));
            }
        }
        match File::open(&p) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::NotFound(format!("blob {digest} in {}", image())))
            }
            Err(e) => Err(Error::io(format!(
                "{}: blob {digest}: opening {}",
                image(),
                p.display()
            ))(e)),
        }
    }
}
