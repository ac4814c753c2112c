//! Small helpers over libostree's in-memory [`MutableTree`] and the dirtree objects it is
//! written to, shared by the layer, merge and image stages.

use ostree::{MutableTree, ObjectType, Repo, gio, glib};

/// What a name in a directory refers to.
#[derive(Debug)]
pub enum Node {
    /// A file, symlink included: its content object checksum.
    File(String),
    /// A subdirectory.
    Dir(MutableTree),
}

/// Looks `name` up in `dir`.
///
/// # Errors
/// Loading a lazily-filled directory from the repo failed.
pub fn get(dir: &MutableTree, name: &str) -> Result<Option<Node>, glib::Error> {
    match dir.lookup(name) {
        Ok((Some(csum), _)) => Ok(Some(Node::File(csum.to_string()))),
        Ok((None, Some(sub))) => Ok(Some(Node::Dir(sub))),
        Ok((None, None)) => Ok(None),
        Err(e) if e.matches(gio::IOErrorEnum::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Follows `path` from `root` without creating or resolving anything.
///
/// # Errors
/// Loading a lazily-filled directory failed.
pub fn get_path(root: &MutableTree, path: &[String]) -> Result<Option<Node>, glib::Error> {
    let Some((last, parents)) = path.split_last() else {
        return Ok(Some(Node::Dir(root.clone())));
    };
    let mut cur = root.clone();
    for name in parents {
        match get(&cur, name)? {
            Some(Node::Dir(d)) => cur = d,
            _ => return Ok(None),
        }
    }
    get(&cur, last)
}

/// Removes every child of `dir`.
///
/// # Errors
/// Loading a lazily-filled directory failed.
pub fn clear(dir: &MutableTree) -> Result<(), glib::Error> {
    // lookup() loads a lazily-filled directory and reports failure; copy_*() would abort instead.
    get(dir, ".")?;
    let names: Vec<String> = dir
        .copy_files()
        .into_keys()
        .chain(dir.copy_subdirs().into_keys())
        .collect();
    for name in names {
        dir.remove(&name, true)?;
    }
    Ok(())
}

/// Returns the subdirectory `name`, replacing a file of that name by an empty directory.
///
/// # Errors
/// A libostree error.
pub fn replace_with_dir(dir: &MutableTree, name: &str) -> Result<MutableTree, glib::Error> {
    if let Some(Node::File(_)) = get(dir, name)? {
        dir.remove(name, false)?;
    }
    dir.ensure_dir(name)
}

/// Puts a file (content object) at `name`, replacing a directory of that name.
///
/// # Errors
/// A libostree error.
pub fn replace_with_file(dir: &MutableTree, name: &str, checksum: &str) -> Result<(), glib::Error> {
    if let Some(Node::Dir(_)) = get(dir, name)? {
        dir.remove(name, false)?;
    }
    dir.replace_file(name, checksum)
}

/// How many symlinks one path resolution may follow (Linux's limit).
pub const MAX_SYMLINK_HOPS: usize = 40;

/// Walks `rest` from the directory `start` (both relative to the root) and returns the path
/// with every symlink met expanded, the way a path is resolved under `chroot`: absolute
/// targets restart at the root and `..` stops at it, so the result never leaves the root.
/// `symlink_at(prefix)` gives the target of a symlink at a resolved prefix, `None` for
/// anything else (directories, files, missing paths, which are kept as they are).
///
/// # Security
/// Symlink targets are untrusted data; nothing here touches the host filesystem.
///
/// # Errors
/// `symlink_at`'s errors; `Ok(None)` after more than [`MAX_SYMLINK_HOPS`] symlinks.
pub fn resolve_in_root<E>(
    start: Vec<String>,
    rest: impl IntoIterator<Item = String>,
    symlink_at: impl FnMut(&[String]) -> Result<Option<String>, E>,
) -> Result<Option<Vec<String>>, E> {
    resolve_in_root_checked(start, rest, symlink_at, |_| Ok(()))
}

/// [`resolve_in_root`], asking `leave(prefix)` before a `..` leaves the directory `prefix`:
/// a resolver that knows only part of the tree (one layer) refuses there when it cannot tell
/// that `prefix` is a directory (a symlink elsewhere would make `..` lead elsewhere).
///
/// # Errors
/// `symlink_at`'s and `leave`'s errors.
pub fn resolve_in_root_checked<E>(
    start: Vec<String>,
    rest: impl IntoIterator<Item = String>,
    mut symlink_at: impl FnMut(&[String]) -> Result<Option<String>, E>,
    mut leave: impl FnMut(&[String]) -> Result<(), E>,
) -> Result<Option<Vec<String>>, E> {
    let mut out = start;
    let mut rest: std::collections::VecDeque<String> = rest.into_iter().collect();
    let mut hops = 0;
    while let Some(c) = rest.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                if !out.is_empty() {
                    leave(&out)?;
                }
                out.pop();
                continue;
            }
            _ => out.push(c),
        }
        if let Some(target) = symlink_at(&out)? {
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Ok(None);
            }
            out.pop();
            if target.starts_with('/') {
                out.clear();
            }
            for part in target.split('/').rev() {
                rest.push_front(part.to_string());
            }
        }
    }
    Ok(Some(out))
}

/// A dirtree object's entries, checksums in hex: files (name, content object) and directories
/// (name, dirtree, dirmeta).
pub type DirtreeEntries = (Vec<(String, String)>, Vec<(String, String, String)>);

/// The entries of dirtree variant `v`, as `v.get::<ostree::TreeVariantType>()` gives them
/// (`None` when `v` is not of the dirtree type), read without a GVariant per checksum byte
/// (glib's generic `Vec<u8>` conversion makes one per element, which made loading dirtrees
/// the larger part of rebuilding an OS image's objects).
pub fn dirtree_entries(v: &glib::Variant) -> Option<ostree::TreeVariantType> {
    if v.type_().as_str() != "(a(say)a(sayay))" {
        return None;
    }
    let bytes = |v: glib::Variant| v.fixed_array::<u8>().ok().map(<[u8]>::to_vec);
    let (files_v, dirs_v) = (v.child_value(0), v.child_value(1));
    let mut files = Vec::with_capacity(files_v.n_children());
    for i in 0..files_v.n_children() {
        let e = files_v.child_value(i);
        files.push((
            e.child_value(0).str()?.to_string(),
            bytes(e.child_value(1))?,
        ));
    }
    let mut dirs = Vec::with_capacity(dirs_v.n_children());
    for i in 0..dirs_v.n_children() {
        let e = dirs_v.child_value(i);
        dirs.push((
            e.child_value(0).str()?.to_string(),
            bytes(e.child_value(1))?,
            bytes(e.child_value(2))?,
        ));
    }
    Some((files, dirs))
}

/// Loads dirtree object `csum`; `Ok(None)` when the object is not a dirtree.
///
/// # Errors
/// libostree cannot load it.
pub fn load_dirtree(repo: &Repo, csum: &str) -> Result<Option<DirtreeEntries>, glib::Error> {
    let v = repo.load_variant(ObjectType::DirTree, csum)?;
    Ok(dirtree_entries(&v).map(|(files, dirs)| {
        (
            files
                .into_iter()
                .map(|(n, c)| (n, hex::encode(c)))
                .collect(),
            dirs.into_iter()
                .map(|(n, c, m)| (n, hex::encode(c), hex::encode(m)))
                .collect(),
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(links: &[(&str, &str)], start: &[&str], path: &str) -> Option<String> {
        let links: std::collections::HashMap<String, String> = links
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let start = start.iter().map(|s| s.to_string()).collect();
        let rest = path.split('/').map(String::from);
        resolve_in_root::<()>(start, rest, |p| Ok(links.get(&p.join("/")).cloned()))
            .unwrap()
            .map(|v| v.join("/"))
    }

    #[test]
    fn dirtree_entries_read_what_glib_reads() {
        use glib::prelude::*;
        let t: ostree::TreeVariantType = (
            vec![("a".into(), vec![1; 32]), ("ü b".into(), (0..32).collect())],
            vec![("d".into(), vec![2; 32], (32..64).collect())],
        );
        let v = t.to_variant();
        assert_eq!(v.type_().as_str(), "(a(say)a(sayay))");
        assert_eq!(dirtree_entries(&v), v.get::<ostree::TreeVariantType>());
        assert_eq!(dirtree_entries(&v), Some(t));
        let empty: ostree::TreeVariantType = (vec![], vec![]);
        assert_eq!(dirtree_entries(&empty.to_variant()), Some(empty));
        assert_eq!(dirtree_entries(&("x", 1u32).to_variant()), None);
    }

    #[test]
    fn chroot_semantics() {
        let links = [
            ("lib", "usr/lib"),
            ("abs", "/usr/share"),
            ("up", "../../../usr"),
            ("loop", "loop"),
            ("usr/lib/rel", "../bin"),
        ];
        assert_eq!(resolve(&links, &[], "lib/x").as_deref(), Some("usr/lib/x"));
        assert_eq!(
            resolve(&links, &["opt"], "../abs/y").as_deref(),
            Some("usr/share/y")
        );
        assert_eq!(resolve(&links, &[], "up/z").as_deref(), Some("usr/z"));
        assert_eq!(
            resolve(&links, &[], "lib/rel/sh").as_deref(),
            Some("usr/bin/sh")
        );
        assert_eq!(resolve(&links, &[], "loop/x"), None);
        assert_eq!(resolve(&links, &[], "../../etc").as_deref(), Some("etc"));
    }
}
