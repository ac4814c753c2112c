//! How tar headers are read where tar readers could disagree: the tree is `umoci unpack`'s
//! (Go's archive/tar) where the readers agree, and where they do not (GNU tar one way, Go the
//! other), the import is refused: exit 2, an error naming the entry, the repository as it was.
//! Every tar is written byte by byte, as the review that found these cases wrote it.

use crate::util::*;

const BLOCK: usize = 512;

fn pad(mut b: Vec<u8>) -> Vec<u8> {
    b.resize(b.len().div_ceil(BLOCK) * BLOCK, 0);
    b
}

/// A ustar header: `name` and `link` written as they are (no trailing slash removed),
/// `typeflag` the raw byte.
fn header(name: &str, typeflag: u8, size: u64, mode: u32, link: &str) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1);
    h.set_uid(0);
    h.set_gid(0);
    let u = h.as_ustar_mut().unwrap();
    u.name[..name.len()].copy_from_slice(name.as_bytes());
    u.linkname[..link.len()].copy_from_slice(link.as_bytes());
    u.typeflag = [typeflag];
    h.set_cksum();
    h.as_bytes().to_vec()
}

/// A regular file (type `0`) with its data.
fn file(name: &str, data: &[u8]) -> Vec<u8> {
    let mut b = header(name, b'0', data.len() as u64, 0o644, "");
    b.extend_from_slice(data);
    pad(b)
}

/// A PAX extended header (`x`) of `records`.
fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut data = Vec::new();
    for (k, v) in records {
        let body = format!(" {k}={v}\n");
        let mut len = body.len() + 1;
        while len.to_string().len() + body.len() != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    let mut b = header("PaxHeaders/x", b'x', data.len() as u64, 0o644, "");
    b.extend(data);
    pad(b)
}

/// A GNU long name (`L`) or long link name (`K`) record, as GNU tar writes it.
fn gnu_long(typeflag: u8, name: &str) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.set_size(name.len() as u64 + 1);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
    h.as_gnu_mut().unwrap().typeflag = [typeflag];
    h.set_cksum();
    let mut b = h.as_bytes().to_vec();
    b.extend_from_slice(name.as_bytes());
    b.push(0);
    pad(b)
}

/// The end-of-archive marker: two zero blocks.
fn end() -> Vec<u8> {
    vec![0; 2 * BLOCK]
}

/// An image of one layer, `tar` gzipped; returns its source string.
fn image(tmp: &tempfile::TempDir, name: &str, tar: Vec<u8>) -> (std::path::PathBuf, String) {
    let dir = tmp.path().join(name);
    Layout::single(&dir, &[Layer::with(tar, Comp::Gzip, false)]);
    let src = Repo::oci(&dir, "latest");
    (dir, src)
}

/// Imports `tar` and compares the tree with `umoci unpack` of the same image.
fn matches_umoci(tar: Vec<u8>) {
    let tmp = tempdir();
    let (dir, src) = image(&tmp, "img", tar);
    let repo = Repo::new();
    let commit = repo.import(&src, "img").commit();
    repo.assert_matches_umoci(&commit, &dir, "latest");
}

/// Imports `tar` into a repository holding another image, expecting a rejection: exit 2, the
/// image, the layer, `entry "<path>"` and every one of `needles` in the message, and the
/// repository unchanged. Returns the message.
fn rejected(tar: Vec<u8>, path: Option<&str>, needles: &[&str]) -> String {
    let tmp = tempdir();
    let (_, good) = image(&tmp, "good", [file("ok", b"ok"), end()].concat());
    let (_, src) = image(&tmp, "bad", tar);
    let repo = Repo::new();
    repo.import(&good, "good");
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &src, "bad"]);
    assert!(
        err.contains(&format!("image {src}")) && err.contains("layer sha256:"),
        "names image and layer: {err}"
    );
    if let Some(p) = path {
        assert!(err.contains(&format!("entry {p:?}")), "names {p:?}: {err}");
    }
    for n in needles {
        assert!(err.contains(n), "{n:?} not in {err}");
    }
    snap.assert_unchanged(&repo.path);
    err
}

/// Review case 15: entries after a lone zero block (GNU tar reads them, Go fails, tar-rs
/// stopped there): refused at the first byte that is not zero, naming the entry it starts;
/// bytes after the two zero blocks likewise. Zeros of any length after the end are fine.
#[test]
fn data_after_the_end_of_archive_is_refused() {
    let tar = [file("a", b"A"), vec![0; BLOCK], file("hidden", b"H"), end()].concat();
    rejected(
        tar,
        Some("hidden"),
        &["after the end-of-archive marker at byte 1536"],
    );

    let mut tar = [file("a", b"A"), end(), vec![0; 3 * BLOCK + 7]].concat();
    tar.push(b'!');
    rejected(tar, None, &["after the end-of-archive marker at byte 3591"]);

    matches_umoci([file("a", b"A"), end(), vec![0; 100_000]].concat());
}

/// Review case 16b: a symlink target over 4095 bytes imports, but no checkout of it can be
/// made (`symlinkat`: File name too long): refused, like names over 255 bytes. 4095 bytes
/// is fine and checks out.
#[test]
fn symlink_target_over_4095_bytes_is_refused() {
    let long = "x".repeat(4096);
    rejected(
        tar_of(&[symlink("s", &long)]),
        Some("s"),
        &["symlink target of 4096 bytes"],
    );

    let ok = "y".repeat(4095);
    let tmp = tempdir();
    let (_, src) = image(&tmp, "img", tar_of(&[symlink("s", &ok)]));
    let repo = Repo::new();
    let commit = repo.import(&src, "img").commit();
    let co = tmp.path().join("co");
    tools::ostree_checkout(&repo.path, &commit, &co);
    assert_eq!(
        std::fs::read_link(co.join("s")).unwrap().as_os_str().len(),
        4095
    );
}

/// Review case 09: an old-style regular file (type `\0`) whose name ends in `/` is a
/// directory (GNU tar, Go, Python), with its mode, and what is below it lands in it; a type
/// `0` member named with a slash stays a file, as Go (and so umoci) reads it.
#[test]
fn old_regular_type_with_trailing_slash_is_a_directory() {
    let tar = [
        header("d/", 0, 0, 0o700, ""),
        header("d/f", 0, 0, 0o640, ""),
        header("e/", 0, 0, 0o750, ""),
        file("r/", b"regular"),
        end(),
    ]
    .concat();
    matches_umoci(tar);
}

/// Such a directory with data: Go's archive/tar reads none for a directory and takes the
/// next header from where the data is, tar-rs skips the data: refused.
#[test]
fn old_regular_type_directory_with_data_is_refused() {
    let mut tar = header("d/", 0, 512, 0o755, "");
    tar.extend(file("inside-data", b""));
    tar.extend(end());
    rejected(tar, Some("d/"), &["ambiguous", "512 bytes of data"]);
}

/// Review cases 10a and 10b: a GNU long name and a PAX `path` for one member (GNU tar takes
/// one, Go the other), or a GNU long link name and a PAX `linkpath`: refused, both names
/// quoted.
#[test]
fn gnu_long_names_with_pax_paths_are_refused() {
    let tar = [
        gnu_long(b'L', "gnuname"),
        pax(&[("path", "paxname")]),
        file("hdrname", b"X"),
        end(),
    ]
    .concat();
    rejected(tar, Some("gnuname"), &["ambiguous", "\"paxname\""]);

    // the PAX header first, the GNU record after it
    let tar = [
        pax(&[("path", "paxname")]),
        gnu_long(b'L', "gnuname"),
        file("hdrname", b"X"),
        end(),
    ]
    .concat();
    rejected(tar, Some("gnuname"), &["ambiguous", "\"paxname\""]);

    let tar = [
        file("t1", b"1"),
        file("t2", b"2"),
        gnu_long(b'K', "t1"),
        pax(&[("linkpath", "t2")]),
        header("l", b'1', 0, 0o644, "hdrtarget"),
        end(),
    ]
    .concat();
    rejected(tar, Some("l"), &["ambiguous", "\"t1\"", "\"t2\""]);
}

/// Review case 11: an empty PAX `path` (POSIX: the keyword is deleted and the ustar name
/// counts; GNU tar: `.`) or `linkpath`: refused.
#[test]
fn empty_pax_paths_are_refused() {
    let tar = [
        file("a", b"A"),
        pax(&[("path", "")]),
        file("hdrname", b"X"),
        end(),
    ]
    .concat();
    rejected(tar, Some("hdrname"), &["ambiguous", "empty PAX path"]);

    let tar = [
        file("t", b"T"),
        pax(&[("linkpath", "")]),
        header("l", b'2', 0, 0o777, "t"),
        end(),
    ]
    .concat();
    rejected(tar, Some("l"), &["ambiguous", "empty PAX linkpath"]);
}

/// A directory, symlink, hardlink, device or FIFO header with a size: Go's archive/tar reads
/// no data for it and takes the next header from where the data is (umoci extracted the
/// member hidden there), tar-rs skips the data: refused, whatever the type.
#[test]
fn header_only_types_with_data_are_refused() {
    for (typeflag, link, what) in [
        (b'5', "", "directory"),
        (b'2', "target", "symlink"),
        (b'1', "target", "hardlink"),
        (b'6', "", "FIFO"),
    ] {
        let mut tar = file("target", b"t");
        tar.extend(header("odd", typeflag, 512, 0o755, link));
        tar.extend(file("hidden", b"H"));
        tar.extend(end());
        rejected(tar, Some("odd"), &["ambiguous", what, "512 bytes of data"]);
    }
}

/// A PAX record whose value holds a newline and what reads as another record: tar-rs (which
/// splits at newlines) read `path=forged` and named the file so, where GNU tar, Go and the
/// record lengths say `real`. Refused; a name that holds a newline itself still imports as it
/// is (tar-rs misses that record, and ocitree reads it by its length).
#[test]
fn records_forged_inside_a_pax_value_are_refused() {
    let tar = [
        pax(&[("SCHILY.xattr.user.x", "a\n15 path=forged")]),
        file("real", b"R"),
        end(),
    ]
    .concat();
    rejected(tar, None, &["ambiguous", "another name"]);

    let tar = [
        pax(&[("SCHILY.xattr.user.x", "a\n16 linkpath=lnk")]),
        header("l", b'2', 0, 0o777, "target"),
        end(),
    ]
    .concat();
    rejected(tar, None, &["ambiguous", "another link target"]);

    let tar = [
        pax(&[("path", "new\nline")]),
        file("ustar-name", b"N"),
        end(),
    ]
    .concat();
    let tmp = tempdir();
    let (_, src) = image(&tmp, "img", tar);
    let repo = Repo::new();
    repo.import(&src, "img");
    assert_eq!(repo.ok(&["cat", "img", "/new\nline"]).stdout, "N");
}
