//! Random access to the members of a tar file: one pass records where each regular file's
//! data starts, then members are read in place. Standard input is spooled to an anonymous
//! temporary file first (a pipe cannot be re-read, and archives put their index anywhere).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::blob::BlobReader;
use crate::entries::path;
use crate::error::{Error, Result};

/// Where each member of a tar file is.
#[derive(Debug)]
pub struct TarIndex {
    name: String,
    file: File,
    members: HashMap<String, (u64, u64)>,
}

impl TarIndex {
    /// Indexes the tar file at `p`; `name` (such as `oci-archive:FILE`) names it in errors.
    ///
    /// # Errors
    /// The file cannot be read or is not a tar.
    pub fn open(name: String, p: &Path) -> Result<TarIndex> {
        let file = File::open(p).map_err(Error::io(format!("opening {}", p.display())))?;
        Self::scan(name, file)
    }

    /// Spools standard input and indexes it.
    ///
    /// # Errors
    /// Spooling fails or the stream is not a tar.
    pub fn from_stdin(name: String) -> Result<TarIndex> {
        let mut spool =
            tempfile::tempfile().map_err(Error::io("creating a temporary file for stdin"))?;
        io::copy(&mut io::stdin().lock(), &mut spool)
            .map_err(Error::io(format!("reading {name} from stdin")))?;
        Self::scan(name, spool)
    }

    fn scan(name: String, mut file: File) -> Result<TarIndex> {
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
        Ok(TarIndex {
            name,
            file,
            members,
        })
    }

    /// The archive's name for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Size of member `key` (a normalised relative path), if present.
    pub fn size(&self, key: &str) -> Option<u64> {
        self.members.get(key).map(|m| m.1)
    }

    /// Opens member `key` (a normalised relative path).
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such member.
    pub fn open_member(&self, key: &str) -> Result<BlobReader> {
        let &(offset, size) = self
            .members
            .get(key)
            .ok_or_else(|| Error::NotFound(format!("{key} in {}", self.name)))?;
        let mut f = self
            .file
            .try_clone()
            .map_err(Error::io(format!("reading {}", self.name)))?;
        // A dup'ed descriptor shares its offset with the original: reopen through /proc so that
        // each reader seeks independently.
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

    /// Reads a whole (small) member.
    ///
    /// # Errors
    /// As [`TarIndex::open_member`], or reading fails.
    pub fn read_member(&self, key: &str) -> Result<Vec<u8>> {
        super::read_metadata(self.open_member(key)?, &format!("{key} in {}", self.name))
    }
}
