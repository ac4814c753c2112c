//! Reading an "ostree native container", the image format ostree-ext writes for bootc,
//! rpm-ostree and CoreOS: the image ref gets **the commit itself**, with the checksum the
//! `ostree.commit` label names.
//!
//! Such an image (ostree-ext 0.15, tar format v1) is one commit layer then component
//! ("chunk") layers; the config label `ostree.final-diffid` names the diff_id of the last
//! layer that belongs to the commit. Each of these layers holds OSTree objects under
//! `sysroot/ostree/repo/objects/XX/REST.{commit,commitmeta,dirtree,dirmeta,file}`, the xattrs
//! of each file object in a `.file-xattrs` object that a `.file-xattrs-link` next to it links
//! to, and hardlinks from the checkout paths to the `.file` objects (which are not read here).
//!
//! The layers are imported like any other: one commit per layer, found again by blob digest
//! or diff_id, so a new version of an OS image only reads the chunks that changed. Then
//! [`NativeCommit::rebuild`] walks each layer commit's object directory and writes the real
//! objects (`objects.rs`): metadata objects from their bytes, file objects from the layer's
//! file (content, owner, mode) plus the xattrs of its `.file-xattrs-link`, each checked
//! against the checksum its name gives; the commit object and its detached metadata last,
//! after checking that every object the commit reaches is there (`complete.rs`).
//!
//! Layers after `ostree.final-diffid` ("derived" layers, a Containerfile's `RUN` or `COPY`)
//! are each imported as their own layer commit too, and applied on the commit's tree the way
//! ostree-ext applies them ([`derived`]); the image ref then points at the image commit of
//! that tree, which records the commit it was derived from
//! ([`crate::meta::OSTREE_BASE`]).

mod complete;
pub mod derived;
mod objects;

/// What [`NativeCommit::write_layer_objects`] found of the commit in one layer.
pub use objects::Found as LayerObjects;
pub(crate) use objects::object_path;

use std::collections::BTreeMap;

use ostree::{ObjectType, Repo, gio};

use crate::error::{Error, LayerError, Result};

/// Config label: the checksum of the commit the image carries.
pub const COMMIT_LABEL: &str = "ostree.commit";
/// Config label: the diff_id of the last layer that belongs to the commit.
pub const FINAL_DIFFID_LABEL: &str = "ostree.final-diffid";
/// Layer annotation of a component layer: the comma-separated components it holds.
pub const COMPONENTS_ANNOTATION: &str = "ostree.components";

/// The commit an ostree native container carries, as its config labels name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeCommit {
    /// The commit checksum (`ostree.commit`).
    pub checksum: String,
    /// The diff_id of the last layer of the commit (`ostree.final-diffid`).
    pub final_diffid: String,
}

/// One layer of the image, as the rebuild needs it.
#[derive(Clone, Debug)]
pub struct NativeLayer {
    /// Blob digest (names the layer in errors).
    pub digest: String,
    /// The layer commit ocitree stored it as.
    pub commit: String,
}

fn bad(image: &str, reason: String) -> Error {
    Error::InvalidImage {
        image: image.to_string(),
        reason,
    }
}

/// Writes the objects of every layer of `layers` not in `written` ([`objects::write_layer`]),
/// `jobs` layers at a time; returns what each carries of the commit, in layer order. A
/// failure stops the hand-out of further layers, and the error of the earliest failed layer
/// is returned, whatever the thread timing.
fn write_layers(
    repo: &Repo,
    image: &str,
    layers: &[NativeLayer],
    jobs: usize,
    written: &BTreeMap<String, LayerObjects>,
) -> Result<Vec<objects::Found>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<std::result::Result<objects::Found, LayerError>>>> =
        layers.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, layers.len().max(1)) {
            let repo = repo.clone();
            let (next, results) = (&next, &results);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(layer) = layers.get(i) else { break };
                    let r = match written.get(&layer.commit) {
                        Some(found) => Ok(found.clone()),
                        None => objects::write_layer(&repo, &layer.commit),
                    };
                    let failed = r.is_err();
                    if let Ok(mut slot) = results[i].lock() {
                        *slot = Some(r);
                    }
                    if failed {
                        next.store(layers.len(), Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let mut out = Vec::with_capacity(layers.len());
    for (layer, slot) in layers.iter().zip(results) {
        match slot.into_inner().ok().flatten() {
            Some(Ok(found)) => out.push(found),
            Some(Err(cause)) => {
                return Err(Error::Layer {
                    image: image.to_string(),
                    layer: layer.digest.clone(),
                    cause,
                });
            }
            None => {
                return Err(Error::Io {
                    context: format!("image {image}: layer {}", layer.digest),
                    cause: std::io::Error::other("its objects were not written"),
                });
            }
        }
    }
    Ok(out)
}

/// True for a lowercase hex SHA-256 (the only checksums OSTree uses).
pub(crate) fn is_checksum(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl NativeCommit {
    /// Reads the labels of image `image` (named in errors).
    ///
    /// # Errors
    /// [`Error::InvalidImage`] when `ostree.commit` is missing or not a checksum, or
    /// `ostree.final-diffid` is missing (as ostree-ext, which refuses such images too).
    pub fn from_labels(image: &str, labels: &BTreeMap<String, String>) -> Result<NativeCommit> {
        let checksum = labels
            .get(COMMIT_LABEL)
            .ok_or_else(|| bad(image, format!("label {COMMIT_LABEL} is missing")))?;
        if !is_checksum(checksum) {
            return Err(bad(
                image,
                format!("label {COMMIT_LABEL}={checksum:?} is not an OSTree checksum"),
            ));
        }
        let final_diffid = labels.get(FINAL_DIFFID_LABEL).ok_or_else(|| {
            bad(
                image,
                format!(
                    "ostree native container {checksum} has no {FINAL_DIFFID_LABEL} label: \
                     written by an ostree-ext older than the chunked format (tar format v0), \
                     which ocitree does not read; use --format plain to import its layers as \
                     they are"
                ),
            )
        })?;
        Ok(NativeCommit {
            checksum: checksum.clone(),
            final_diffid: final_diffid.clone(),
        })
    }

    /// Checks the layer list (`diff_ids`, the config's, base first) against the labels and
    /// returns how many layers belong to the commit; the rest are derived layers
    /// ([`derived`]).
    ///
    /// # Errors
    /// [`Error::InvalidImage`] when no layer has the final diff_id.
    pub fn check_layers(&self, image: &str, diff_ids: &[String]) -> Result<usize> {
        let Some(last) = diff_ids.iter().position(|d| *d == self.final_diffid) else {
            return Err(bad(
                image,
                format!(
                    "label {FINAL_DIFFID_LABEL}={} names no layer of the image",
                    self.final_diffid
                ),
            ));
        };
        Ok(last + 1)
    }

    /// Writes the commit and every object it reaches from the layer commits `layers` (the
    /// image's, base first, `jobs` layers at a time; those in `written`, by layer commit,
    /// were written already by [`NativeCommit::write_layer_objects`]), inside the caller's
    /// transaction. Detached metadata the repository already has for this commit is kept (it
    /// has no checksum to check the image's against); otherwise the image's is written.
    ///
    /// # Errors
    /// [`Error::Layer`] naming the layer and object when an object is malformed or does not
    /// match its checksum; [`Error::InvalidImage`] when the commit object is missing, another
    /// commit is there, or an object the commit reaches is in no layer; libostree failures.
    pub fn rebuild(
        &self,
        repo: &Repo,
        image: &str,
        layers: &[NativeLayer],
        jobs: usize,
        written: &BTreeMap<String, LayerObjects>,
    ) -> Result<()> {
        let mut commit = None;
        let mut detached = None;
        let all = write_layers(repo, image, layers, jobs, written)?;
        for (layer, found) in layers.iter().zip(all) {
            let layer_err = |cause| Error::Layer {
                image: image.to_string(),
                layer: layer.digest.clone(),
                cause,
            };
            for (checksum, v) in found.commits {
                if checksum != self.checksum || commit.is_some() {
                    return Err(layer_err(LayerError::OstreeObject {
                        object: objects::object_path(&checksum, "commit"),
                        reason: format!(
                            "a second commit object; the image is commit {} \
                             ({COMMIT_LABEL})",
                            self.checksum
                        ),
                    }));
                }
                commit = Some(v);
            }
            for (checksum, v) in found.commitmeta {
                if checksum != self.checksum {
                    return Err(layer_err(LayerError::OstreeObject {
                        object: objects::object_path(&checksum, "commitmeta"),
                        reason: format!(
                            "detached metadata of another commit than {}",
                            self.checksum
                        ),
                    }));
                }
                detached = Some(v);
            }
        }
        let commit = commit.ok_or_else(|| {
            bad(
                image,
                format!(
                    "commit object {} ({COMMIT_LABEL}) is in none of its layers",
                    self.checksum
                ),
            )
        })?;
        complete::check(repo, image, &self.checksum, &commit)?;
        let written = repo
            .write_metadata(
                ObjectType::Commit,
                Some(&self.checksum),
                &commit,
                gio::Cancellable::NONE,
            )
            .map_err(Error::ostree(format!("writing commit {}", self.checksum)))?
            .to_hex();
        if written != self.checksum {
            return Err(bad(
                image,
                format!("commit object {} was stored as {written}", self.checksum),
            ));
        }
        crate::image::encapsulated::keep_detached(repo, &self.checksum, detached.as_ref())
    }

    /// Writes the objects layer commit `layer_commit` (of blob `digest`) carries but the
    /// commit and its detached metadata, which it returns for [`NativeCommit::rebuild`]: an
    /// import does it as soon as the layer is read, while other layers are still read.
    ///
    /// # Errors
    /// [`Error::Layer`] naming the layer and object when an object is malformed or does not
    /// match its checksum; libostree failures.
    pub fn write_layer_objects(
        repo: &Repo,
        image: &str,
        digest: &str,
        layer_commit: &str,
    ) -> Result<LayerObjects> {
        objects::write_layer(repo, layer_commit).map_err(|cause| Error::Layer {
            image: image.to_string(),
            layer: digest.to_string(),
            cause,
        })
    }

    /// The commit's tree with the derived layers `derived` (digest, layer tree; base first)
    /// applied the way ostree-ext applies them, or as `rules` says ([`derived`]).
    ///
    /// # Errors
    /// [`Error::Layer`] naming image, layer and path for what is refused or fails.
    pub fn derived_tree(
        &self,
        repo: &Repo,
        image: &str,
        derived: &[(String, crate::merge::LayerTree)],
        rules: derived::DerivedRules,
    ) -> Result<ostree::MutableTree> {
        let tree = self.tree(repo)?;
        let layer_err = |digest: &str| {
            let (image, layer) = (image.to_string(), digest.to_string());
            move |cause| Error::Layer {
                image,
                layer,
                cause,
            }
        };
        let first = derived.first().map_or("", |(d, _)| d.as_str());
        derived::check_base(&tree).map_err(layer_err(first))?;
        let default_meta = crate::layer::object::default_dirmeta(repo)
            .map_err(Error::ostree("writing dirmeta"))?;
        let mut applier = derived::DerivedApplier::new(repo, &tree, default_meta, rules);
        for (digest, layer) in derived {
            applier.apply_layer(layer).map_err(layer_err(digest))?;
        }
        Ok(tree)
    }

    /// The commit's root as a tree to commit again (ocitree's record of the image is a
    /// commit of the same tree, as for encapsulated commits); nothing is copied.
    ///
    /// # Errors
    /// The commit is not in `repo`.
    pub fn tree(&self, repo: &Repo) -> Result<ostree::MutableTree> {
        let v = repo
            .load_variant(ObjectType::Commit, &self.checksum)
            .map_err(Error::ostree(format!("loading commit {}", self.checksum)))?;
        let (contents, meta) = crate::repo::commit_root(&v);
        Ok(ostree::MutableTree::from_checksum(repo, &contents, &meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::labels;

    #[test]
    fn labels_are_checked() {
        let c = "ab".repeat(32);
        let ok = NativeCommit::from_labels(
            "img",
            &labels(&[(COMMIT_LABEL, &c), (FINAL_DIFFID_LABEL, "sha256:1")]),
        )
        .unwrap();
        assert_eq!(ok.checksum, c);
        let err = NativeCommit::from_labels("img", &labels(&[(COMMIT_LABEL, &c)]))
            .unwrap_err()
            .to_string();
        assert!(err.contains(FINAL_DIFFID_LABEL), "{err}");
        let err = NativeCommit::from_labels(
            "img",
            &labels(&[(COMMIT_LABEL, "AB"), (FINAL_DIFFID_LABEL, "sha256:1")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not an OSTree checksum"), "{err}");
    }

    #[test]
    fn layers_after_the_final_diffid_are_derived() {
        let n = NativeCommit {
            checksum: "ab".repeat(32),
            final_diffid: "sha256:2".into(),
        };
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let base = n.check_layers("img", &ids(&["sha256:1", "sha256:2"]));
        assert_eq!(base.unwrap(), 2);
        let base = n.check_layers("img", &ids(&["sha256:1", "sha256:2", "sha256:3"]));
        assert_eq!(base.unwrap(), 2);
        let err = n
            .check_layers("img", &ids(&["sha256:1"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("names no layer"), "{err}");
    }
}
