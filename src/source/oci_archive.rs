//! An OCI layout packed in a tar file (`oci-archive:`), read in place: one pass over the tar
//! records where each member's data starts, and blobs are then read straight from the file.
//! Standard input is spooled to an anonymous temporary file first (a pipe cannot be re-read,
//! and the layout's `index.json` may come after the blobs).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::entries::path;
use crate::error::{Error, Result};
use crate::source::{BlobReader, Source};

/// An OCI layout inside a tar archive.
#[derive(Debug)]
pub struct OciArchive {
    name: String,
    file: File,
    members: HashMap<String, (u64, u64)>,
}

impl OciArchive {
    /// Opens an archive file.
    ///
    /// # Errors
    /// The file cannot be read or is not a tar.
    pub fn open(p: &Path) -> Result<OciArchive> {
        let file = File::open(p).map_err(Error::io(format!("opening {}", p.display())))?;
        Self::scan(format!("oci-archive:{}", p.display()), file)
    }

    /// Reads an archive from standard input.
    ///
    /// # Errors
    /// Spooling fails or the stream is not a tar.
    pub fn from_stdin() -> Result<OciArchive> {
        let mut spool =
            tempfile::tempfile().map_err(Error::io("creating a temporary file for stdin"))?;
        io::copy(&mut io::stdin().lock(), &mut spool)
            .map_err(Error::io("reading the archive from stdin"))?;
        Self::scan("oci-archive:-".into(), spool)
    }

    fn scan(name: String, mut file: File) -> Result<OciArchive> {
        file.rewind()
            .map_err(Error::io(format!("reading {name}")))?;
        let mut members = HashMap::new();
        {
            let mut archive = tar::Archive::new(&file);
            let bad = |e: io::Error| Error::InvalidImage {
                image: name.clone(),
                reason: format!("not a readable tar: {e}"),
            };
            for entry in archive.entries_with_seek().map_err(bad)? {
                let entry = entry.map_err(bad)?;
                if entry.header().entry_type().is_file() {
                    let comps =
                        path::normalize(&entry.path_bytes()).map_err(|e| Error::InvalidImage {
                            image: name.clone(),
                            reason: e.to_string(),
                        })?;
                    members.insert(comps.join("/"), (entry.raw_file_position(), entry.size()));
                }
            }
        }
        Ok(OciArchive {
            name,
            file,
            members,
        })
    }

    fn member(&self, key: &str) -> Result<BlobReader> {
        let &(offset, size) = self
            .members
            .get(key)
            .ok_or_else(|| Error::NotFound(format!("{key} in {}", self.name)))?;
        let mut f = self
            .file
            .try_clone()
            .map_err(Error::io(format!("reading {}", self.name)))?;
        // A dup'ed descriptor shares the offset with the original: reopen through /proc so that
        // each blob reader seeks independently.
        let proc_path = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&f)
        ));
        if let Ok(own) = File::open(&proc_path) {
            f = own;
        }
        f.seek(SeekFrom::Start(offset))
            .map_err(Error::io(format!("reading {}", self.name)))?;
        Ok(Box::new(f.take(size)))
    }
}

impl Source for OciArchive {
    fn index(&mut self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.member("index.json")?
            .read_to_end(&mut out)
            .map_err(Error::io(format!("reading {}", self.name)))?;
        Ok(out)
    }

    fn open_blob(&mut self, digest: &Digest) -> Result<BlobReader> {
        self.member(&format!(
            "blobs/{}/{}",
            digest.algorithm(),
            digest.encoded()
        ))
        .map_err(|_| Error::NotFound(format!("blob {digest} in {}", self.name)))
    }
}
