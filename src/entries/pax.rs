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

    /// Fuzz targets: PAX record data, and whole tar streams (PAX records, GNU long names and
    /// links, every entry type) through [`crate::entries::parse`], mutated. Every outcome is a
    /// parse or an error, never a panic; what parses must be a normalised path.
    mod fuzz {
        use super::*;
        use crate::testing::{fuzz_cases, mutated};
        use proptest::prelude::*;
        use std::io::Read;

        fn pax_seed() -> Vec<u8> {
            let mut d = b"29 SCHILY.xattr.user.a=x\ny\x00z\n".to_vec();
            d.extend_from_slice(b"11 path=ab\n16 linkpath=cd\n12 uid=1000\n12 gid=1000\n");
            d
        }

        /// A tar with PAX records (xattrs, long path, long link, uid), GNU long names, and one
        /// entry of each type.
        fn tar_seed() -> Vec<u8> {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(3);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_pax_extensions([
                ("SCHILY.xattr.user.k", &b"v\n"[..]),
                ("path", "p/".repeat(60).as_bytes()),
                ("uid", b"4294967296"),
            ])
            .unwrap();
            b.append_data(&mut h.clone(), "short", &b"abc"[..]).unwrap();
            let mut g = tar::Header::new_gnu();
            g.set_mode(0o755);
            g.set_size(2);
            g.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut g, "g/".repeat(80) + "file", &b"hi"[..])
                .unwrap();
            for (kind, name) in [
                (tar::EntryType::Directory, "d/"),
                (tar::EntryType::Symlink, "s"),
                (tar::EntryType::Link, "h"),
                (tar::EntryType::Char, "c"),
                (tar::EntryType::Block, "b"),
                (tar::EntryType::Fifo, "f"),
                (tar::EntryType::GNUSparse, "sp"),
            ] {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(kind);
                h.set_size(0);
                h.set_mode(0o600);
                if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
                    b.append_link(&mut h, name, "l/".repeat(70) + "target")
                        .unwrap();
                } else {
                    b.append_data(&mut h, name, &[][..]).unwrap();
                }
            }
            b.into_inner().unwrap()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(fuzz_cases(2000)))]

            #[test]
            fn pax_records_never_panic(data in mutated(pax_seed())) {
                if let Ok(r) = records(&data) {
                    for (k, v) in r {
                        prop_assert!(!k.contains(&b'='));
                        prop_assert!(k.len() + v.len() < data.len());
                    }
                }
            }

            #[test]
            fn tar_entries_never_panic(
                data in mutated(tar_seed()),
                pax in mutated(pax_seed()),
            ) {
                let mut a = tar::Archive::new(&data[..]);
                let Ok(entries) = a.entries() else { return Ok(()) };
                for (i, entry) in entries.enumerate() {
                    let Ok(mut entry) = entry else { break };
                    let extra = (i % 2 == 1).then(|| crate::entries::Extensions {
                        pax: Some(pax.clone()),
                        long_name: i % 4 == 1,
                        long_link: i % 4 == 3,
                    });
                    if let Ok(Some(e)) = crate::entries::parse(&mut entry, extra.as_ref()) {
                        let normal = |c: &String| {
                            !c.is_empty() && c != "." && c != ".." && !c.contains('/')
                        };
                        prop_assert!(e.path.iter().all(normal), "{:?}", e.path);
                    }
                    if std::io::copy(&mut (&mut entry).take(1 << 20), &mut std::io::sink()).is_err() {
                        break;
                    }
                }
            }
        }
    }
}
