//! Tar stream → normalised entries: paths, kinds, ownership, modes and xattrs as the layer
//! stage needs them, whatever header dialect (ustar, GNU long names, PAX) the tar used.
//! GNU sparse members come back as the real file ([`sparse`]); where a tar may end is
//! [`pad`]'s business, and what `.wh.` names mean is [`whiteout`]'s.

pub mod pad;
pub mod path;
pub mod pax;
pub mod sparse;
pub mod whiteout;
pub mod xattrs;

use std::io::Read;

use tar::EntryType;

use crate::error::LayerError;
pub use xattrs::Xattrs;

/// What kind of filesystem object an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file with `size` bytes of data following the header.
    File,
    /// A directory.
    Dir,
    /// A symbolic link to the given target (stored as written, never resolved at import).
    Symlink(String),
    /// A hardlink to another path of the tree (normalised like entry paths).
    Hardlink(Vec<String>),
    /// A character device (major, minor). OSTree cannot store it.
    CharDevice(u32, u32),
    /// A block device (major, minor). OSTree cannot store it.
    BlockDevice(u32, u32),
    /// A FIFO. OSTree cannot store it.
    Fifo,
}

impl EntryKind {
    /// A short noun for messages.
    pub fn describe(&self) -> String {
        match self {
            EntryKind::File => "regular file".into(),
            EntryKind::Dir => "directory".into(),
            EntryKind::Symlink(_) => "symlink".into(),
            EntryKind::Hardlink(_) => "hardlink".into(),
            EntryKind::CharDevice(a, b) => format!("character device {a}:{b}"),
            EntryKind::BlockDevice(a, b) => format!("block device {a}:{b}"),
            EntryKind::Fifo => "FIFO".into(),
        }
    }
}

/// One tar entry, normalised. The data (for files) is still in the tar stream.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Normalised path components (empty for the root).
    pub path: Vec<String>,
    /// The path as the tar wrote it, for messages.
    pub raw_path: String,
    /// The object kind.
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    /// Numeric owner (user and group names are ignored, as container runtimes do).
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Extended attributes, sorted by name.
    pub xattrs: Xattrs,
    /// Data size for regular files, 0 otherwise.
    pub size: u64,
}

/// PAX records of GNU tar's sparse formats 0.0, 0.1 and 1.0 start with this.
const SPARSE_PAX_PREFIX: &[u8] = b"GNU.sparse.";
/// What [`parse`] calls a sparse member it refuses.
const SPARSE: &str = "GNU sparse file";

/// Reads the header of a tar entry into an [`Entry`]. `Ok(None)` for entries that carry no
/// filesystem object (PAX global headers).
///
/// An old-style regular file (type `\0`) whose name ends in `/` is a directory, as GNU tar,
/// Go's archive/tar and Python read it (type `0` stays a file, as Go reads it); with data, it
/// is refused as [`LayerError::AmbiguousEntry`] (Go reads none, tar-rs skips it).
///
/// # Errors
/// Malformed or ambiguous headers, unsafe or non-UTF-8 paths, symlink targets no Linux
/// filesystem can hold, and entry types ocitree does not support, sparse files included (see
/// [`parse_sparse`]).
pub fn parse<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    pax: Option<&[u8]>,
) -> Result<Option<Entry>, LayerError> {
    match parse_sparse(entry, pax)? {
        Some((e, Some(_))) => Err(LayerError::UnsupportedEntry {
            path: e.raw_path,
            kind: SPARSE.into(),
        }),
        other => Ok(other.map(|(e, _)| e)),
    }
}

/// [`parse`], accepting GNU sparse members: a sparse member comes back as a regular file at
/// its real name, of its real size, with its [`sparse::Sparse`] description (for type `S`,
/// whose data tar-rs expands, without the map; for PAX 1.0, the map is in the data).
///
/// # Errors
/// As [`parse`]; and sparse records that do not make sense.
pub fn parse_sparse<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    pax: Option<&[u8]>,
) -> Result<Option<(Entry, Option<sparse::Sparse>)>, LayerError> {
    let header = entry.header();
    let etype = header.entry_type();
    let raw = entry.path_bytes().into_owned();
    let raw_path = path::lossy(&raw);
    let read_err = |e: std::io::Error| {
        LayerError::Read(std::io::Error::new(
            e.kind(),
            format!("entry {raw_path:?}: {e}"),
        ))
    };
    let unsupported = |kind: &str| LayerError::UnsupportedEntry {
        path: raw_path.clone(),
        kind: kind.to_string(),
    };
    let ambiguous = |reason: String| LayerError::AmbiguousEntry {
        path: raw_path.clone(),
        reason,
    };
    let mut uid = header.uid().map_err(read_err)?;
    let mut gid = header.gid().map_err(read_err)?;
    let mode = header.mode().map_err(read_err)? & 0o7777;
    let mut xattrs = Xattrs::new();
    // PAX path and linkpath, when the raw records are at hand (tar-rs may have lost them).
    let mut pax_path = None;
    let mut pax_link = None;
    let mut sparse = None;
    if let Some(data) = pax {
        let records = pax::records(data).map_err(read_err)?;
        sparse = sparse::from_pax(&records)
            .map_err(|why| unsupported(&format!("GNU sparse file with invalid records ({why})")))?;
        for (key, value) in records {
            let parse_id = || {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse::<u64>().ok())
            };
            match key {
                b"uid" => uid = parse_id().ok_or_else(|| unsupported("PAX uid"))?,
                b"gid" => gid = parse_id().ok_or_else(|| unsupported("PAX gid"))?,
                b"path" => pax_path = Some(value.to_vec()),
                b"linkpath" => pax_link = Some(value.to_vec()),
                _ => {
                    if let Some(name) = key.strip_prefix(xattrs::PAX_PREFIX.as_bytes()) {
                        xattrs.retain(|(n, _)| n != name);
                        xattrs.push((name.to_vec(), value.to_vec()));
                    }
                }
            }
        }
        xattrs.sort();
    } else if let Some(exts) = entry.pax_extensions().map_err(read_err)? {
        let exts: Vec<_> = exts.collect();
        for ext in exts.iter().flatten() {
            let parse_id = || ext.value().ok().and_then(|v| v.parse::<u64>().ok());
            match ext.key_bytes() {
                b"uid" => uid = parse_id().ok_or_else(|| unsupported("PAX uid"))?,
                b"gid" => gid = parse_id().ok_or_else(|| unsupported("PAX gid"))?,
                // the raw records were not at hand: sparse maps cannot be read reliably
                k if k.starts_with(SPARSE_PAX_PREFIX) => return Err(unsupported(SPARSE)),
                _ => {}
            }
        }
        xattrs = xattrs::from_pax(exts.into_iter()).map_err(read_err)?;
    }
    let id = |v: u64, what: &str| {
        u32::try_from(v).map_err(|_| unsupported(&format!("{what} {v} (above 2^32)")))
    };
    let (uid, gid) = (id(uid, "uid")?, id(gid, "gid")?);
    let link_target = || -> Result<Vec<u8>, LayerError> {
        pax_link
            .clone()
            .or_else(|| entry.link_name_bytes().map(|c| c.into_owned()))
            .ok_or_else(|| unsupported("link without a target"))
    };
    let header = entry.header();
    let device = || -> Result<(u32, u32), LayerError> {
        Ok((
            header.device_major().map_err(read_err)?.unwrap_or(0),
            header.device_minor().map_err(read_err)?.unwrap_or(0),
        ))
    };
    let kind = match etype {
        // Old archives wrote directories as regular files (type `\0`, not `0`) named with a
        // trailing slash; GNU tar, Go and Python read them as directories.
        EntryType::Regular
            if header.as_bytes()[156] == 0
                && pax_path.as_deref().unwrap_or(&raw).ends_with(b"/") =>
        {
            if entry.size() > 0 {
                return Err(ambiguous(format!(
                    "directory (type '\\0', named with a trailing slash) with {} bytes of data \
                     (Go's archive/tar reads no data for a directory and takes the next header \
                     from where it starts; tar-rs skips it)",
                    entry.size()
                )));
            }
            EntryKind::Dir
        }
        EntryType::Regular | EntryType::Continuous => EntryKind::File,
        EntryType::Directory => EntryKind::Dir,
        EntryType::Symlink => {
            let target = link_target()?;
            if target.contains(&0) {
                return Err(unsupported("symlink target with a NUL byte"));
            }
            if target.len() > path::SYMLINK_MAX {
                return Err(unsupported(&format!(
                    "symlink target of {} bytes (longer than {}: Linux cannot create the \
                     symlink)",
                    target.len(),
                    path::SYMLINK_MAX
                )));
            }
            EntryKind::Symlink(
                String::from_utf8(target).map_err(|e| LayerError::NonUtf8Name {
                    path: raw_path.clone(),
                    bytes: format!("symlink target {}", path::escape_bytes(e.as_bytes())),
                })?,
            )
        }
        EntryType::Link => {
            let target = link_target()?;
            EntryKind::Hardlink(path::normalize(&target).map_err(|e| match e {
                LayerError::PathEscapesRoot { path } => LayerError::BadHardlink {
                    path: raw_path.clone(),
                    target: path,
                    reason: "escapes the root",
                },
                other => other,
            })?)
        }
        EntryType::Char => {
            let (a, b) = device()?;
            EntryKind::CharDevice(a, b)
        }
        EntryType::Block => {
            let (a, b) = device()?;
            EntryKind::BlockDevice(a, b)
        }
        EntryType::Fifo => EntryKind::Fifo,
        EntryType::XGlobalHeader => return Ok(None),
        EntryType::GNUSparse => {
            sparse = Some(sparse::Sparse {
                format: sparse::Format::OldGnu,
                real_size: entry.size(),
                map: Vec::new(),
                name: None,
            });
            EntryKind::File
        }
        other => {
            return Err(unsupported(&format!(
                "tar entry type {:?}",
                other.as_byte() as char
            )));
        }
    };
    let size = if kind == EntryKind::File {
        entry.size()
    } else {
        0
    };
    if sparse.is_some() && kind != EntryKind::File {
        return Err(unsupported(
            "GNU sparse records on an entry that is not a file",
        ));
    }
    let size = sparse.as_ref().map_or(size, |s| s.real_size);
    let name = sparse.as_ref().and_then(|s| s.name.as_deref());
    let entry = Entry {
        path: path::normalize(name.or(pax_path.as_deref()).unwrap_or(&raw))?,
        raw_path,
        kind,
        mode,
        uid,
        gid,
        xattrs,
        size,
    };
    Ok(Some((entry, sparse)))
}
