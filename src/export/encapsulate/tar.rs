//! One layer of an encapsulated commit as a deterministic tar: POSIX ustar headers with PAX
//! records where ustar cannot say it (xattrs as `SCHILY.xattr.NAME`, binary-safe and sorted;
//! long paths and link targets; ids and sizes beyond the octal fields), every directory named
//! (the root as `./`), numeric owners, the full mode with setuid/setgid/sticky, symlink
//! targets byte for byte, and the second and later paths of a regular file object as
//! hardlinks to the first. Every entry has the same mtime. File data streams from the
//! repository: memory does not grow with file size.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use ostree::gio::prelude::*;
use ostree::{ObjectType, Repo, gio, glib};

use crate::error::{Error, Result};
use crate::export::encapsulate::walk::{Kind, Node};

/// Largest value of an 8-byte octal field (uid, gid, mode).
const OCTAL_7: u64 = 0o7777777;
/// Largest value of the 12-byte octal size field.
const OCTAL_11: u64 = 0o77777777777;

/// Owner, mode and xattrs of one entry.
#[derive(Clone, Debug, Default)]
pub(super) struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Writes layers of one commit, caching dirmeta objects across layers.
#[derive(Debug)]
pub struct TarWriter<'r> {
    repo: &'r Repo,
    rev: String,
    mtime: u64,
    dirmeta: HashMap<String, Meta>,
}

/// Why an xattr cannot travel in a PAX record, if it cannot: a PAX key holds no `=`, newline
/// or NUL. Values are length-prefixed and may hold any byte (ocitree's import parses them so,
/// see [`crate::entries::pax`]).
fn xattr_problem(name: &[u8], _value: &[u8]) -> Option<String> {
    let shown = String::from_utf8_lossy(name);
    if name.is_empty() || name.contains(&b'=') || name.contains(&b'\n') || name.contains(&0) {
        Some(format!("xattr name {shown:?} cannot be a PAX key"))
    } else {
        None
    }
}

fn ostree_io(op: String) -> impl FnOnce(glib::Error) -> io::Error {
    move |e| io::Error::other(format!("{op}: {e}"))
}

/// OSTree's xattrs (names NUL-terminated, as `a(ayay)` stores them) → (name without its NUL,
/// value), sorted by name.
pub(crate) fn xattrs_of(x: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = x
        .into_iter()
        .map(|(mut n, val)| {
            if n.last() == Some(&0) {
                n.pop();
            }
            (n, val)
        })
        .collect();
    out.sort();
    out
}

/// One PAX record: `"<len> <key>=<value>\n"`, the length counting itself.
fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn pad(out: &mut dyn Write, len: u64) -> io::Result<()> {
    let rem = (512 - len % 512) % 512;
    out.write_all(&[0u8; 512][..rem as usize])
}

fn copy_field(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// What one tar entry is.
pub(super) enum Entry<'a> {
    Dir,
    File { size: u64, data: &'a mut dyn Read },
    Symlink(&'a [u8]),
    Hardlink(&'a [u8]),
}

impl<'r> TarWriter<'r> {
    /// A writer for commits of `repo` giving every entry `mtime`; `rev` names the commit in
    /// errors.
    pub fn new(repo: &'r Repo, rev: &str, mtime: u64) -> Self {
        TarWriter {
            repo,
            rev: rev.to_string(),
            mtime,
            dirmeta: HashMap::new(),
        }
    }

    fn dir_meta(&mut self, csum: &str) -> io::Result<Meta> {
        if let Some(m) = self.dirmeta.get(csum) {
            return Ok(m.clone());
        }
        let v = self
            .repo
            .load_variant(ObjectType::DirMeta, csum)
            .map_err(ostree_io(format!("loading dirmeta {csum}")))?;
        let p = ostree::DirMetaParsed::from_variant(&v)
            .map_err(|e| io::Error::other(format!("parsing dirmeta {csum}: {e}")))?;
        let m = Meta {
            uid: p.uid,
            gid: p.gid,
            mode: p.mode & 0o7777,
            xattrs: xattrs_of(p.xattrs),
        };
        self.dirmeta.insert(csum.to_string(), m.clone());
        Ok(m)
    }

    /// Writes the tar of the `nodes` for which `wanted` holds, in their order, then the
    /// end-of-archive blocks. Regular files whose content object already appeared in this
    /// tar become hardlinks to its first path.
    ///
    /// # Errors
    /// [`Error::Unencapsulable`] for an xattr no PAX record can carry back; an object is
    /// missing or shorter than it says, or writing fails ([`Error::Io`]).
    pub fn write(
        &mut self,
        nodes: &[Node],
        wanted: &mut dyn FnMut(&Node) -> bool,
        out: &mut dyn Write,
    ) -> Result<()> {
        let mut first_path: HashMap<&str, (&str, Meta)> = HashMap::new();
        for node in nodes.iter().filter(|n| wanted(n)) {
            match &node.kind {
                Kind::Dir { meta, .. } => {
                    let m = self.dir_meta(meta).map_err(self.io(&node.path))?;
                    self.check(&node.path, &m)?;
                    let name = if node.path.is_empty() {
                        "./".to_string()
                    } else {
                        format!("{}/", node.path)
                    };
                    self.entry(out, name.as_bytes(), &m, Entry::Dir)
                        .map_err(self.io(&node.path))?;
                }
                Kind::Content { checksum } => {
                    if let Some((target, m)) = first_path.get(checksum.as_str()) {
                        let m = m.clone();
                        let target = target.as_bytes();
                        self.entry(out, node.path.as_bytes(), &m, Entry::Hardlink(target))
                            .map_err(self.io(&node.path))?;
                        continue;
                    }
                    let (input, info, xattrs) = self
                        .repo
                        .load_file(checksum, gio::Cancellable::NONE)
                        .map_err(Error::ostree(format!(
                            "loading /{} (object {checksum}) of {}",
                            node.path, self.rev
                        )))?;
                    let m = Meta {
                        uid: info.attribute_uint32("unix::uid"),
                        gid: info.attribute_uint32("unix::gid"),
                        mode: info.attribute_uint32("unix::mode") & 0o7777,
                        xattrs: xattrs_of(xattrs.get().unwrap_or_default()),
                    };
                    self.check(&node.path, &m)?;
                    if info.file_type() == gio::FileType::SymbolicLink {
                        let target = symlink_target(&self.rev, &node.path, &info)?;
                        self.entry(out, node.path.as_bytes(), &m, Entry::Symlink(&target))
                            .map_err(self.io(&node.path))?;
                        continue;
                    }
                    let size = u64::try_from(info.size()).unwrap_or(0);
                    let mut data: Box<dyn Read> = match input {
                        Some(i) => Box::new(i.into_read()),
                        None => Box::new(io::empty()),
                    };
                    self.entry(
                        out,
                        node.path.as_bytes(),
                        &m,
                        Entry::File {
                            size,
                            data: &mut data,
                        },
                    )
                    .map_err(self.io(&node.path))?;
                    first_path.insert(checksum, (node.path.as_str(), m));
                }
            }
        }
        out.write_all(&[0u8; 1024]).map_err(self.io(""))
    }

    fn io(&self, path: &str) -> impl FnOnce(io::Error) -> Error + use<> {
        let context = format!("writing /{path} of {} into a layer", self.rev);
        move |cause| Error::Io { context, cause }
    }

    fn check(&self, path: &str, m: &Meta) -> Result<()> {
        match m.xattrs.iter().find_map(|(n, v)| xattr_problem(n, v)) {
            Some(reason) => Err(Error::Unencapsulable {
                rev: self.rev.clone(),
                path: path.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    fn entry(
        &self,
        out: &mut dyn Write,
        path: &[u8],
        m: &Meta,
        entry: Entry<'_>,
    ) -> io::Result<()> {
        write_entry(out, path, m, entry, self.mtime)
    }
}

/// The target of symlink `info` at `path`: UTF-8, or the tree cannot be carried (libostree
/// commits other targets, with a warning, but refuses them on import, as ocitree does).
///
/// # Errors
/// [`Error::Unencapsulable`] for a target that is not UTF-8.
pub(crate) fn symlink_target(rev: &str, path: &str, info: &gio::FileInfo) -> Result<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let target = info.symlink_target().unwrap_or_default();
    let bytes = target.as_os_str().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(bytes.to_vec()),
        Err(_) => Err(Error::Unencapsulable {
            rev: rev.to_string(),
            path: path.to_string(),
            reason: format!(
                "its symlink target is not UTF-8 (bytes {}): OSTree refuses to import it",
                crate::entries::path::escape_bytes(bytes)
            ),
        }),
    }
}

/// Writes one entry with every header field set and `mtime`: PAX header if needed, ustar
/// header, data and padding.
pub(super) fn write_entry(
    out: &mut dyn Write,
    path: &[u8],
    m: &Meta,
    entry: Entry<'_>,
    mtime: u64,
) -> io::Result<()> {
    let (etype, size, link) = match &entry {
        Entry::Dir => (tar::EntryType::Directory, 0, None),
        Entry::File { size, .. } => (tar::EntryType::Regular, *size, None),
        Entry::Symlink(t) => (tar::EntryType::Symlink, 0, Some(*t)),
        Entry::Hardlink(t) => (tar::EntryType::Link, 0, Some(*t)),
    };
    let mut pax = Vec::new();
    if path.len() > 100 {
        pax_record(&mut pax, b"path", path);
    }
    if let Some(l) = link.filter(|l| l.len() > 100) {
        pax_record(&mut pax, b"linkpath", l);
    }
    if size > OCTAL_11 {
        pax_record(&mut pax, b"size", size.to_string().as_bytes());
    }
    if u64::from(m.uid) > OCTAL_7 {
        pax_record(&mut pax, b"uid", m.uid.to_string().as_bytes());
    }
    if u64::from(m.gid) > OCTAL_7 {
        pax_record(&mut pax, b"gid", m.gid.to_string().as_bytes());
    }
    for (name, value) in &m.xattrs {
        let mut key = b"SCHILY.xattr.".to_vec();
        key.extend_from_slice(name);
        pax_record(&mut pax, &key, value);
    }
    if !pax.is_empty() {
        let mut h = tar::Header::new_ustar();
        copy_field(&mut h.as_old_mut().name, b"././@PaxHeader");
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime);
        h.set_size(pax.len() as u64);
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_cksum();
        out.write_all(h.as_bytes())?;
        out.write_all(&pax)?;
        pad(out, pax.len() as u64)?;
    }
    let mut h = tar::Header::new_ustar();
    copy_field(&mut h.as_old_mut().name, path);
    if let Some(l) = link {
        copy_field(&mut h.as_old_mut().linkname, l);
    }
    h.set_mode(m.mode);
    h.set_uid(u64::from(m.uid).min(OCTAL_7));
    h.set_gid(u64::from(m.gid).min(OCTAL_7));
    h.set_mtime(mtime);
    h.set_size(size.min(OCTAL_11));
    h.set_entry_type(etype);
    h.set_cksum();
    out.write_all(h.as_bytes())?;
    if let Entry::File { size, data } = entry {
        let copied = io::copy(&mut data.take(size), out)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("object has {copied} of its {size} bytes"),
            ));
        }
        pad(out, size)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattrs_that_cannot_travel() {
        assert!(xattr_problem(b"user.a", b"\x00\xff").is_none());
        assert!(xattr_problem(b"user.a", b"x\ny").is_none());
        assert!(xattr_problem(b"user.a=b", b"").is_some());
        assert!(xattr_problem(b"", b"").is_some());
    }

    #[test]
    fn pax_record_lengths_count_themselves() {
        for (k, v) in [
            (&b"path"[..], vec![b'a'; 1]),
            (b"path", vec![b'a'; 90]),
            (b"path", vec![b'a'; 93]),
            (b"SCHILY.xattr.user.x", vec![0, 0xff, b'\n']),
        ] {
            let mut rec = Vec::new();
            pax_record(&mut rec, k, &v);
            let sp = rec.iter().position(|&b| b == b' ').unwrap();
            let len: usize = std::str::from_utf8(&rec[..sp]).unwrap().parse().unwrap();
            assert_eq!(len, rec.len());
            assert_eq!(*rec.last().unwrap(), b'\n');
        }
    }

    #[test]
    fn headers_read_back_with_tar_rs() {
        let mut pax = Vec::new();
        pax_record(&mut pax, b"SCHILY.xattr.user.b", b"\x00\x01");
        pax_record(&mut pax, b"path", "d/".repeat(80).as_bytes());
        let mut h = tar::Header::new_ustar();
        h.set_size(pax.len() as u64);
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_cksum();
        let mut t = h.as_bytes().to_vec();
        t.extend_from_slice(&pax);
        pad(&mut t, pax.len() as u64).unwrap();
        let mut f = tar::Header::new_ustar();
        f.set_size(0);
        f.set_cksum();
        t.extend_from_slice(f.as_bytes());
        t.extend_from_slice(&[0; 1024]);
        let mut a = tar::Archive::new(&t[..]);
        let mut e = a.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*e.path_bytes(), "d/".repeat(80).as_bytes());
        let x: Vec<_> = e
            .pax_extensions()
            .unwrap()
            .unwrap()
            .map(|r| r.unwrap().value_bytes().to_vec())
            .collect();
        assert_eq!(x[0], b"\x00\x01");
    }
}
