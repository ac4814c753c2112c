//! The image config and manifest of an encapsulated commit, whichever format its layers
//! have: platform, `created` = the commit timestamp, the execution parameters and labels the
//! options ask for, the labels of the format, one history entry per layer.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::digest::Digest;
use crate::export::EncapsulateOptions;
use crate::export::layer::LayerBlobOut;
use crate::spec::{MEDIA_TYPE_MANIFEST, Platform, format_rfc3339};

/// OCI image config media type.
const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// What the format puts in the config.
#[derive(Debug, Default)]
pub(super) struct ConfigParts {
    /// Labels the options' labels may override (flatpak's; ostree-ext's `version`, …).
    pub base_labels: BTreeMap<String, String>,
    /// Labels that carry the commit: set over everything else.
    pub commit_labels: BTreeMap<String, String>,
    /// `Cmd` when the options give none.
    pub default_cmd: Option<Vec<String>>,
    /// One history entry per layer: `created_by` and `comment`.
    pub history: Vec<(String, Option<String>)>,
}

/// The image config of a commit made at `created` (seconds since the epoch).
pub(super) fn image_config(
    created: u64,
    opts: &EncapsulateOptions,
    parts: &ConfigParts,
    diff_ids: &[&Digest],
) -> Value {
    let created = format_rfc3339(created);
    let platform = opts.platform.clone().unwrap_or_else(Platform::host);
    let mut labels = parts.base_labels.clone();
    let mut exec = Value::Object(opts.exec_base.clone().unwrap_or_default());
    if let Some(base) = exec.get("Labels").and_then(Value::as_object) {
        labels.extend(
            base.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))),
        );
    }
    labels.extend(opts.labels.clone());
    labels.extend(parts.commit_labels.clone());
    exec["Labels"] = json!(labels);
    if let Some(c) = opts.cmd.as_ref().or(parts.default_cmd.as_ref()) {
        exec["Cmd"] = json!(c);
    }
    if let Some(e) = &opts.entrypoint {
        exec["Entrypoint"] = json!(e);
    }
    if !opts.env.is_empty() {
        exec["Env"] = json!(opts.env);
    }
    if let Some(w) = &opts.working_dir {
        exec["WorkingDir"] = json!(w);
    }
    if let Some(u) = &opts.user {
        exec["User"] = json!(u);
    }
    let history: Vec<Value> = parts
        .history
        .iter()
        .map(|(by, comment)| {
            let mut h = json!({"created": created, "created_by": by});
            if let Some(c) = comment {
                h["comment"] = json!(c);
            }
            h
        })
        .collect();
    let mut config = json!({
        "created": created,
        "architecture": platform.architecture,
        "os": platform.os,
        "config": exec,
        "rootfs": {
            "type": "layers",
            "diff_ids": diff_ids.iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        },
        "history": history,
    });
    if let Some(v) = &platform.variant {
        config["variant"] = json!(v);
    }
    config
}

/// The manifest: the config, then each layer with its media type and annotations (if any),
/// and the manifest `annotations` (if any).
pub(super) fn manifest(
    config: &[u8],
    layers: &[(&LayerBlobOut, Option<BTreeMap<String, String>>)],
    layer_media_type: &str,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_TYPE_MANIFEST,
        "config": {
            "mediaType": MEDIA_TYPE_CONFIG,
            "digest": Digest::sha256_of(config).as_str(),
            "size": config.len(),
        },
        "layers": layers.iter().map(|(o, a)| {
            let mut d = json!({
                "mediaType": layer_media_type,
                "digest": o.digest.as_str(),
                "size": o.size,
            });
            if let Some(a) = a {
                d["annotations"] = json!(a);
            }
            d
        }).collect::<Vec<_>>(),
    });
    if !annotations.is_empty() {
        manifest["annotations"] = json!(annotations);
    }
    serde_json::to_vec(&manifest).expect("JSON values serialize")
}
