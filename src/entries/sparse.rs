//! GNU sparse files: the map of data segments, and the expanded file.
//!
//! GNU tar (`--sparse`) stores a file with holes as its data segments only, plus a map of
//! where they go: in the old GNU format as type `S` members (map in the header and in
//! extension blocks after it; tar-rs expands those itself), in PAX formats 0.0 and 0.1 as
//! `GNU.sparse.*` records, and in PAX format 1.0 as decimal lines at the start of the member's
//! data (the member is named `GNUSparseFile.N/NAME`, the real name is `GNU.sparse.name`).
//! ocitree imports the real file — real name, real size, holes as zeros — streaming, with
//! memory bounded by the map ([`MAX_SEGMENTS`]); the map goes into the tar-split so that
//! export rebuilds the member's stored bytes from the expanded object.

use std::io::{self, Read};

/// Most segments a sparse map may list (16 bytes each in memory).
pub const MAX_SEGMENTS: usize = 1 << 16;
/// Most bytes a PAX 1.0 map may take at the start of the data.
const MAX_MAP_BYTES: u64 = 64 * 1024 * 1024;
const BLOCK: usize = 512;

/// Which of GNU tar's sparse formats a member uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Type `S` (`--format=gnu`).
    OldGnu,
    /// PAX 0.0: repeated `GNU.sparse.offset` / `GNU.sparse.numbytes` records.
    Pax00,
    /// PAX 0.1: one `GNU.sparse.map` record.
    Pax01,
    /// PAX 1.0: the map at the start of the data.
    Pax10,
}

/// A sparse member's description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sparse {
    /// The format.
    pub format: Format,
    /// The size of the expanded file.
    pub real_size: u64,
    /// Data segments `(offset, length)` in the expanded file, in order. Empty for PAX 1.0
    /// until [`read_pax10_map`] has read them from the data.
    pub map: Vec<(u64, u64)>,
    /// The real file name (`GNU.sparse.name`), when the records give one.
    pub name: Option<Vec<u8>>,
}

fn bad(why: impl Into<String>) -> String {
    why.into()
}

fn number(v: &[u8], what: &str) -> Result<u64, String> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| bad(format!("{what} is not a number")))
}

/// The sparse description in a member's PAX records, if any (`GNU.sparse.*`).
///
/// # Errors
/// The records are inconsistent or not numbers.
pub fn from_pax(records: &[(&[u8], &[u8])]) -> Result<Option<Sparse>, String> {
    let get = |k: &[u8]| records.iter().rev().find(|(n, _)| *n == k).map(|r| r.1);
    if !records.iter().any(|(k, _)| k.starts_with(b"GNU.sparse.")) {
        return Ok(None);
    }
    let name = get(b"GNU.sparse.name").map(<[u8]>::to_vec);
    if let (Some(major), Some(minor)) = (get(b"GNU.sparse.major"), get(b"GNU.sparse.minor")) {
        if (major, minor) != (&b"1"[..], &b"0"[..]) {
            return Err(bad("unknown GNU sparse format version"));
        }
        let real_size = number(
            get(b"GNU.sparse.realsize").ok_or("no GNU.sparse.realsize")?,
            "GNU.sparse.realsize",
        )?;
        return Ok(Some(Sparse {
            format: Format::Pax10,
            real_size,
            map: Vec::new(),
            name,
        }));
    }
    let real_size = number(
        get(b"GNU.sparse.size").ok_or("no GNU.sparse.size")?,
        "GNU.sparse.size",
    )?;
    let count = number(
        get(b"GNU.sparse.numblocks").ok_or("no GNU.sparse.numblocks")?,
        "GNU.sparse.numblocks",
    )?;
    if count > MAX_SEGMENTS as u64 {
        return Err(bad(format!("more than {MAX_SEGMENTS} segments")));
    }
    let (format, numbers) = if let Some(map) = get(b"GNU.sparse.map") {
        let nums = map
            .split(|&b| b == b',')
            .map(|n| number(n, "GNU.sparse.map"))
            .collect::<Result<Vec<_>, _>>()?;
        (Format::Pax01, nums)
    } else {
        let nums = records
            .iter()
            .filter(|(k, _)| *k == b"GNU.sparse.offset" || *k == b"GNU.sparse.numbytes")
            .map(|(k, v)| number(v, &String::from_utf8_lossy(k)))
            .collect::<Result<Vec<_>, _>>()?;
        (Format::Pax00, nums)
    };
    if numbers.len() as u64 != 2 * count {
        return Err(bad("the map does not list GNU.sparse.numblocks segments"));
    }
    let map = numbers.chunks(2).map(|c| (c[0], c[1])).collect();
    Ok(Some(Sparse {
        format,
        real_size,
        map,
        name,
    }))
}

/// A tar numeric field: octal, or base-256 when its first byte has the high bit set.
fn tar_number(field: &[u8]) -> Result<u64, String> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut n: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            n = n
                .checked_mul(256)
                .and_then(|n| n.checked_add(u64::from(b)))
                .ok_or("sparse map number past 2^64")?;
        }
        return Ok(n);
    }
    let s = std::str::from_utf8(field).map_err(|_| "sparse map number is not octal")?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(s, 8).map_err(|_| bad("sparse map number is not octal"))
}

/// Appends the `(offset, length)` entries of `count` 24-byte slots at `slots` to `map`,
/// stopping at the first empty one.
fn old_gnu_slots(slots: &[u8], map: &mut Vec<(u64, u64)>) -> Result<(), String> {
    for slot in slots.chunks_exact(24) {
        if slot.iter().all(|&b| b == 0) {
            break;
        }
        if map.len() >= MAX_SEGMENTS {
            return Err(bad(format!("more than {MAX_SEGMENTS} segments")));
        }
        map.push((tar_number(&slot[..12])?, tar_number(&slot[12..])?));
    }
    Ok(())
}

/// The map of an old GNU sparse member (type `S`): four slots in the header, then, while the
/// header or the last extension block says so, 21 more in each 512-byte extension block
/// `next_block` gives. Returns the map and how many extension blocks it read.
///
/// # Errors
/// A number is malformed, an extension block is missing, or the map is too large.
pub fn old_gnu_map(
    header: &[u8; BLOCK],
    next_block: &mut dyn FnMut(u64) -> Option<Vec<u8>>,
) -> Result<(Vec<(u64, u64)>, u64), String> {
    let mut map = Vec::new();
    old_gnu_slots(&header[386..482], &mut map)?;
    let mut extended = header[482] != 0;
    let mut blocks = 0;
    while extended {
        let b = next_block(blocks).ok_or("missing sparse extension block")?;
        if b.len() != BLOCK {
            return Err(bad("short sparse extension block"));
        }
        old_gnu_slots(&b[..504], &mut map)?;
        extended = b[504] != 0;
        blocks += 1;
    }
    Ok((map, blocks))
}

/// Reads the PAX 1.0 map at the start of a member's data: decimal lines (segment count, then
/// offset and length of each), padded to a 512-byte block. Returns the map and how many
/// bytes it took.
///
/// # Errors
/// Reading fails, or the map is malformed or too large.
pub fn read_pax10_map(data: &mut dyn Read) -> io::Result<(Vec<(u64, u64)>, u64)> {
    let invalid = |why: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("GNU sparse 1.0 map: {why}"),
        )
    };
    let mut numbers: Vec<u64> = Vec::new();
    let mut want: Option<u64> = None;
    let mut partial = Vec::new();
    let mut used = 0u64;
    let mut block = [0u8; BLOCK];
    while want.is_none_or(|w| (numbers.len() as u64) < 1 + 2 * w) {
        if used >= MAX_MAP_BYTES {
            return Err(invalid("too large"));
        }
        data.read_exact(&mut block)?;
        used += BLOCK as u64;
        for &b in &block {
            if want.is_some_and(|w| numbers.len() as u64 > 2 * w) {
                break;
            }
            if b == b'\n' {
                let n = std::str::from_utf8(&partial)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| invalid("not a number"))?;
                partial.clear();
                if want.is_none() {
                    if n > MAX_SEGMENTS as u64 {
                        return Err(invalid("too many segments"));
                    }
                    want = Some(n);
                }
                numbers.push(n);
            } else if b.is_ascii_digit() && partial.len() < 20 {
                partial.push(b);
            } else {
                return Err(invalid("unexpected byte"));
            }
        }
    }
    let map = numbers[1..].chunks(2).map(|c| (c[0], c[1])).collect();
    Ok((map, used))
}

/// Checks that `map` describes a file of `real_size` bytes whose stored segments take
/// `stored` bytes: segments in order, not overlapping, inside the file.
///
/// # Errors
/// What is wrong.
pub fn check(map: &[(u64, u64)], real_size: u64, stored: u64) -> Result<(), String> {
    let mut end = 0u64;
    let mut total = 0u64;
    for &(off, len) in map {
        let seg_end = off.checked_add(len).ok_or("segment past 2^64")?;
        if off < end || seg_end > real_size {
            return Err(bad(
                "segments out of order, overlapping or past the file's size",
            ));
        }
        end = seg_end;
        total += len;
    }
    if total != stored {
        return Err(bad(format!(
            "the map lists {total} bytes of data, the member stores {stored}"
        )));
    }
    Ok(())
}

/// The expanded file: the segments read in order from the member's stored data, zeros
/// between them and up to the real size.
#[derive(Debug)]
pub struct Expand<'m, R> {
    inner: R,
    map: &'m [(u64, u64)],
    pos: u64,
    real_size: u64,
}

impl<'m, R: Read> Expand<'m, R> {
    /// Expands `inner` (the stored segments) with a map that [`check`] accepted.
    pub fn new(inner: R, map: &'m [(u64, u64)], real_size: u64) -> Self {
        Expand {
            inner,
            map,
            pos: 0,
            real_size,
        }
    }
}

impl<R: Read> Read for Expand<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(&(off, len)) = self.map.first() {
            if self.pos < off + len {
                break;
            }
            self.map = &self.map[1..];
        }
        let cap = |n: u64| buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
        match self.map.first() {
            Some(&(off, _)) if self.pos < off => {
                let n = cap(off - self.pos);
                buf[..n].fill(0);
                self.pos += n as u64;
                Ok(n)
            }
            Some(&(off, len)) => {
                let n = cap(off + len - self.pos);
                let got = self.inner.read(&mut buf[..n])?;
                if got == 0 && n > 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "sparse member data ends early",
                    ));
                }
                self.pos += got as u64;
                Ok(got)
            }
            None => {
                let n = cap(self.real_size - self.pos);
                buf[..n].fill(0);
                self.pos += n as u64;
                Ok(n)
            }
        }
    }
}

/// Writes the stored segments of the expanded file `file` (the inverse of [`Expand`]).
///
/// # Errors
/// Reading or writing fails, or the file is shorter than the map says.
pub fn store(file: &mut dyn Read, map: &[(u64, u64)], out: &mut dyn io::Write) -> io::Result<u64> {
    let mut pos = 0u64;
    let mut written = 0u64;
    for &(off, len) in map {
        let skip = off
            .checked_sub(pos)
            .ok_or_else(|| io::Error::other("sparse map out of order"))?;
        let skipped = io::copy(&mut file.take(skip), &mut io::sink())?;
        let n = io::copy(&mut file.take(len), out)?;
        if skipped != skip || n != len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "sparse file object shorter than its map",
            ));
        }
        pos = off + len;
        written += n;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_and_store_are_inverse() {
        let map = [(0, 3), (10, 2), (20, 0)];
        check(&map, 20, 5).unwrap();
        let mut out = Vec::new();
        Expand::new(&b"abcde"[..], &map, 20)
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"abc\0\0\0\0\0\0\0de\0\0\0\0\0\0\0\0");
        let mut back = Vec::new();
        assert_eq!(store(&mut &out[..], &map, &mut back).unwrap(), 5);
        assert_eq!(back, b"abcde");
        assert!(check(&[(5, 2), (4, 1)], 20, 3).is_err());
        assert!(check(&map, 11, 5).is_err());
        assert!(check(&map, 20, 6).is_err());
        let e = Expand::new(&b"ab"[..], &map, 20).read_to_end(&mut Vec::new());
        assert!(e.is_err());
    }

    #[test]
    fn pax10_map() {
        let mut data = b"2\n0\n4096\n307200\n8192\n".to_vec();
        data.resize(512, 0);
        data.extend([7u8; 10]);
        let mut r = &data[..];
        let (map, used) = read_pax10_map(&mut r).unwrap();
        assert_eq!(map, [(0, 4096), (307200, 8192)]);
        assert_eq!(used, 512);
        assert_eq!(r, &[7u8; 10][..]);
        assert!(read_pax10_map(&mut &b"x\n"[..]).is_err());
    }

    #[test]
    fn pax0_records() {
        let recs: Vec<(&[u8], &[u8])> = vec![
            (b"GNU.sparse.size", b"100"),
            (b"GNU.sparse.numblocks", b"2"),
            (b"GNU.sparse.offset", b"0"),
            (b"GNU.sparse.numbytes", b"5"),
            (b"GNU.sparse.offset", b"100"),
            (b"GNU.sparse.numbytes", b"0"),
        ];
        let s = from_pax(&recs).unwrap().unwrap();
        assert_eq!((s.format, s.real_size), (Format::Pax00, 100));
        assert_eq!(s.map, [(0, 5), (100, 0)]);
        let recs: Vec<(&[u8], &[u8])> = vec![
            (b"GNU.sparse.size", b"100"),
            (b"GNU.sparse.numblocks", b"1"),
            (b"GNU.sparse.name", b"real"),
            (b"GNU.sparse.map", b"0,5"),
        ];
        let s = from_pax(&recs).unwrap().unwrap();
        assert_eq!(
            (s.format, s.name.as_deref()),
            (Format::Pax01, Some(&b"real"[..]))
        );
        assert!(from_pax(&[(&b"path"[..], &b"x"[..])]).unwrap().is_none());
    }
}
