//! Importing a flatpak OCI image (`flatpak build-bundle --oci`, recognised by its
//! `org.flatpak.ref` label) as the commit flatpak installs: the merged tree with the commit
//! metadata the labels carry (`org.flatpak.commit-metadata.KEY`: `xa.metadata`, `xa.ref`,
//! the sizes, the ref binding), subject, body and timestamp, as `flatpak build-import-bundle
//! --oci` rebuilds it. The image ref and the flatpak ref (`app/…` or `runtime/…`, from the
//! ref binding) then name that commit, so that after `flatpak build-update-repo` the
//! repository serves it to `flatpak install`.
//!
//! flatpak's own import adds keys in hash-table order, so its commit checksum cannot be
//! reproduced (nor is the one in `org.flatpak.commit`); this commit is a function of the
//! image alone instead: keys sorted, `xa.alt-id` the manifest digest as flatpak sets it.

use std::collections::BTreeMap;

use ostree::{MutableTree, Repo, glib};

use crate::error::{Error, Result};
use crate::image::EncapsulatedCommit;
use crate::repo::collection::{COLLECTION_BINDING, REF_BINDING};

/// The label naming the flatpak ref (`app/ID/ARCH/BRANCH` or `runtime/…`).
pub const REF_LABEL: &str = "org.flatpak.ref";
const METADATA_PREFIX: &str = "org.flatpak.commit-metadata.";

/// The commit a flatpak image describes, before its tree is written.
#[derive(Clone, Debug)]
pub struct FlatpakCommit {
    /// The flatpak ref.
    pub flatpak_ref: String,
    metadata: BTreeMap<String, glib::Variant>,
    subject: String,
    body: String,
    timestamp: u64,
}

impl FlatpakCommit {
    /// Reads the commit from the labels of image `image` (named in errors); `Ok(None)` when
    /// it is not a flatpak image.
    ///
    /// # Errors
    /// [`Error::InvalidImage`] for an invalid ref, a metadata label that is not a base64
    /// serialised variant, a missing `xa.metadata` or a bad timestamp.
    pub fn from_labels(
        image: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Option<FlatpakCommit>> {
        let Some(flatpak_ref) = labels.get(REF_LABEL) else {
            return Ok(None);
        };
        let bad = |reason: String| Error::InvalidImage {
            image: image.to_string(),
            reason: format!("flatpak image {flatpak_ref}: {reason}"),
        };
        if ostree::validate_rev(flatpak_ref).is_err()
            || !(flatpak_ref.starts_with("app/") || flatpak_ref.starts_with("runtime/"))
        {
            return Err(bad(
                "label org.flatpak.ref is not an app/ or runtime/ ref".into()
            ));
        }
        let mut metadata = BTreeMap::new();
        for (label, value) in labels {
            let Some(key) = label.strip_prefix(METADATA_PREFIX) else {
                continue;
            };
            let v = decode_variant(value)
                .ok_or_else(|| bad(format!("label {label} is not a base64 serialised variant")))?;
            metadata.insert(key.to_string(), v);
        }
        if !metadata.contains_key("xa.metadata") {
            let m = labels
                .get("org.flatpak.metadata")
                .ok_or_else(|| bad("neither xa.metadata nor org.flatpak.metadata".into()))?;
            metadata.insert(
                "xa.metadata".into(),
                glib::prelude::ToVariant::to_variant(m.as_str()),
            );
        }
        let mut bound: Vec<String> = metadata
            .get(REF_BINDING)
            .and_then(|v| v.get::<Vec<String>>())
            .unwrap_or_default();
        if !bound.contains(flatpak_ref) {
            bound.push(flatpak_ref.clone());
            metadata.insert(
                REF_BINDING.into(),
                glib::prelude::ToVariant::to_variant(&bound),
            );
        }
        let timestamp = match labels.get("org.flatpak.timestamp") {
            None => 0,
            Some(t) => t
                .parse()
                .map_err(|_| bad(format!("org.flatpak.timestamp {t:?} is not a number")))?,
        };
        let text = |k: &str| labels.get(k).cloned().unwrap_or_default();
        Ok(Some(FlatpakCommit {
            flatpak_ref: flatpak_ref.clone(),
            metadata,
            subject: text("org.flatpak.subject"),
            body: text("org.flatpak.body"),
            timestamp,
        }))
    }

    /// Writes the merged tree and the commit (inside the caller's transaction); the commit is
    /// bound to the repository's collection when it has one, and names the image's manifest
    /// `manifest_digest` in `xa.alt-id` as flatpak's import does. Returns it, to be handled
    /// as a carried commit.
    ///
    /// # Errors
    /// libostree fails.
    pub fn write(
        &self,
        repo: &Repo,
        merged: &MutableTree,
        manifest_digest: &str,
    ) -> Result<EncapsulatedCommit> {
        let dict = glib::VariantDict::new(None);
        for (k, v) in &self.metadata {
            dict.insert_value(k, v);
        }
        dict.insert("xa.alt-id", manifest_digest.trim_start_matches("sha256:"));
        match repo.collection_id() {
            Some(id) => dict.insert(COLLECTION_BINDING, id.as_str()),
            None => {
                dict.remove(COLLECTION_BINDING);
            }
        }
        let root = repo
            .write_mtree(merged, ostree::gio::Cancellable::NONE)
            .map_err(Error::ostree("writing the merged tree"))?;
        let root = glib::prelude::Cast::downcast::<ostree::RepoFile>(root)
            .expect("write_mtree returns a RepoFile");
        let checksum = repo
            .write_commit_with_time(
                None,
                Some(&self.subject),
                Some(&self.body),
                Some(&dict.end()),
                &root,
                self.timestamp,
                ostree::gio::Cancellable::NONE,
            )
            .map_err(Error::ostree(format!(
                "writing the commit of flatpak {}",
                self.flatpak_ref
            )))?;
        EncapsulatedCommit::load(repo, &checksum)
    }
}

/// A label value as flatpak writes it: base64 of a variant serialised as `v`.
fn decode_variant(s: &str) -> Option<glib::Variant> {
    let bytes = crate::image::encapsulated::decode_base64(s)?;
    let v = glib::Variant::from_data_with_type(bytes, glib::VariantTy::VARIANT);
    v.is_normal_form().then(|| v.as_variant()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label_of(v: glib::Variant) -> String {
        glib::base64_encode(&glib::prelude::ToVariant::to_variant(&v).data_as_bytes()).to_string()
    }

    #[test]
    fn reads_what_build_bundle_writes() {
        // Labels as `flatpak build-bundle --oci` (1.14) wrote them for a runtime.
        let mut l = BTreeMap::new();
        l.insert(REF_LABEL.to_string(), "runtime/org.test.Rt/x86_64/1".into());
        l.insert(
            "org.flatpak.commit-metadata.xa.installed-size".into(),
            "AAAAAAAABgAAdA==".into(),
        );
        l.insert(
            "org.flatpak.commit-metadata.xa.metadata".into(),
            label_of(glib::prelude::ToVariant::to_variant(
                "[Runtime]\nname=org.test.Rt\n",
            )),
        );
        l.insert("org.flatpak.timestamp".into(), "1796409032".into());
        let c = FlatpakCommit::from_labels("img", &l).unwrap().unwrap();
        assert_eq!(c.timestamp, 1796409032);
        assert_eq!(
            c.metadata["xa.installed-size"].get::<u64>(),
            Some(1536u64.to_be())
        );
        assert_eq!(
            c.metadata[REF_BINDING].get::<Vec<String>>(),
            Some(vec!["runtime/org.test.Rt/x86_64/1".to_string()])
        );
    }

    #[test]
    fn bad_labels_are_errors() {
        let mut l = BTreeMap::new();
        l.insert(REF_LABEL.to_string(), "org.test.Rt".into());
        assert!(FlatpakCommit::from_labels("img", &l).is_err());
        l.insert(REF_LABEL.to_string(), "app/org.test.App/x86_64/1".into());
        l.insert("org.flatpak.commit-metadata.xa.ref".into(), "%%".into());
        let err = FlatpakCommit::from_labels("img", &l).unwrap_err();
        assert!(err.to_string().contains("xa.ref"), "{err}");
        l.remove("org.flatpak.commit-metadata.xa.ref");
        let err = FlatpakCommit::from_labels("img", &l).unwrap_err();
        assert!(err.to_string().contains("xa.metadata"), "{err}");
        assert!(
            FlatpakCommit::from_labels("img", &BTreeMap::new())
                .unwrap()
                .is_none()
        );
    }
}
