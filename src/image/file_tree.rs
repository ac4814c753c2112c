//! The file-tree artifact: a directory tree as nested OCI indexes, one blob per regular file
//! (written by `ocitree encapsulate --format file-tree`, read back by `ocitree import`). This
//! module is the mapping itself, shared by both sides; README "Directory trees as nested
//! indexes" states it for other tools.
//!
//! - A directory whose only entries are regular files (at most `--max-blobs` of them), or the
//!   root holding only such files, is an **image manifest**: `artifactType`
//!   [`ARTIFACT_TYPE`], the empty config ([`EMPTY_CONFIG_TYPE`], `{}`), one layer per file in
//!   byte order of the names, media type [`FILE_MEDIA_TYPE`], blob = the file's bytes, title
//!   annotation = the file name.
//! - Any other directory is an **image index** (`artifactType` [`ARTIFACT_TYPE`]): first the
//!   manifests of its files, [`max blobs`](crate::export::file_tree::FileTreeOptions::max_blobs)
//!   per manifest in name order, their descriptors *without* a title; then one descriptor per
//!   non-empty subdirectory, in name order, whose title annotation is the subdirectory's name.
//! - Owner, mode and xattrs ride in annotations: [`MODE`], [`OWNER`], [`XATTRS`] on each file's
//!   layer descriptor, and on the manifest or index that is a directory for the directory
//!   itself. Symlinks and empty directories have no blob: they are listed in the directory's
//!   [`ENTRIES`] annotation.
//!
//! Absent annotations mean `0644` files, `0755` directories, owner `0:0`, no xattrs.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::entries::Xattrs;

/// `artifactType` of every manifest and index of a file tree.
pub const ARTIFACT_TYPE: &str = "application/vnd.ocitree.file-tree.v1";
/// Media type of a file's layer (the blob is the raw file).
pub const FILE_MEDIA_TYPE: &str = "application/octet-stream";
/// The OCI empty descriptor's media type, the config of every file-tree manifest.
pub const EMPTY_CONFIG_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The empty config's bytes.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The name of a file (layer descriptor) or a subdirectory (index entry).
pub const TITLE: &str = "org.opencontainers.image.title";
/// Permission bits, setuid/setgid/sticky included, as four octal digits (`0644`).
pub const MODE: &str = "org.ocitree.file-tree.mode";
/// Numeric owner as `UID:GID`.
pub const OWNER: &str = "org.ocitree.file-tree.owner";
/// Extended attributes: a JSON object, name → base64 (standard, padded) of the value.
pub const XATTRS: &str = "org.ocitree.file-tree.xattrs";
/// A directory's entries without a blob: a JSON array of [`Extra`], sorted by name.
pub const ENTRIES: &str = "org.ocitree.file-tree.entries";
/// Deepest directory nesting written or read (the root is depth 0).
pub const MAX_DEPTH: usize = 64;
/// Most manifests and indexes one import reads.
pub const MAX_DOCUMENTS: usize = 1_000_000;
/// The most files per manifest unless `--max-blobs` says otherwise.
pub const DEFAULT_MAX_BLOBS: usize = 1000;

/// What an imported file tree records on its image commit ([`crate::meta::FILE_TREE`]):
/// enough to list it and to write it again as the same artifact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FileTreeRecord {
    /// The most files per manifest the artifact was sharded with, as `encapsulate
    /// --max-blobs` takes it: inferred from the shards (the size of a full one when a
    /// directory was split, else the default when no manifest is larger).
    pub max_blobs: usize,
    /// Regular files.
    pub files: usize,
    /// Distinct file blobs.
    pub blobs: usize,
    /// Their total size.
    pub bytes: u64,
}

/// Owner, permission bits and xattrs of one file or directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Xattrs, sorted by name.
    pub xattrs: Xattrs,
}

/// A directory entry carried by the [`ENTRIES`] annotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extra {
    /// The entry's name.
    pub name: String,
    /// `symlink` or `dir` (an empty directory).
    #[serde(rename = "type")]
    pub kind: String,
    /// The symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// As the [`MODE`] annotation (directories; symlinks are always `0777` in OSTree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// As the [`OWNER`] annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// As the [`XATTRS`] annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xattrs: Option<BTreeMap<String, String>>,
}

/// Symlink [`Extra::kind`].
pub const EXTRA_SYMLINK: &str = "symlink";
/// Empty directory [`Extra::kind`].
pub const EXTRA_DIR: &str = "dir";

impl Meta {
    /// The annotations that carry it, defaults left out (`default_mode`: `0o644` for files,
    /// `0o755` for directories). `None` when an xattr name is not UTF-8 (no JSON key can
    /// hold it).
    pub fn annotations(&self, default_mode: u32) -> Option<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        if self.mode != default_mode {
            out.insert(MODE.to_string(), format!("{:04o}", self.mode));
        }
        if (self.uid, self.gid) != (0, 0) {
            out.insert(OWNER.to_string(), format!("{}:{}", self.uid, self.gid));
        }
        if !self.xattrs.is_empty() {
            let map = xattrs_map(&self.xattrs)?;
            out.insert(
                XATTRS.to_string(),
                serde_json::to_string(&map).expect("maps serialize"),
            );
        }
        Some(out)
    }

    /// Reads it back from `annotations` (see [`Meta::annotations`]).
    ///
    /// # Errors
    /// A malformed mode, owner or xattrs value, described.
    pub fn from_annotations(
        annotations: &BTreeMap<String, String>,
        default_mode: u32,
    ) -> Result<Meta, String> {
        let xattrs = match annotations.get(XATTRS) {
            Some(s) => {
                let map: BTreeMap<String, String> = serde_json::from_str(s)
                    .map_err(|e| format!("{XATTRS}: not a JSON object of strings: {e}"))?;
                Some(map)
            }
            None => None,
        };
        Meta::parse(
            annotations.get(MODE).map(String::as_str),
            annotations.get(OWNER).map(String::as_str),
            xattrs.as_ref(),
            default_mode,
        )
    }

    /// Parses the three values (absent: the defaults).
    ///
    /// # Errors
    /// A malformed value, described.
    pub fn parse(
        mode: Option<&str>,
        owner: Option<&str>,
        xattrs: Option<&BTreeMap<String, String>>,
        default_mode: u32,
    ) -> Result<Meta, String> {
        let mode = match mode {
            None => default_mode,
            Some(m) => u32::from_str_radix(m, 8)
                .ok()
                .filter(|v| *v <= 0o7777 && !m.is_empty() && m.len() <= 6)
                .ok_or_else(|| format!("mode {m:?} is not octal permission bits (0000-7777)"))?,
        };
        let (uid, gid) = match owner {
            None => (0, 0),
            Some(o) => o
                .split_once(':')
                .and_then(|(u, g)| Some((u.parse().ok()?, g.parse().ok()?)))
                .ok_or_else(|| format!("owner {o:?} is not UID:GID"))?,
        };
        let mut out = Xattrs::new();
        for (name, value) in xattrs.into_iter().flatten() {
            if name.is_empty() || name.contains('\0') {
                return Err(format!("xattr name {name:?} is empty or holds NUL"));
            }
            let v = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|e| format!("xattr {name:?}: value is not base64: {e}"))?;
            out.push((name.as_bytes().to_vec(), v));
        }
        out.sort();
        Ok(Meta {
            mode,
            uid,
            gid,
            xattrs: out,
        })
    }

    /// As an [`Extra`] of `kind` named `name` (`target` for symlinks).
    pub fn extra(&self, name: &str, kind: &str, target: Option<String>) -> Option<Extra> {
        let dir = kind == EXTRA_DIR;
        Some(Extra {
            name: name.to_string(),
            kind: kind.to_string(),
            target,
            mode: (dir && self.mode != 0o755).then(|| format!("{:04o}", self.mode)),
            owner: ((self.uid, self.gid) != (0, 0)).then(|| format!("{}:{}", self.uid, self.gid)),
            xattrs: if self.xattrs.is_empty() {
                None
            } else {
                Some(xattrs_map(&self.xattrs)?)
            },
        })
    }
}

fn xattrs_map(x: &Xattrs) -> Option<BTreeMap<String, String>> {
    x.iter()
        .map(|(n, v)| {
            let name = String::from_utf8(n.clone()).ok()?;
            Some((name, base64::engine::general_purpose::STANDARD.encode(v)))
        })
        .collect()
}

/// Why `name` cannot be a file-tree entry name, if it cannot: one path component, not empty,
/// not `.` or `..`, no `/` and no NUL.
pub fn bad_name(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("an empty name")
    } else if name == "." || name == ".." {
        Some("not a name (. or ..)")
    } else if name.contains('/') {
        Some("a name holding /")
    } else if name.contains('\0') {
        Some("a name holding NUL")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_defaults_stay_implicit() {
        let m = Meta {
            mode: 0o4750,
            uid: 1000,
            gid: 50,
            xattrs: vec![(b"user.a".to_vec(), vec![0, 255, 10])],
        };
        let a = m.annotations(0o644).unwrap();
        assert_eq!(a[MODE], "4750");
        assert_eq!(a[OWNER], "1000:50");
        assert_eq!(Meta::from_annotations(&a, 0o644).unwrap(), m);
        let plain = Meta {
            mode: 0o644,
            ..Meta::default()
        };
        assert!(plain.annotations(0o644).unwrap().is_empty());
        assert_eq!(
            Meta::from_annotations(&BTreeMap::new(), 0o644).unwrap(),
            plain
        );
    }

    #[test]
    fn bad_values_are_described() {
        for (mode, owner) in [
            (Some("9"), None),
            (Some("17777"), None),
            (Some(""), None),
            (Some("-1"), None),
            (None, Some("0")),
            (None, Some("a:b")),
            (None, Some("1:99999999999")),
        ] {
            assert!(
                Meta::parse(mode, owner, None, 0o644).is_err(),
                "{mode:?} {owner:?}"
            );
        }
        let x = BTreeMap::from([("user.a".to_string(), "***".to_string())]);
        assert!(Meta::parse(None, None, Some(&x), 0o644).is_err());
    }

    #[test]
    fn names_are_single_components() {
        for bad in ["", ".", "..", "a/b", "/etc", "a\0"] {
            assert!(bad_name(bad).is_some(), "{bad:?}");
        }
        assert_eq!(bad_name("..."), None);
        assert_eq!(bad_name(" x"), None);
    }
}
