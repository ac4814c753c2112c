//! Tar-split: what it takes to rebuild a layer's uncompressed tar byte for byte.
//!
//! While a layer streams in, [`Tap`] records every byte of the tar stream except the data of
//! the regular files that become OSTree objects: headers, PAX and GNU extension records,
//! padding, entries OSTree cannot store (device nodes, FIFOs), end-of-archive blocks and any
//! trailing bytes. File data is replaced by a reference to the content object holding it. The
//! record stream is zstd-compressed and kept in the layer commit's metadata
//! ([`crate::meta::LAYER_TAR_SPLIT`]), so it lives exactly as long as the layer commit: `ostree
//! prune` keeps it. [`rebuild`] replays it.
//!
//! Record format (version [`VERSION`]), concatenated: `b'R'`, u32 BE length, raw bytes; or
//! `b'P'`, u64 BE length, 32-byte object checksum (the next `length` bytes are that object's
//! content); or, for the stored data of a GNU sparse member, `b'S'`, u64 BE length, 32-byte
//! checksum of the expanded file's object, u32 BE segment count, then each segment's u64 BE
//! offset and length (the next `length` bytes are those segments of the object, in order; see
//! [`crate::entries::sparse`]). `S` records came after the format's first release: an older
//! ocitree refuses them ("unknown record") rather than rebuilding a wrong tar.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;

use ostree::gio::prelude::*;
use ostree::{Repo, gio};

use crate::entries::Extensions;

/// Version of the record format, stored beside it.
pub const VERSION: u32 = 1;

/// Kept bytes are written out once this many accumulate before the point
/// [`Recorder::extension_data`] may still look at, so memory stays flat whatever the stream
/// holds between file data (a million directories, gigabytes of trailing zeros).
const FLUSH_AT: usize = 1 << 20;

/// Most bytes one entry may take besides its file data: its headers, PAX and GNU long-name
/// records, and the data of an entry that is not a stored file. Go's archive/tar caps PAX and
/// GNU long-name records at 1 MiB; real ones are a few KiB.
pub const MAX_ENTRY_METADATA: usize = 1 << 20;

/// The error for a tar entry at stream position `offset` whose headers and extension records
/// (and `more`, such as the data of an entry that is not a regular file) take more than
/// [`MAX_ENTRY_METADATA`] bytes.
pub fn too_much_metadata(offset: u64, more: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "tar entry at offset {offset}: more than {MAX_ENTRY_METADATA} bytes of headers, PAX \
             or GNU long-name records{more}"
        ),
    )
}

struct State {
    pos: u64,
    raw: Vec<u8>,
    /// The payload being skipped: [start, end).
    payload: Option<(u64, u64)>,
    /// Kept bytes before this stream position are no longer needed in `raw`.
    keep_from: u64,
    out: zstd::stream::Encoder<'static, Vec<u8>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("pos", &self.pos)
            .field("raw", &self.raw.len())
            .field("payload", &self.payload)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Writes out the first `n` kept bytes as raw records.
    fn flush(&mut self, n: usize) -> io::Result<()> {
        for chunk in self.raw[..n].chunks(u32::MAX as usize) {
            self.out.write_all(b"R")?;
            self.out.write_all(&(chunk.len() as u32).to_be_bytes())?;
            self.out.write_all(chunk)?;
        }
        self.raw.drain(..n);
        Ok(())
    }

    /// Flushes what no one will look at again, and fails when one entry's metadata (the
    /// bytes since the entry [`Recorder::extension_data`] last saw) outgrows
    /// [`MAX_ENTRY_METADATA`].
    fn bound(&mut self) -> io::Result<()> {
        if self.raw.len() <= FLUSH_AT {
            return Ok(());
        }
        let raw_start = self.pos - self.raw.len() as u64;
        let done = self.keep_from.saturating_sub(raw_start);
        self.flush(usize::try_from(done).map_or(self.raw.len(), |d| d.min(self.raw.len())))?;
        if self.raw.len() > MAX_ENTRY_METADATA {
            return Err(too_much_metadata(
                self.keep_from,
                ", or data of an entry that is not a regular file",
            ));
        }
        Ok(())
    }
}

/// Passes a tar stream through, keeping every byte that is not registered as file data.
#[derive(Debug)]
pub struct Tap<R> {
    inner: R,
    state: Rc<RefCell<State>>,
}

/// The recording side of a [`Tap`], kept by the code that parses the tar.
pub struct Recorder {
    state: Rc<RefCell<State>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut st = self.state.borrow_mut();
        let (start, end) = (st.pos, st.pos + n as u64);
        let keep = |from: u64, to: u64| &buf[(from - start) as usize..(to - start) as usize];
        match st.payload {
            Some((ps, pe)) if ps < end && pe > start => {
                let before = keep(start, ps.max(start)).to_vec();
                let after = keep(pe.min(end), end).to_vec();
                st.raw.extend(before);
                st.raw.extend(after);
            }
            _ => {
                let all = keep(start, end).to_vec();
                st.raw.extend(all);
            }
        }
        st.pos = end;
        st.bound()?;
        Ok(n)
    }
}

/// Wraps `inner` in a [`Tap`] and returns it with its [`Recorder`].
///
/// # Errors
/// The zstd encoder cannot be set up.
pub fn tap<R: Read>(inner: R) -> io::Result<(Tap<R>, Recorder)> {
    let state = Rc::new(RefCell::new(State {
        pos: 0,
        raw: Vec::new(),
        payload: None,
        keep_from: 0,
        out: zstd::stream::Encoder::new(Vec::new(), 1)?,
    }));
    Ok((
        Tap {
            inner,
            state: state.clone(),
        },
        Recorder { state },
    ))
}

impl Recorder {
    fn flush_raw(&mut self) -> io::Result<()> {
        let mut st = self.state.borrow_mut();
        let n = st.raw.len();
        st.flush(n)
    }

    /// Says that no entry header follows: what remains (end-of-archive blocks, trailing
    /// bytes) is kept without bound on its length.
    pub fn entries_done(&mut self) {
        self.state.borrow_mut().keep_from = u64::MAX;
    }

    /// The extension records before the entry header at stream position `header`: the data
    /// of its PAX extended header (`x`), and whether GNU long name or link records (`L`, `K`)
    /// came with it, taken from the bytes kept since the last file data; `None` when the kept
    /// bytes do not parse as the headers leading to it (then the tar reader's own view has to
    /// do). Call it for each entry in order: each call parses only the headers after the
    /// previous entry's, so a long run of entries without file data costs linear time.
    /// (Boxed: its `as_deref()` is what [`crate::entries::parse_sparse`] takes.)
    pub fn extension_data(&mut self, header: u64) -> Option<Box<Extensions>> {
        let from = std::mem::replace(&mut self.state.borrow_mut().keep_from, header);
        let st = self.state.borrow();
        let raw_start = st.pos.checked_sub(st.raw.len() as u64)?;
        let at = |pos: u64, len: u64| -> Option<&[u8]> {
            let from = usize::try_from(pos.checked_sub(raw_start)?).ok()?;
            st.raw
                .get(from..from.checked_add(usize::try_from(len).ok()?)?)
        };
        let mut cur = (raw_start.div_ceil(512) * 512).max(from);
        let mut pax: Option<&[u8]> = None;
        let (mut long_name, mut long_link) = (false, false);
        while cur < header {
            let block: &[u8; 512] = at(cur, 512)?.try_into().ok()?;
            let h = tar::Header::from_byte_slice(block);
            // A block that is not a valid header means the kept bytes are not what we think.
            let sum: u64 = block
                .iter()
                .enumerate()
                .map(|(i, &b)| u64::from(if (148..156).contains(&i) { b' ' } else { b }))
                .sum();
            if u64::from(h.cksum().ok()?) != sum {
                return None;
            }
            let size = h.entry_size().ok()?;
            let next = cur
                .checked_add(512)?
                .checked_add(size.checked_add(511)? / 512 * 512)?;
            match h.entry_type() {
                tar::EntryType::XHeader => pax = Some(at(cur + 512, size)?),
                tar::EntryType::GNULongName => long_name = true,
                tar::EntryType::GNULongLink => long_link = true,
                // an entry of its own (a global header) takes the records before it
                _ => (pax, long_name, long_link) = (None, false, false),
            }
            cur = next;
        }
        (cur == header).then_some(())?;
        Some(Box::new(Extensions {
            pax: pax.map(<[u8]>::to_vec),
            long_name,
            long_link,
        }))
    }

    /// Marks `[start, start + len)` of the stream as file data about to be read.
    ///
    /// # Errors
    /// Compression fails, or the stream was already read past `start` (the tar reader read
    /// ahead, which it does not).
    pub fn begin_payload(&mut self, start: u64, len: u64) -> io::Result<()> {
        if self.state.borrow().pos > start {
            return Err(io::Error::other(
                "tar-split: stream read past the start of file data",
            ));
        }
        self.state.borrow_mut().payload = Some((start, start + len));
        self.flush_raw()
    }

    /// Records that the data just read is the content of object `checksum`.
    ///
    /// # Errors
    /// Compression fails or `checksum` is not a SHA-256 hex string.
    pub fn end_payload(&mut self, len: u64, checksum: &str) -> io::Result<()> {
        let csum = hex::decode(checksum)
            .ok()
            .filter(|c| c.len() == 32)
            .ok_or_else(|| io::Error::other("bad checksum"))?;
        self.state.borrow_mut().payload = None;
        self.flush_raw()?;
        let out = &mut self.state.borrow_mut().out;
        out.write_all(b"P")?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(&csum)
    }

    /// [`Recorder::end_payload`] for a GNU sparse member: the data just read is the stored
    /// segments `map` of object `checksum` (the expanded file).
    ///
    /// # Errors
    /// Compression fails or `checksum` is not a SHA-256 hex string.
    pub fn end_sparse_payload(
        &mut self,
        len: u64,
        checksum: &str,
        map: &[(u64, u64)],
    ) -> io::Result<()> {
        let csum = hex::decode(checksum)
            .ok()
            .filter(|c| c.len() == 32)
            .ok_or_else(|| io::Error::other("bad checksum"))?;
        let count =
            u32::try_from(map.len()).map_err(|_| io::Error::other("sparse map too large"))?;
        self.state.borrow_mut().payload = None;
        self.flush_raw()?;
        let out = &mut self.state.borrow_mut().out;
        out.write_all(b"S")?;
        out.write_all(&len.to_be_bytes())?;
        out.write_all(&csum)?;
        out.write_all(&count.to_be_bytes())?;
        for (off, n) in map {
            out.write_all(&off.to_be_bytes())?;
            out.write_all(&n.to_be_bytes())?;
        }
        Ok(())
    }

    /// The kept (not payload) bytes `[pos, pos + len)` of the stream, if they are still held
    /// (they are from the end of the last file data on).
    pub fn kept(&self, pos: u64, len: u64) -> Option<Vec<u8>> {
        let st = self.state.borrow();
        let raw_start = st.pos.checked_sub(st.raw.len() as u64)?;
        let from = usize::try_from(pos.checked_sub(raw_start)?).ok()?;
        st.raw
            .get(from..from.checked_add(usize::try_from(len).ok()?)?)
            .map(<[u8]>::to_vec)
    }

    /// Ends the record stream (after the tar stream was read to its end).
    ///
    /// # Errors
    /// Compression fails.
    pub fn finish(mut self) -> io::Result<Vec<u8>> {
        self.flush_raw()?;
        let state = Rc::try_unwrap(self.state)
            .map_err(|_| io::Error::other("tar-split: the tap outlived the stream"))?;
        state.into_inner().out.finish()
    }
}

/// Writes the uncompressed tar that `records` (from [`Recorder::finish`]) describe, taking
/// file data from the content objects of `repo`.
///
/// # Errors
/// The records are corrupt, an object is missing (pruned: only possible for a file that a
/// later entry of the same layer replaced), or writing fails.
pub fn rebuild(repo: &Repo, records: &[u8], out: &mut dyn Write) -> io::Result<u64> {
    let mut r = zstd::stream::read::Decoder::new(records)?;
    let mut written = 0u64;
    let mut tag = [0u8; 1];
    loop {
        match r.read(&mut tag)? {
            0 => return Ok(written),
            _ => match tag[0] {
                b'R' => {
                    let mut len = [0u8; 4];
                    r.read_exact(&mut len)?;
                    let len = u32::from_be_bytes(len) as u64;
                    let n = io::copy(&mut (&mut r).take(len), out)?;
                    if n != len {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "tar-split: truncated record",
                        ));
                    }
                    written += n;
                }
                b'P' => {
                    let mut len = [0u8; 8];
                    r.read_exact(&mut len)?;
                    let len = u64::from_be_bytes(len);
                    let mut csum = [0u8; 32];
                    r.read_exact(&mut csum)?;
                    let csum = hex::encode(csum);
                    let (input, _, _) = repo
                        .load_file(&csum, gio::Cancellable::NONE)
                        .map_err(|e| io::Error::other(format!("tar-split: object {csum}: {e}")))?;
                    let n = match input {
                        Some(i) => io::copy(&mut i.into_read().take(len), out)?,
                        None => 0,
                    };
                    if n != len {
                        return Err(io::Error::other(format!(
                            "tar-split: object {csum} has {n} bytes, expected {len}"
                        )));
                    }
                    written += n;
                }
                b'S' => written += rebuild_sparse(repo, &mut r, out)?,
                other => {
                    return Err(io::Error::other(format!(
                        "tar-split: unknown record {other:#x}"
                    )));
                }
            },
        }
    }
}

/// Replays one `S` record (after its tag): the stored segments of a sparse member.
fn rebuild_sparse(repo: &Repo, r: &mut dyn Read, out: &mut dyn Write) -> io::Result<u64> {
    let mut u64_buf = [0u8; 8];
    let mut next_u64 = |r: &mut dyn Read| -> io::Result<u64> {
        r.read_exact(&mut u64_buf)?;
        Ok(u64::from_be_bytes(u64_buf))
    };
    let len = next_u64(r)?;
    let mut csum = [0u8; 32];
    r.read_exact(&mut csum)?;
    let csum = hex::encode(csum);
    let mut count = [0u8; 4];
    r.read_exact(&mut count)?;
    let count = u32::from_be_bytes(count) as usize;
    if count > crate::entries::sparse::MAX_SEGMENTS {
        return Err(io::Error::other("tar-split: sparse map too large"));
    }
    let mut map = Vec::with_capacity(count);
    for _ in 0..count {
        map.push((next_u64(r)?, next_u64(r)?));
    }
    let (input, _, _) = repo
        .load_file(&csum, gio::Cancellable::NONE)
        .map_err(|e| io::Error::other(format!("tar-split: object {csum}: {e}")))?;
    let n = match input {
        Some(i) => crate::entries::sparse::store(&mut i.into_read(), &map, out)?,
        None => 0,
    };
    if n != len {
        return Err(io::Error::other(format!(
            "tar-split: sparse object {csum} gives {n} bytes, expected {len}"
        )));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PAX header (records given raw) followed by an entry of `data`.
    fn entry(out: &mut Vec<u8>, name: &str, pax: Option<&[u8]>, data: &[u8]) {
        let pad = |out: &mut Vec<u8>| out.resize(out.len().div_ceil(512) * 512, 0);
        if let Some(p) = pax {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(p.len() as u64);
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(p);
            pad(out);
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(name).unwrap();
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        pad(out);
    }

    /// The raw PAX data comes back for each entry, newlines and all, across runs of entries
    /// with and without file data.
    #[test]
    fn extension_data_of_each_entry() {
        let p1: &[u8] = b"27 SCHILY.xattr.user.a=\n\n\n\n";
        let p3: &[u8] = b"12 path=abc\n";
        let mut t = Vec::new();
        entry(&mut t, "one", Some(p1), b"data one");
        entry(&mut t, "two", None, b"");
        entry(&mut t, "three", Some(p3), b"");
        entry(&mut t, "four", Some(p1), &[7; 700]);
        t.extend_from_slice(&[0; 1024]);
        let (tap, mut rec) = tap(&t[..]).unwrap();
        let mut a = tar::Archive::new(tap);
        let mut got = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            got.push(rec.extension_data(e.raw_header_position()).unwrap().pax);
            // file data of "one" and "four" is payload, the rest stays in the kept bytes
            if e.size() > 0 {
                rec.begin_payload(e.raw_file_position(), e.size()).unwrap();
                io::copy(&mut e, &mut io::sink()).unwrap();
                rec.end_payload(e.size(), &"00".repeat(32)).unwrap();
            }
        }
        assert_eq!(
            got,
            [
                Some(p1.to_vec()),
                None,
                Some(p3.to_vec()),
                Some(p1.to_vec())
            ]
        );
    }

    /// GNU long name and link records before an entry are reported, and only for it.
    #[test]
    fn extension_data_reports_gnu_long_names() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Symlink);
        b.append_link(&mut h, "l".repeat(120), "t".repeat(120))
            .unwrap();
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, "short", &[][..]).unwrap();
        let t = b.into_inner().unwrap();
        let (tap, mut rec) = tap(&t[..]).unwrap();
        let mut a = tar::Archive::new(tap);
        let got: Vec<_> = a
            .entries()
            .unwrap()
            .map(|e| {
                let x = rec
                    .extension_data(e.unwrap().raw_header_position())
                    .unwrap();
                (x.long_name, x.long_link, x.pax.is_some())
            })
            .collect();
        assert_eq!(got, [(true, true, false), (false, false, false)]);
    }
}
