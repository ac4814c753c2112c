//! Whole-tree comparison of two directories: type, permission bits, owner, xattrs
//! (`user.*`, `security.capability`), content digest and symlink target of every path.
//! Not compared: timestamps, and link counts (ostree checkouts hardlink identical objects).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

#[derive(Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub content: String,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

fn xattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(names) = xattr_list(p) else { return out };
    for n in names {
        if n.starts_with("user.") || n == "security.capability" {
            if let Some(v) = xattr_get(p, &n) {
                out.insert(n, v);
            }
        }
    }
    out
}

fn xattr_list(p: &Path) -> std::io::Result<Vec<String>> {
    let out = std::process::Command::new("getfattr")
        .args(["-h", "-d", "-m", "-", "--absolute-names", "-e", "hex"])
        .arg(p)
        .output()?;
    let s = String::from_utf8_lossy(&out.stdout);
    Ok(s.lines()
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.to_string()))
        .collect())
}

fn xattr_get(p: &Path, name: &str) -> Option<Vec<u8>> {
    let out = std::process::Command::new("getfattr")
        .args(["-h", "--only-values", "--absolute-names", "-n", name])
        .arg(p)
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// Every path below `root` (relative), with its metadata.
pub fn walk(root: &Path) -> BTreeMap<String, Node> {
    super::tools::require("getfattr");
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let (kind, content) = if ft.is_symlink() {
                ('l', std::fs::read_link(&p).unwrap().display().to_string())
            } else if ft.is_dir() {
                stack.push(p.clone());
                ('d', String::new())
            } else if ft.is_file() {
                ('-', hex::encode(Sha256::digest(std::fs::read(&p).unwrap())))
            } else {
                ('?', String::new())
            };
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let mode = if kind == 'l' { 0 } else { md.mode() & 0o7777 };
            out.insert(
                rel,
                Node {
                    kind,
                    mode,
                    uid: md.uid(),
                    gid: md.gid(),
                    content,
                    xattrs: xattrs(&p),
                },
            );
        }
    }
    out
}

/// Panics with a readable diff unless the two trees are equal and not empty.
pub fn assert_same(ours: &Path, oracle: &Path) {
    let n = assert_equal(ours, oracle);
    assert!(n > 0, "empty trees prove nothing");
}

/// Panics with a readable diff unless the two trees are equal (both empty included); returns
/// the number of paths.
pub fn assert_equal(ours: &Path, oracle: &Path) -> usize {
    let (a, b) = (walk(ours), walk(oracle));
    let mut diffs = Vec::new();
    for k in a
        .keys()
        .chain(b.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        if a.get(k) != b.get(k) {
            diffs.push(format!(
                "  {k}:\n    ocitree: {:?}\n    oracle:  {:?}",
                a.get(k),
                b.get(k)
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} paths differ ({} vs {} entries):\n{}",
        diffs.len(),
        a.len(),
        b.len(),
        diffs.join("\n")
    );
    a.len()
}
