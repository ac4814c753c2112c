//! The labels flatpak reads from an OCI image, for commits made by `flatpak build-export`
//! (recognised by their `xa.metadata` commit metadata), so that `flatpak build-import-bundle
//! --oci` accepts the image. The names and encodings are those `flatpak build-bundle --oci`
//! writes (flatpak 1.14): `org.flatpak.ref`, `org.flatpak.metadata`, the sizes, subject,
//! body, timestamp and commit, and every commit metadata value as
//! `org.flatpak.commit-metadata.KEY` = base64 of the value serialised as a `v`.

use std::collections::BTreeMap;

use ostree::glib;

use crate::image::EncapsulatedCommit;
use crate::repo::collection::REF_BINDING;

/// Commit metadata key flatpak stores the app's `metadata` file under.
const XA_METADATA: &str = "xa.metadata";

/// The flatpak labels for `commit`, or nothing when it was not made by flatpak. `rev` is
/// the ref or checksum it was named by (the flatpak ref when the commit names none);
/// `download_size` is the total size of the layer blobs.
pub fn labels(
    commit: &EncapsulatedCommit,
    rev: &str,
    download_size: u64,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let meta = commit.metadata();
    let Some(metadata) = meta.lookup::<String>(XA_METADATA).ok().flatten() else {
        return out;
    };
    let flatpak_ref = meta
        .lookup::<String>("xa.ref")
        .ok()
        .flatten()
        .or_else(|| {
            meta.lookup::<Vec<String>>(REF_BINDING)
                .ok()
                .flatten()
                .and_then(|v| v.into_iter().next())
        })
        .unwrap_or_else(|| rev.to_string());
    out.insert("org.flatpak.ref".into(), flatpak_ref);
    out.insert("org.flatpak.metadata".into(), metadata);
    out.insert("org.flatpak.commit".into(), commit.checksum.clone());
    out.insert(
        "org.flatpak.timestamp".into(),
        commit.timestamp().to_string(),
    );
    out.insert(
        "org.flatpak.download-size".into(),
        download_size.to_string(),
    );
    // flatpak stores the installed size big-endian.
    if let Some(size) = meta.lookup::<u64>("xa.installed-size").ok().flatten() {
        out.insert(
            "org.flatpak.installed-size".into(),
            u64::from_be(size).to_string(),
        );
    }
    let subject = commit.commit.child_value(3);
    let body = commit.commit.child_value(4);
    out.insert(
        "org.flatpak.subject".into(),
        subject.str().unwrap_or_default().into(),
    );
    out.insert(
        "org.flatpak.body".into(),
        body.str().unwrap_or_default().into(),
    );
    let dict = commit.commit.child_value(0);
    for entry in dict.iter() {
        let key = entry.child_value(0);
        let value = entry.child_value(1);
        if let Some(k) = key.str() {
            out.insert(
                format!("org.flatpak.commit-metadata.{k}"),
                glib::base64_encode(&value.data_as_bytes()).to_string(),
            );
        }
    }
    out
}
