//! The record that lets an OCI image carry an OSTree commit exactly: what the commit's tree
//! cannot say (the commit object itself: metadata, subject, body, timestamp, parent, related
//! objects; and its detached metadata, where signatures live) travels as image config labels
//! ([`crate::meta::labels`]).
//!
//! `ocitree encapsulate` writes the labels ([`EncapsulatedCommit::labels`]). `ocitree import`
//! of such an image merges the layers as usual, checks that the merged tree's root dirtree and
//! dirmeta are the ones the commit names, and writes the original commit object and detached
//! metadata ([`EncapsulatedCommit::write`]): the image ref then points at the **identical**
//! commit. ocitree's own record of the image (manifest, config, digests, source) cannot live
//! on that commit, so it goes on a second commit of the same tree under
//! `ocitree/encapsulated/<name>` ([`crate::refname::encapsulated_ref`]), whose metadata key
//! [`crate::meta::ENCAPSULATED`] names the commit it describes. The commit of an ostree
//! native container ([`crate::image::ostree_native`]) gets its record the same way.

use std::collections::BTreeMap;

use ostree::gio::prelude::*;
use ostree::{MutableTree, ObjectType, Repo, gio, glib};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::meta::labels;
use crate::repo::collection::REF_BINDING;

/// A commit object with its detached metadata, as carried by an encapsulated image.
#[derive(Clone, Debug)]
pub struct EncapsulatedCommit {
    /// The commit checksum (hex).
    pub checksum: String,
    /// The commit object (`(a{sv}aya(say)sstayay)`).
    pub commit: glib::Variant,
    /// The detached metadata (`a{sv}`), if the commit has any.
    pub detached: Option<glib::Variant>,
}

/// The ref bindings (`ostree.ref-binding`) of a commit object.
pub fn bound_refs(commit: &glib::Variant) -> Vec<String> {
    glib::VariantDict::new(Some(&commit.child_value(0)))
        .lookup::<Vec<String>>(REF_BINDING)
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Writes `detached` as the detached metadata of commit `checksum` unless it has some already.
/// Detached metadata carries no checksum of its own: an image must not replace the
/// signatures a commit already has here, so it is written only where there are none.
///
/// # Errors
/// libostree cannot read or write the detached metadata.
pub fn keep_detached(repo: &Repo, checksum: &str, detached: Option<&glib::Variant>) -> Result<()> {
    let existing = repo
        .read_commit_detached_metadata(checksum, gio::Cancellable::NONE)
        .map_err(Error::ostree(format!(
            "reading detached metadata of {checksum}"
        )))?;
    if let (Some(d), None) = (detached, existing) {
        repo.write_commit_detached_metadata(checksum, Some(d), gio::Cancellable::NONE)
            .map_err(Error::ostree(format!(
                "writing detached metadata of {checksum}"
            )))?;
    }
    Ok(())
}

fn commit_type() -> &'static glib::VariantTy {
    glib::VariantTy::new("(a{sv}aya(say)sstayay)").expect("valid type string")
}

impl EncapsulatedCommit {
    /// Loads commit `checksum` and its detached metadata from `repo`.
    ///
    /// # Errors
    /// The commit is missing or unreadable.
    pub fn load(repo: &Repo, checksum: &str) -> Result<EncapsulatedCommit> {
        let (commit, detached) = crate::repo::load_commit(repo, checksum)?;
        Ok(EncapsulatedCommit {
            checksum: checksum.to_string(),
            commit,
            detached,
        })
    }

    /// The commit timestamp (seconds since the epoch).
    pub fn timestamp(&self) -> u64 {
        ostree::commit_get_timestamp(&self.commit)
    }

    /// The root (dirtree, dirmeta) checksums the commit names.
    pub fn root(&self) -> (String, String) {
        crate::repo::commit_root(&self.commit)
    }

    /// The commit's metadata dictionary.
    pub fn metadata(&self) -> glib::VariantDict {
        glib::VariantDict::new(Some(&self.commit.child_value(0)))
    }

    /// The refs the commit is bound to (`ostree.ref-binding`, as `ostree commit -b` and
    /// `flatpak build-export` write it): clients pulling it check that they asked for one of
    /// them, so import creates them too.
    pub fn ref_bindings(&self) -> Vec<String> {
        bound_refs(&self.commit)
    }

    /// The config labels that carry this commit.
    pub fn labels(&self) -> Vec<(String, String)> {
        let mut out = vec![
            (labels::COMMIT.to_string(), self.checksum.clone()),
            (
                labels::COMMIT_OBJECT.to_string(),
                glib::base64_encode(&self.commit.data_as_bytes()).to_string(),
            ),
        ];
        if let Some(d) = &self.detached {
            out.push((
                labels::COMMIT_DETACHED.to_string(),
                glib::base64_encode(&d.data_as_bytes()).to_string(),
            ));
        }
        out
    }

    /// Reads the commit back from an image config's labels; `Ok(None)` when the image is not
    /// an encapsulated commit. `image` names the image in errors.
    ///
    /// # Errors
    /// [`Error::InvalidImage`] when the labels are incomplete, the object does not hash to the
    /// checksum, or either variant is malformed.
    pub fn from_labels(
        image: &str,
        l: &BTreeMap<String, String>,
    ) -> Result<Option<EncapsulatedCommit>> {
        let Some(checksum) = l.get(labels::COMMIT) else {
            return Ok(None);
        };
        let bad = |reason: String| Error::InvalidImage {
            image: image.to_string(),
            reason: format!("encapsulated commit {checksum}: {reason}"),
        };
        let object = l
            .get(labels::COMMIT_OBJECT)
            .ok_or_else(|| bad(format!("label {} is missing", labels::COMMIT_OBJECT)))?;
        let bytes =
            decode_base64(object).ok_or_else(|| bad("commit object is not base64".into()))?;
        let found = Digest::sha256_of(&bytes);
        if found.encoded() != checksum {
            return Err(bad(format!(
                "commit object hashes to {}, not to the checksum",
                found.encoded()
            )));
        }
        // Owned bytes: glib keeps them for the variant's life (a borrow would dangle).
        let commit = glib::Variant::from_data_with_type(bytes, commit_type());
        if !commit.is_normal_form() {
            return Err(bad(
                "commit object is not a normal-form commit variant".into()
            ));
        }
        let detached = match l.get(labels::COMMIT_DETACHED) {
            None => None,
            Some(s) => {
                let bytes = decode_base64(s)
                    .ok_or_else(|| bad("detached metadata is not base64".into()))?;
                let v = glib::Variant::from_data_with_type(bytes, glib::VariantTy::VARDICT);
                if !v.is_normal_form() {
                    return Err(bad("detached metadata is not a normal-form a{sv}".into()));
                }
                Some(v)
            }
        };
        Ok(Some(EncapsulatedCommit {
            checksum: checksum.clone(),
            commit,
            detached,
        }))
    }

    /// Writes the merged tree, checks that its root is the commit's, then writes the commit
    /// object and its detached metadata (inside the caller's transaction). Detached metadata
    /// the repository already has for this commit is kept: it has no checksum to check the
    /// image's against.
    ///
    /// # Errors
    /// [`Error::EncapsulatedMismatch`] when the tree differs from the commit's, or the stored
    /// commit gets another checksum; libostree failures.
    pub fn write(&self, repo: &Repo, image: &str, merged: &MutableTree) -> Result<()> {
        let root = repo
            .write_mtree(merged, gio::Cancellable::NONE)
            .map_err(Error::ostree("writing the merged tree"))?;
        let root = root
            .downcast::<ostree::RepoFile>()
            .expect("write_mtree returns a RepoFile");
        let _ = root.ensure_resolved();
        let found = (
            root.tree_get_contents_checksum()
                .map(|s| s.to_string())
                .unwrap_or_default(),
            root.tree_get_metadata_checksum()
                .map(|s| s.to_string())
                .unwrap_or_default(),
        );
        let mismatch = |what: &str, expected: String, found: String| Error::EncapsulatedMismatch {
            image: image.to_string(),
            commit: self.checksum.clone(),
            what: what.to_string(),
            expected,
            found,
        };
        let expected = self.root();
        if found.0 != expected.0 {
            return Err(mismatch("root dirtree", expected.0, found.0));
        }
        if found.1 != expected.1 {
            return Err(mismatch("root dirmeta", expected.1, found.1));
        }
        let written = repo
            .write_metadata(
                ObjectType::Commit,
                Some(&self.checksum),
                &self.commit,
                gio::Cancellable::NONE,
            )
            .map_err(Error::ostree(format!(
                "writing encapsulated commit {}",
                self.checksum
            )))?
            .to_hex();
        if written != self.checksum {
            return Err(mismatch("commit checksum", self.checksum.clone(), written));
        }
        keep_detached(repo, &self.checksum, self.detached.as_ref())
    }
}

/// Strict base64 (standard alphabet, padded): `None` for anything else, so that a label that
/// is not what we wrote is reported rather than half-decoded.
pub(crate) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let ok = s.len() % 4 == 0
        && s.trim_end_matches('=').len() + 2 >= s.len()
        && s.trim_end_matches('=')
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    ok.then(|| glib::base64_decode(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_strict() {
        let enc = glib::base64_encode(b"\x00\xffcommit").to_string();
        assert_eq!(decode_base64(&enc).as_deref(), Some(&b"\x00\xffcommit"[..]));
        assert_eq!(decode_base64("abc"), None);
        assert_eq!(decode_base64("ab c"), None);
        assert_eq!(decode_base64("a==="), None);
        assert_eq!(decode_base64("").as_deref(), Some(&b""[..]));
    }
}
