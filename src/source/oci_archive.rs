//! An OCI layout packed in a tar file (`oci-archive:`), read in place through a [`TarIndex`].

use std::path::Path;

use crate::blob::BlobReader;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::source::Source;
use crate::source::tar_index::TarIndex;

/// An OCI layout inside a tar archive.
#[derive(Debug)]
pub struct OciArchive {
    tar: TarIndex,
}

impl OciArchive {
    /// Opens an archive file.
    ///
    /// # Errors
    /// The file cannot be read or is not a tar.
    pub fn open(p: &Path) -> Result<OciArchive> {
        Ok(OciArchive {
            tar: TarIndex::open(format!("oci-archive:{}", p.display()), p)?,
        })
    }

    /// Reads an archive from standard input.
    ///
    /// # Errors
    /// Spooling fails or the stream is not a tar.
    pub fn from_stdin() -> Result<OciArchive> {
        Ok(OciArchive {
            tar: TarIndex::from_stdin("oci-archive:-".into())?,
        })
    }
}

impl Source for OciArchive {
    fn index(&mut self) -> Result<Vec<u8>> {
        self.tar.read_member("index.json")
    }

    fn open_blob(&mut self, digest: &Digest) -> Result<BlobReader> {
        self.tar
            .open_member(&format!(
                "blobs/{}/{}",
                digest.algorithm(),
                digest.encoded()
            ))
            .map_err(|e| match e {
                Error::NotFound(_) => self.tar.not_found(&format!("blob {digest}")),
                e => e,
            })
    }
}
