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
        match File::open(&p) {
            Ok(f) => Ok(Box::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound(format!(
                "blob {digest} in oci:{}",
                self.root.display()
            ))),
            Err(e) => Err(Error::io(format!("opening {}", p.display()))(e)),
        }
    }
}
