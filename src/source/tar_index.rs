//! Random access to the members of a tar file: one pass records where each regular file's
//! data starts, then members are read in place. Standard input is spooled to an anonymous
//! temporary file first (a pipe cannot be re-read, and archives put their index anywhere).
//!
//! An archive cut short is said to be one: a member whose data runs past the end of the file,
//! or a header cut in two, is a "truncated archive" error naming where the file ends; one cut
//! between members (no end-of-archive marker) is readable as far as it goes, and a member
//! missing from it is "not found" with a note that the archive may be truncated.
//!
//! Symbolic and hard links between members are followed inside the archive (legacy `docker
//! save` stores a layer that recurs under another layer id as `ID2/layer.tar ->
//! ../ID1/layer.tar`): a symlink's target is taken relative to its own directory, a hard
//! link's from the archive's root, at most [`MAX_LINKS`] of them per lookup; a link that leads
//! above the archive's root, an absolute target and a loop are errors.
//!
//! # Security
//! The archive is untrusted. What the tar reader reads for one member (its header, and the
//! GNU long-name and PAX records before it) is capped at [`MAX_ENTRY_METADATA`], as in layers:
//! a record claiming gigabytes is an error before it is read. A member name that appears more
//! than once is ambiguous (tools differ on which copy counts: skopeo reads the first of a
//! docker-archive's members, and the last of an oci-archive's, which it extracts): reading it
//! is an error naming it, whichever copy it would be.

use std::cell::Cell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::blob::BlobReader;
use crate::entries::path;
use crate::error::{Error, Result, cut};
use crate::layer::tarsplit::{MAX_ENTRY_METADATA, too_much_metadata};

/// Most links followed in one lookup (Linux's `MAXSYMLINKS`); more is taken for a loop.
pub const MAX_LINKS: usize = 40;

/// A member of the archive, by its normalised path.
#[derive(Debug)]
enum Member {
    /// A regular file: where its data starts, and its size.
    File(u64, u64),
    /// A symbolic link: its target as written, relative to the link's directory.
    Symlink(Vec<u8>),
    /// A hard link: the member it names, from the archive's root.
    Hardlink(Vec<u8>),
}

/// Where each member of a tar file is.
#[derive(Debug)]
pub struct TarIndex {
    name: String,
    file: File,
    members: HashMap<String, Member>,
    /// Member names that appear more than once, with how many times.
    duplicates: HashMap<String, usize>,
    /// The file's length when it ends without an end-of-archive marker (cut between members?).
    unterminated: Option<u64>,
}

/// The archive file as the tar reader sees it, noting whether a read reached the end of the
/// file (a header cut short, or no end-of-archive marker), and failing once the reader has
/// read more than [`MAX_ENTRY_METADATA`] bytes since `read` was last reset (at each member:
/// tar-rs reads GNU long-name and PAX records whole into memory, and seeks over member data).
struct EofTracking<'a> {
    file: &'a File,
    hit_eof: &'a Cell<bool>,
    /// Bytes read since the last member, and the file position where they start.
    read: &'a Cell<Option<(usize, u64)>>,
}

impl Read for EofTracking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let (done, start) = match self.read.get() {
            Some(r) => r,
            None => (0, self.file.stream_position()?),
        };
        if done >= MAX_ENTRY_METADATA {
            return Err(too_much_metadata(start, ""));
        }
        let room = buf.len().min(MAX_ENTRY_METADATA - done);
        let n = self.file.read(&mut buf[..room])?;
        if n == 0 && !buf.is_empty() {
            self.hit_eof.set(true);
        }
        self.read.set(Some((done + n, start)));
        Ok(n)
    }
}

impl Seek for EofTracking<'_> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.file.seek(pos)
    }
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
        let len = file
            .metadata()
            .map_err(Error::io(format!("reading {name}")))?
            .len();
        let truncated = |at: String| Error::InvalidImage {
            image: name.clone(),
            reason: format!("truncated archive: it ends at byte {len}, {at}"),
        };
        let mut members = HashMap::new();
        let mut duplicates = HashMap::new();
        let hit_eof = Cell::new(false);
        let read = Cell::new(None);
        {
            let mut archive = tar::Archive::new(EofTracking {
                file: &file,
                hit_eof: &hit_eof,
                read: &read,
            });
            let bad = |e: io::Error| {
                if hit_eof.get() {
                    truncated(format!("inside a tar header ({e})"))
                } else {
                    Error::InvalidImage {
                        image: name.clone(),
                        reason: format!("not a readable tar: {e}"),
                    }
                }
            };
            for entry in archive.entries_with_seek().map_err(bad)? {
                let entry = entry.map_err(bad)?;
                read.set(None);
                let end = entry.raw_file_position().saturating_add(entry.size());
                if end > len {
                    return Err(truncated(format!(
                        "inside the data of {:?}, which runs to byte {end}",
                        cut(&path::lossy(&entry.path_bytes()))
                    )));
                }
                let kind = entry.header().entry_type();
                let member = if kind.is_file() {
                    Member::File(entry.raw_file_position(), entry.size())
                } else if kind.is_symlink() || kind.is_hard_link() {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    if kind.is_symlink() {
                        Member::Symlink(target)
                    } else {
                        Member::Hardlink(target)
                    }
                } else {
                    continue;
                };
                let comps =
                    path::normalize(&entry.path_bytes()).map_err(|e| Error::InvalidImage {
                        image: name.clone(),
                        reason: e.to_string(),
                    })?;
                let key = comps.join("/");
                if members.contains_key(&key) {
                    *duplicates.entry(key.clone()).or_insert(1) += 1;
                }
                members.insert(key, member);
            }
        }
        Ok(TarIndex {
            name,
            file,
            members,
            duplicates,
            unterminated: hit_eof.get().then_some(len),
        })
    }

    /// The error for `what` (such as `blob sha256:…`) missing from the archive, noting when
    /// the archive may have been cut short.
    pub fn not_found(&self, what: &str) -> Error {
        let what = cut(what);
        match self.unterminated {
            Some(len) => Error::NotFound(format!(
                "{what} in {} (truncated archive? it ends at byte {len} with no end-of-archive \
                 marker)",
                self.name
            )),
            None => Error::NotFound(format!("{what} in {}", self.name)),
        }
    }

    /// The archive's name for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where member `key` (a normalised relative path) has its data, following links inside
    /// the archive.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such member; [`Error::InvalidImage`] for a link
    /// that leads outside the archive or more than [`MAX_LINKS`] links (a loop), and for a
    /// member (the one asked for, or a link on the way) that appears more than once.
    pub(crate) fn locate(&self, key: &str) -> Result<(u64, u64)> {
        let bad = |reason: String| Error::InvalidImage {
            image: self.name.clone(),
            reason: format!("{}: {reason}", cut(key)),
        };
        let shown =
            |path: &str, target: &[u8]| format!("{} -> {}", cut(path), cut(&path::lossy(target)));
        // Components still to walk (the next one last) and the real path walked so far.
        let mut pending: Vec<&[u8]> = key.as_bytes().rsplit(|&b| b == b'/').collect();
        let mut walked: Vec<&str> = Vec::new();
        let mut links = 0;
        let mut last_link = String::new();
        while let Some(comp) = pending.pop() {
            match comp {
                b"" | b"." => continue,
                b".." => {
                    if walked.pop().is_none() {
                        return Err(bad(format!(
                            "the link {last_link} leads outside the archive"
                        )));
                    }
                    continue;
                }
                _ => {}
            }
            let Ok(comp) = std::str::from_utf8(comp) else {
                return Err(self.not_found(key));
            };
            walked.push(comp);
            let path = walked.join("/");
            if let Some(n) = self.duplicates.get(&path) {
                return Err(bad(format!(
                    "the archive has {n} members named {:?}: tools differ on which one counts \
                     (skopeo reads the first in a docker-archive, the last in an oci-archive); \
                     refusing an ambiguous archive",
                    cut(&path)
                )));
            }
            let target = match self.members.get(&path) {
                Some(&Member::File(offset, size)) if pending.is_empty() => {
                    return Ok((offset, size));
                }
                // a file on the way to something below it, or a directory: no member
                Some(Member::File(..)) | None => continue,
                Some(Member::Symlink(t)) => {
                    if t.starts_with(b"/") {
                        return Err(bad(format!(
                            "the link {} has an absolute target, outside the archive",
                            shown(&path, t)
                        )));
                    }
                    walked.pop();
                    t
                }
                Some(Member::Hardlink(t)) => {
                    walked.clear();
                    t
                }
            };
            links += 1;
            last_link = shown(&path, target);
            if links > MAX_LINKS {
                return Err(bad(format!(
                    "more than {MAX_LINKS} links followed (a loop, at {last_link})"
                )));
            }
            pending.extend(target.rsplit(|&b| b == b'/'));
        }
        Err(self.not_found(key))
    }

    /// Size of member `key` (a normalised relative path), following links.
    ///
    /// # Errors
    /// As [`TarIndex::open_member`].
    pub fn size(&self, key: &str) -> Result<u64> {
        self.locate(key).map(|(_, size)| size)
    }

    /// Opens member `key` (a normalised relative path), following links.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such member; a link out of the archive or a loop.
    pub fn open_member(&self, key: &str) -> Result<BlobReader> {
        let (offset, size) = self.locate(key)?;
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
        super::read_metadata(
            self.open_member(key)?,
            &format!("{} in {}", cut(key), self.name),
        )
    }
}
