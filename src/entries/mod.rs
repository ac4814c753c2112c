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

/// The extension records a member's header came with, as the raw stream had them: tar-rs
/// applies GNU long names and links (`L`, `K`) without saying so, and loses PAX values holding
/// newlines ([`pax`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extensions {
    /// The data of the member's PAX extended header (`x`), if it had one.
    pub pax: Option<Vec<u8>>,
    /// Whether a GNU long name (`L`) came before the header.
    pub long_name: bool,
    /// Whether a GNU long link name (`K`) did.
    pub long_link: bool,
}

/// PAX records of GNU tar's sparse formats 0.0, 0.1 and 1.0 start with this.
const SPARSE_PAX_PREFIX: &[u8] = b"GNU.sparse.";
/// What [`parse`] calls a sparse member it refuses.
const SPARSE: &str = "GNU sparse file";

/// Reads the header of a tar entry into an [`Entry`]. `Ok(None)` for entries that carry no
/// filesystem object (PAX global headers). `ext` is what came before the header, read from the
/// raw stream; without it, tar-rs's view has to do.
///
/// A member is refused as [`LayerError::AmbiguousEntry`] where tar readers disagree on its
/// names: a GNU long name and a PAX `path` (GNU tar takes one, Go's archive/tar the other), a
/// GNU long link name and a PAX `linkpath`, or an empty PAX `path` or `linkpath` (POSIX
/// deletes the keyword, GNU tar reads `.`).
///
/// An old-style regular file (type `\0`) whose name ends in `/` is a directory, as GNU tar,
/// Go's archive/tar and Python read it (type `0` stays a file, as Go reads it); with data, it
/// is refused as ambiguous too (Go reads none, tar-rs skips it).
///
/// # Errors
/// Malformed or ambiguous headers, unsafe or non-UTF-8 paths, symlink targets no Linux
/// filesystem can hold, and entry types ocitree does not support, sparse files included (see
/// [`parse_sparse`]).
pub fn parse<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    ext: Option<&Extensions>,
) -> Result<Option<Entry>, LayerError> {
    match parse_sparse(entry, ext)? {
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
    ext: Option<&Extensions>,
) -> Result<Option<(Entry, Option<sparse::Sparse>)>, LayerError> {
    let header = entry.header();
    let etype = header.entry_type();
    let raw = entry.path_bytes().into_owned();
    let raw_path = path::lossy(&raw);
    let header_name = path::lossy(&header.path_bytes());
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
    // tar-rs reads an empty PAX path as the name: the header's own names the entry
    let empty = |key: &str| LayerError::AmbiguousEntry {
        path: match key {
            "path" => header_name.clone(),
            _ => raw_path.clone(),
        },
        reason: format!("empty PAX {key} record (POSIX removes the keyword, GNU tar reads \".\")"),
    };
    let mut uid = header.uid().map_err(read_err)?;
    let mut gid = header.gid().map_err(read_err)?;
    let mode = header.mode().map_err(read_err)? & 0o7777;
    let mut xattrs = Xattrs::new();
    // PAX path and linkpath, when the raw records are at hand (tar-rs may have lost them).
    let mut pax_path = None;
    let mut pax_link = None;
    let mut pax_size: Option<u64> = None;
    let mut sparse = None;
    // tar-rs's PAX path and linkpath, when the raw records are not at hand
    let mut pax_view: (Option<Vec<u8>>, Option<Vec<u8>>) = (None, None);
    if let Some(data) = ext.and_then(|x| x.pax.as_deref()) {
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
                b"path" if value.is_empty() => return Err(empty("path")),
                b"linkpath" if value.is_empty() => return Err(empty("linkpath")),
                b"path" => pax_path = Some(value.to_vec()),
                b"linkpath" => pax_link = Some(value.to_vec()),
                b"size" => pax_size = Some(parse_id().ok_or_else(|| unsupported("PAX size"))?),
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
                b"path" if ext.value_bytes().is_empty() => return Err(empty("path")),
                b"linkpath" if ext.value_bytes().is_empty() => return Err(empty("linkpath")),
                // tar-rs prefers GNU long names to PAX records: if it read another name, a
                // GNU record gave it
                b"path" => pax_view.0 = Some(ext.value_bytes().to_vec()),
                b"linkpath" => pax_view.1 = Some(ext.value_bytes().to_vec()),
                // the raw records were not at hand: sparse maps cannot be read reliably
                k if k.starts_with(SPARSE_PAX_PREFIX) => return Err(unsupported(SPARSE)),
                _ => {}
            }
        }
        xattrs = xattrs::from_pax(exts.into_iter()).map_err(read_err)?;
    }
    if let Some((name, why)) = xattrs
        .iter()
        .find_map(|(n, _)| xattrs::invalid(n).map(|why| (n, why)))
    {
        let name = path::escape_bytes(name);
        return Err(unsupported(&format!(
            "extended attribute \"{name}\": it {why}"
        )));
    }
    let long = |kind: &str, gnu: &[u8], key: &str, pax: &[u8]| {
        ambiguous(format!(
            "GNU long {kind} {:?} and PAX {key} {:?} both given (GNU tar takes one, Go's \
             archive/tar the other)",
            path::lossy(gnu),
            path::lossy(pax),
        ))
    };
    let (long_name, long_link) = match ext {
        Some(x) => (x.long_name, x.long_link),
        None => (
            pax_view.0.as_ref().is_some_and(|p| *p != *raw),
            pax_view
                .1
                .as_ref()
                .is_some_and(|l| entry.link_name_bytes().is_some_and(|t| *t != **l)),
        ),
    };
    if long_name && let Some(p) = pax_path.as_ref().or(pax_view.0.as_ref()) {
        return Err(long("name", &raw, "path", p));
    }
    if long_link && let Some(l) = pax_link.as_ref().or(pax_view.1.as_ref()) {
        let gnu = entry.link_name_bytes().unwrap_or_default().into_owned();
        return Err(long("link name", &gnu, "linkpath", l));
    }
    // tar-rs splits PAX data at newlines: a record whose value holds a newline and what reads
    // as another record (`\n15 path=forged\n` in an xattr) gives it a name, a link target or
    // a size no length-aware reader (GNU tar, Go, ocitree's own parse) sees. Where the raw
    // records are at hand, tar-rs must agree with them.
    if ext.is_some_and(|x| x.pax.is_some()) {
        let forged = |what: &str| {
            ambiguous(format!(
                "the PAX records give another {what} than tar-rs reads from them (a record's \
                 value holds a newline and what reads as another record)"
            ))
        };
        // tar-rs missing a record (a value holding a newline: it then reads the header's
        // field) is harmless, as ocitree takes the record itself; reading one that is not
        // there is not.
        let header = entry.header();
        let header_name = header.path_bytes().into_owned();
        if !long_name && raw != header_name && pax_path.as_deref() != Some(&raw[..]) {
            return Err(forged("name"));
        }
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let header_link = header.link_name_bytes().map(|l| l.into_owned());
        if !long_link && link != header_link && pax_link != link {
            return Err(forged("link target"));
        }
        let header_size = header.entry_size().map_err(read_err)?;
        if etype != EntryType::GNUSparse && pax_size.unwrap_or(header_size) != entry.size() {
            return Err(forged("size"));
        }
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
                    what: crate::error::NonUtf8::SymlinkTarget,
                    bytes: path::escape_bytes(e.as_bytes()),
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
    // Go's archive/tar reads no data for these and takes the next header where it starts;
    // tar-rs skips `size` bytes: a hidden member for one is none for the other.
    if kind != EntryKind::File && entry.size() > 0 {
        return Err(ambiguous(format!(
            "a {} header with {} bytes of data (Go's archive/tar reads none and takes the next \
             header from where it starts; tar-rs skips them)",
            kind.describe(),
            entry.size()
        )));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A GNU long name or link (written by tar-rs for names over 100 bytes) and a PAX record
    /// for the same member.
    fn long_and_pax(kind: EntryType, key: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([(key, &b"pax"[..])]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        let long = "g".repeat(120);
        if kind == EntryType::Regular {
            b.append_data(&mut h, &long, &[][..]).unwrap();
        } else {
            b.append_link(&mut h, "l", &long).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn first(tar: &[u8], ext: Option<&Extensions>) -> Result<Option<Entry>, LayerError> {
        let mut a = tar::Archive::new(tar);
        let mut entry = a.entries().unwrap().next().unwrap().unwrap();
        parse(&mut entry, ext)
    }

    /// A GNU long name and a PAX path (or long link and linkpath) are refused, whether the
    /// layer stage read the records before the header (`ext`) or tar-rs's view has to do.
    #[test]
    fn gnu_long_names_with_pax_paths_are_ambiguous() {
        for (kind, key, flags) in [
            (EntryType::Regular, "path", (true, false)),
            (EntryType::Symlink, "linkpath", (false, true)),
        ] {
            let tar = long_and_pax(kind, key);
            let ext = Extensions {
                pax: Some(format!("{} {key}=pax\n", key.len() + 8).into_bytes()),
                long_name: flags.0,
                long_link: flags.1,
            };
            for ext in [None, Some(&ext)] {
                let e = first(&tar, ext).unwrap_err().to_string();
                assert!(
                    e.contains("ambiguous")
                        && e.contains(&"g".repeat(120))
                        && e.contains("\"pax\""),
                    "{e}"
                );
            }
        }
        // either one alone is fine
        let mut b = tar::Builder::new(Vec::new());
        b.append_pax_extensions([("path", &b"pax"[..])]).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, "hdr", &[][..]).unwrap();
        let tar = b.into_inner().unwrap();
        let ext = Extensions {
            pax: Some(b"12 path=pax\n".to_vec()),
            ..Extensions::default()
        };
        for ext in [None, Some(&ext)] {
            assert_eq!(first(&tar, ext).unwrap().unwrap().path, ["pax"]);
        }
    }

    /// An empty PAX path or linkpath is refused, in both views, naming the header's name.
    #[test]
    fn empty_pax_paths_are_ambiguous() {
        for (key, kind, record) in [
            ("path", EntryType::Regular, &b"8 path=\n"[..]),
            ("linkpath", EntryType::Symlink, b"13 linkpath=\n"),
        ] {
            let mut b = tar::Builder::new(Vec::new());
            b.append_pax_extensions([(key, &b""[..])]).unwrap();
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            b.append_link(&mut h, "hdr", "target").unwrap();
            let tar = b.into_inner().unwrap();
            let ext = Extensions {
                pax: Some(record.to_vec()),
                ..Extensions::default()
            };
            for ext in [None, Some(&ext)] {
                let e = first(&tar, ext).unwrap_err().to_string();
                assert!(
                    e.contains("entry \"hdr\"") && e.contains(&format!("empty PAX {key}")),
                    "{e}"
                );
            }
        }
    }
}
