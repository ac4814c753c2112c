//! PAX extended header records, parsed by their length prefix, so that values may hold any
//! byte, newlines included. tar-rs 0.4 splits PAX data at newlines, which loses (and then
//! fails on) xattr values holding a `\n` byte, as `security.capability` values can; the layer
//! stage hands the raw PAX data of each entry (kept by [`crate::layer::tarsplit`]) to this
//! parser instead.

use std::io;

/// One record: key and value, borrowed from the PAX data.
pub type Record<'a> = (&'a [u8], &'a [u8]);

fn malformed(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed PAX record: {why}"),
    )
}

/// Parses every `"<len> <key>=<value>\n"` record of `data`, where `len` counts the whole
/// record. Trailing NUL padding is ignored.
///
/// # Errors
/// A record whose length is not a number, runs past the data, or lacks `=` or the final
/// newline.
///
/// # Examples
/// ```
/// let r = ocitree::entries::pax::records(b"21 SCHILY.xattr.a=\x00\n\n").unwrap();
/// assert_eq!(r, [(&b"SCHILY.xattr.a"[..], &b"\x00\n"[..])]);
/// ```
pub fn records(data: &[u8]) -> io::Result<Vec<Record<'_>>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() && rest[0] != 0 {
        let sp = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or_else(|| malformed("no length"))?;
        let len: usize = std::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| malformed("length is not a number"))?;
        if len <= sp + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(malformed("length does not match the record"));
        }
        let kv = &rest[sp + 1..len - 1];
        let eq = kv
            .iter()
            .position(|&b| b == b'=')
            .ok_or_else(|| malformed("no '='"))?;
        out.push((&kv[..eq], &kv[eq + 1..]));
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_and_errors() {
        let mut data = b"29 SCHILY.xattr.user.a=x\ny\x00z\n".to_vec();
        data.extend_from_slice(b"11 path=ab\n\x00\x00");
        let r = records(&data).unwrap();
        assert_eq!(r[0], (&b"SCHILY.xattr.user.a"[..], &b"x\ny\x00z"[..]));
        assert_eq!(r[1], (&b"path"[..], &b"ab"[..]));
        for bad in [
            &b"x path=a\n"[..],
            b"99 path=a\n",
            b"9 patha\n",
            b"10 path=a\x00",
        ] {
            assert!(records(bad).is_err(), "{bad:?}");
        }
        assert!(records(b"").unwrap().is_empty());
    }
}
