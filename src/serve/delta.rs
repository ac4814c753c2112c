//! Static deltas between versions of an image, made by libostree's generator: a client that
//! has the old commit fetches one delta instead of every changed object, and the summary
//! lists the deltas (it is regenerated afterwards).
//!
//! The old commit is named, or is the one the image pointed at before its last import
//! (recorded by import beside the new commit, [`crate::meta::PREVIOUS`]). `prune` drops a
//! delta once its target commit is gone ([`prune`], libostree's own rule); one whose source
//! commit is gone stays, since clients still on that version use it.

use ostree::gio::prelude::*;
use ostree::{Repo, StaticDeltaGenerateOpt, gio, glib};

use crate::error::{Error, Result};
use crate::image::{ImageInfo, commit, refs};

/// Where a delta starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaFrom {
    /// From this commit, ref or image name.
    Rev(String),
    /// From the commit the image pointed at before its last import.
    Previous,
    /// From nothing: a "from-scratch" delta holding the whole commit.
    Scratch,
}

/// Generates the static delta to image `name`'s commit; returns the delta's name
/// (`FROM-TO`, or `TO` from scratch).
///
/// # Errors
/// No such image or source revision, no previous commit recorded (or it is gone), or libostree
/// fails.
pub fn generate(repo: &Repo, name: &str, from: &DeltaFrom) -> Result<String> {
    let info = ImageInfo::load(repo, name)?;
    let to = info.commit;
    let from = match from {
        DeltaFrom::Scratch => None,
        DeltaFrom::Rev(r) => Some(refs::resolve_rev(repo, r)?),
        DeltaFrom::Previous => {
            let holder = info.record.as_deref().unwrap_or(&to);
            let prev = commit::previous(repo, holder)?
                .remove(name)
                .ok_or_else(|| {
                    Error::NotFound(format!(
                        "a previous commit of image {name} (it was imported once, or before \
                     ocitree recorded previous commits)"
                    ))
                })?;
            if !repo
                .has_object(ostree::ObjectType::Commit, &prev, gio::Cancellable::NONE)
                .map_err(Error::ostree(format!("looking up {prev}")))?
            {
                return Err(Error::NotFound(format!(
                    "commit {prev}, image {name}'s previous version (pruned)"
                )));
            }
            Some(prev)
        }
    };
    if from.as_deref() == Some(to.as_str()) {
        return Err(Error::Invalid {
            what: format!("delta to image {name}"),
            reason: "the delta would start and end at the same commit".into(),
        });
    }
    // libostree reads the parameters without a NULL check: an empty dictionary, not None.
    let params = glib::VariantDict::new(None).end();
    repo.static_delta_generate(
        StaticDeltaGenerateOpt::Major,
        from.as_deref(),
        &to,
        None,
        Some(&params),
        gio::Cancellable::NONE,
    )
    .map_err(Error::ostree(format!(
        "generating the static delta to {to}"
    )))?;
    Ok(match from {
        Some(f) => format!("{f}-{to}"),
        None => to,
    })
}

/// The static delta from image `name`'s previous commit to its commit, generated if the
/// repository lacks it (an import killed before it made it); its name, or `None` when no
/// previous commit is recorded or it is gone.
///
/// # Errors
/// libostree fails.
pub fn from_previous_if_missing(repo: &Repo, name: &str) -> Result<Option<String>> {
    let info = ImageInfo::load(repo, name)?;
    let holder = info.record.as_deref().unwrap_or(&info.commit);
    let Some(prev) = commit::previous(repo, holder)?.remove(name) else {
        return Ok(None);
    };
    let want = format!("{prev}-{}", info.commit);
    let names = repo
        .list_static_delta_names(gio::Cancellable::NONE)
        .map_err(Error::ostree("listing static deltas"))?;
    if names.iter().any(|n| n.as_str() == want) {
        return Ok(Some(want));
    }
    let present = repo
        .has_object(ostree::ObjectType::Commit, &prev, gio::Cancellable::NONE)
        .map_err(Error::ostree(format!("looking up {prev}")))?;
    if !present {
        return Ok(None);
    }
    generate(repo, name, &DeltaFrom::Previous).map(Some)
}

/// Deletes the static deltas whose target commit is not in the repository; returns how many.
///
/// # Errors
/// libostree cannot list the deltas, or a delta directory cannot be removed.
pub fn prune(repo: &Repo) -> Result<usize> {
    let names = repo
        .list_static_delta_names(gio::Cancellable::NONE)
        .map_err(Error::ostree("listing static deltas"))?;
    let root = repo
        .path()
        .path()
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    let mut removed = 0;
    for name in names {
        let (from, to) = match name.split_once('-') {
            Some((f, t)) => (Some(f), t),
            None => (None, name.as_str()),
        };
        let present = repo
            .has_object(ostree::ObjectType::Commit, to, gio::Cancellable::NONE)
            .map_err(Error::ostree(format!("looking up {to}")))?;
        if present {
            continue;
        }
        let Some(dir) = delta_path(from, to) else {
            continue;
        };
        let dir = root.join(dir);
        std::fs::remove_dir_all(&dir).map_err(Error::io(format!("removing {}", dir.display())))?;
        // its `deltas/XX` directory too, once empty (a directory still holding others stays)
        if let Some(parent) = dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
        removed += 1;
    }
    Ok(removed)
}

/// libostree's "modified base64" of a checksum: standard base64 of its 32 bytes without
/// padding, `/` written `_`.
fn b64(checksum: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = hex::decode(checksum).ok().filter(|b| b.len() == 32)?;
    Some(
        base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(bytes)
            .replace('/', "_"),
    )
}

/// Where libostree keeps a delta: `deltas/FF/ROM-TO` (`FROM`, `TO` in modified base64, the
/// first two characters of the first one as a directory), `deltas/TO[..2]/TO[2..]` from
/// scratch.
fn delta_path(from: Option<&str>, to: &str) -> Option<String> {
    let to = b64(to)?;
    Some(match from {
        Some(f) => {
            let f = b64(f)?;
            format!("deltas/{}/{}-{to}", &f[..2], &f[2..])
        }
        None => format!("deltas/{}/{}", &to[..2], &to[2..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The path is the one libostree itself gives a delta.
    #[test]
    fn delta_paths_are_libostrees() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repo::new_for_path(dir.path());
        repo.create(ostree::RepoMode::Archive, gio::Cancellable::NONE)
            .unwrap();
        let commit = |content: &[u8]| {
            repo.prepare_transaction(gio::Cancellable::NONE).unwrap();
            let tree = ostree::MutableTree::new();
            let meta = crate::layer::object::default_dirmeta(&repo).unwrap();
            tree.set_metadata_checksum(&meta);
            let f = repo
                .write_regfile_inline(None, 0, 0, 0o100644, None, content, gio::Cancellable::NONE)
                .unwrap();
            tree.replace_file("f", &f).unwrap();
            let dict = glib::VariantDict::new(None);
            let c = crate::repo::write_tree_commit(&repo, &tree, "t", &dict, 0).unwrap();
            repo.commit_transaction(gio::Cancellable::NONE).unwrap();
            c
        };
        let (a, b) = (commit(b"a"), commit(b"b"));
        let params = glib::VariantDict::new(None).end();
        for from in [Some(a.as_str()), None] {
            repo.static_delta_generate(
                StaticDeltaGenerateOpt::Major,
                from,
                &b,
                None,
                Some(&params),
                gio::Cancellable::NONE,
            )
            .unwrap();
            let path = dir.path().join(delta_path(from, &b).unwrap());
            assert!(path.join("superblock").is_file(), "{}", path.display());
        }
        assert_eq!(delta_path(None, "nothex"), None);
        // and prune removes both once the target is gone
        std::fs::remove_file(
            dir.path()
                .join(format!("objects/{}/{}.commit", &b[..2], &b[2..])),
        )
        .unwrap();
        assert_eq!(prune(&repo).unwrap(), 2);
        assert!(
            repo.list_static_delta_names(gio::Cancellable::NONE)
                .unwrap()
                .is_empty()
        );
    }
}
