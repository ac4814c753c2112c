//! Static deltas between versions of an image, made by libostree's generator: a client that
//! has the old commit fetches one delta instead of every changed object, and the summary
//! lists the deltas (it is regenerated afterwards).
//!
//! The old commit is named, or is the one the image pointed at before its last import
//! (recorded by import beside the new commit, [`crate::meta::PREVIOUS`]). `prune` drops a
//! delta once its target commit is gone (libostree's rule); one whose source commit is gone
//! stays, since clients still on that version use it.

use ostree::{Repo, StaticDeltaGenerateOpt, gio, glib};

use crate::error::{Error, Result};
use crate::image::{ImageInfo, commit};

/// Where a delta starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaFrom {
    /// From this commit or ref.
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
        DeltaFrom::Rev(r) => Some(
            repo.resolve_rev(r, false)
                .map_err(Error::ostree(format!("resolving {r}")))?
                .map(|c| c.to_string())
                .ok_or_else(|| Error::NotFound(format!("revision {r}")))?,
        ),
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
        return Err(Error::InvalidReference {
            reference: name.to_string(),
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
