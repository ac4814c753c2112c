//! Small helpers over libostree's in-memory [`MutableTree`], shared by the layer and merge stages.

use ostree::{MutableTree, gio, glib};

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
