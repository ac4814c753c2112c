//! Any commit → an "ostree native container", the image format ostree-ext writes for bootc,
//! rpm-ostree and CoreOS (ostree-ext 0.15, tar format v1): what `ostree-ext container
//! unencapsulate`, `container image pull` and `bootc switch` read, giving the **identical**
//! commit (detached metadata, i.e. signatures, kept). ocitree's own import reads it back the
//! same way ([`crate::image::ostree_native`]).
//!
//! The image, as ostree-ext lays it out:
//!
//! | part | what |
//! |---|---|
//! | layer 1 | the commit layer: commit, detached metadata, every dirtree and dirmeta, the directories (module `layer`); with one layer, all content objects too |
//! | layers 2… | chunks of content objects, each with an `ostree.components` annotation naming the directories (up to three levels deep) its files are in |
//! | config labels | `ostree.commit`, `ostree.final-diffid` (the diff_id of the last layer), from the commit metadata `ostree.bootable` (+ `containers.bootc=1`), `ostree.linux`, `version` (as `org.opencontainers.image.version` and, as rpm-ostree writes it, `version`) |
//! | manifest annotations | the same labels |
//! | config | `created` = the commit timestamp, `Cmd` from the commit's `ostree.container-cmd` unless given; history: the commit subject, then the chunks' components |
//!
//! Chunking reuses [`super::chunk`]: `--max-layers N` gives the commit layer and at most
//! `N - 1` chunks, cut by size in path order; with a prior image every file keeps the chunk
//! its path had there, so a new version re-uses every chunk it did not change. The commit
//! layer then holds no content: it changes with every commit, and is the only layer that must.
//!
//! Refused: content under `/sysroot` (the format keeps its object store there), a tree with
//! both `/etc` and `/usr/etc` (both would be `etc` in the image), and user labels named
//! `ostree.commit` or `ostree.final-diffid`.

mod layer;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ostree::Repo;

use super::chunk::{self, PriorLayers};
use super::config::{self, ConfigParts};
use super::walk::{Kind, Node};
use super::{EncapsulateFormat, EncapsulateOptions, EncapsulateReport, MEDIA_TYPE_LAYER_GZIP};
use crate::decompress::Compression;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::export::compress::LayerCompression;
use crate::export::sink::Sink;
use crate::image::EncapsulatedCommit;
use crate::image::ostree_native::{COMMIT_LABEL, COMPONENTS_ANNOTATION, FINAL_DIFFID_LABEL};
use crate::source::SourceRef;
use crate::spec::MEDIA_TYPE_MANIFEST;
use layer::{LayerWriter, Object, tar_path, tree_path};

/// Commit metadata key: the commit is a bootable OS (a bool).
pub const META_BOOTABLE: &str = "ostree.bootable";
/// Commit metadata key: the kernel version of a bootable commit.
const META_LINUX: &str = "ostree.linux";
/// Commit metadata key: the version.
const META_VERSION: &str = "version";
/// Commit metadata key: the container command (`as`).
const META_CONTAINER_CMD: &str = "ostree.container-cmd";
/// Config label bootc looks for.
const BOOTC_LABEL: &str = "containers.bootc";
/// The OCI version label.
const OCI_VERSION_LABEL: &str = "org.opencontainers.image.version";

fn refuse(rev: &str, path: &str, reason: &str) -> Error {
    Error::Unencapsulable {
        rev: rev.to_string(),
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

/// Refuses what the format cannot carry (see the module documentation).
fn check(rev: &str, nodes: &[Node], opts: &EncapsulateOptions) -> Result<()> {
    if let Some(n) = nodes.iter().find(|n| n.path.starts_with("sysroot/")) {
        return Err(refuse(
            rev,
            &n.path,
            "an ostree native container keeps its object store under /sysroot/ostree, so it \
             cannot carry content under /sysroot (use --format ocitree-encapsulated)",
        ));
    }
    let has = |p: &str| nodes.iter().any(|n| n.path == p);
    if has("etc") && has("usr/etc") {
        return Err(refuse(
            rev,
            "etc",
            "the tree has both /etc and /usr/etc, and an ostree native container writes \
             /usr/etc as /etc (use --format ocitree-encapsulated)",
        ));
    }
    for l in [COMMIT_LABEL, FINAL_DIFFID_LABEL] {
        if opts.labels.contains_key(l) {
            return Err(refuse(
                rev,
                "",
                &format!("label {l} is written by the ostree-native format itself"),
            ));
        }
    }
    Ok(())
}

/// Where the files of a prior image lay, as chunk indices: for an ostree native prior, its
/// checkout paths back in tree form (`etc` → `usr/etc`), its object store and commit layer
/// left out, chunk `k` (layer `k + 1`) as `k`. Any other prior counts as chunks as it is.
fn chunk_prior(p: PriorLayers) -> PriorLayers {
    let objects = "sysroot/ostree/repo/";
    if !p.paths.keys().any(|k| k.starts_with(objects)) {
        return p;
    }
    PriorLayers {
        paths: p
            .paths
            .into_iter()
            .filter(|(k, l)| *l > 0 && !k.starts_with(objects))
            .map(|(k, l)| (tree_path(&k), l - 1))
            .collect(),
        layers: p.layers.saturating_sub(1),
    }
}

/// The components of a chunk: the directories its files are in, at most three levels deep,
/// sorted (`,` in a name, the separator, is written `%2C`).
fn components(objects: &[Object<'_>]) -> Vec<String> {
    let mut dirs = BTreeSet::new();
    for (_, paths) in objects {
        for p in paths {
            let p = tar_path(p);
            let parent: Vec<&str> = p.split('/').rev().skip(1).collect();
            let top: Vec<&str> = parent.into_iter().rev().take(3).collect();
            dirs.insert(format!("/{}", top.join("/")).replace(',', "%2C"));
        }
    }
    dirs.into_iter().collect()
}

/// A chunk's name in the history, as ostree-ext names its chunks.
fn chunk_name(components: &[String]) -> String {
    match components.len() {
        0 => "Reserved for new packages".into(),
        1..=5 => components.join(" and "),
        n => format!("{n} components"),
    }
}

/// The labels that come from the commit metadata (the options' labels may override them).
fn metadata_labels(commit: &EncapsulatedCommit) -> BTreeMap<String, String> {
    let meta = commit.metadata();
    let mut labels = BTreeMap::new();
    if let Some(b) = meta.lookup::<bool>(META_BOOTABLE).ok().flatten() {
        labels.insert(META_BOOTABLE.to_string(), b.to_string());
        labels.insert(BOOTC_LABEL.to_string(), "1".to_string());
    }
    if let Some(l) = meta.lookup::<String>(META_LINUX).ok().flatten() {
        labels.insert(META_LINUX.to_string(), l);
    }
    if let Some(v) = meta.lookup::<String>(META_VERSION).ok().flatten() {
        labels.insert(OCI_VERSION_LABEL.to_string(), v.clone());
        labels.insert(META_VERSION.to_string(), v);
    }
    labels
}

/// Whether the commit says it is a bootable OS (`ostree.bootable` true).
pub fn is_bootable(commit: &EncapsulatedCommit) -> bool {
    commit
        .metadata()
        .lookup::<bool>(META_BOOTABLE)
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Writes commit `commit` (its tree walked as `nodes`) as an ostree native container.
pub(super) fn encapsulate(
    repo: &Repo,
    rev: &str,
    commit: &EncapsulatedCommit,
    nodes: &[Node],
    dest: &SourceRef,
    opts: &EncapsulateOptions,
) -> Result<EncapsulateReport> {
    check(rev, nodes, opts)?;
    let prior = opts
        .prior
        .as_ref()
        .map(|p| super::prior_layers(repo, p, opts.platform.as_ref()))
        .transpose()?
        .map(chunk_prior);
    let chunks = match (opts.max_layers, &prior) {
        (Some(n), _) => n.saturating_sub(1),
        (None, Some(p)) => p.layers,
        (None, None) => 0,
    };
    let mut layer_of: HashMap<String, usize> = HashMap::new();
    let mut layers = 1;
    if chunks > 0 {
        let mut size = |c: &str| super::object_size(repo, c);
        let plan = chunk::plan(nodes, Some(chunks), prior.as_ref(), &mut size);
        layer_of = plan.layer_of.into_iter().map(|(c, l)| (c, l + 1)).collect();
        layers = plan.layers + 1;
    }
    // Each layer's objects in checksum order, each with its paths in tree order.
    let mut per_layer: Vec<BTreeMap<&str, Vec<&str>>> = vec![BTreeMap::new(); layers];
    for n in nodes {
        if let Kind::Content { checksum } = &n.kind {
            let l = layer_of.get(checksum).copied().unwrap_or(0);
            per_layer[l].entry(checksum).or_default().push(&n.path);
        }
    }
    let objects: Vec<Vec<Object<'_>>> = per_layer
        .into_iter()
        .map(|m| m.into_iter().collect())
        .collect();

    let mut sink = Sink::open(dest)?;
    let compression = opts
        .compression
        .unwrap_or_else(|| LayerCompression::new(Compression::Gzip));
    let writer = LayerWriter::new(repo, rev, opts.mtime.unwrap_or(0));
    let checksum = &commit.checksum;
    let mut outs = Vec::with_capacity(layers);
    for (i, objs) in objects.iter().enumerate() {
        let what = format!("layer {} of {layers} of commit {checksum}", i + 1);
        let out = sink.add_layer(&compression, Hasher::sha256(), &what, &mut |w| {
            if i == 0 {
                writer.commit_layer(w, commit, nodes, objs)
            } else {
                writer.chunk_layer(w, objs)
            }
        })?;
        outs.push(out);
    }

    let subject = commit.commit.child_value(3);
    let subject = match subject.str().unwrap_or_default() {
        "" => format!("ostree export of commit {checksum}"),
        s => s.to_string(),
    };
    let comps: Vec<Vec<String>> = objects[1..].iter().map(|o| components(o)).collect();
    let mut history = vec![(subject, None)];
    history.extend(comps.iter().map(|c| (chunk_name(c), None)));
    let last = outs.last().expect("at least the commit layer");
    let parts = ConfigParts {
        base_labels: metadata_labels(commit),
        commit_labels: BTreeMap::from([
            (COMMIT_LABEL.to_string(), checksum.clone()),
            (FINAL_DIFFID_LABEL.to_string(), last.diff_id.to_string()),
        ]),
        default_cmd: commit
            .metadata()
            .lookup::<Vec<String>>(META_CONTAINER_CMD)
            .ok()
            .flatten(),
        history,
    };
    let diff_ids: Vec<&Digest> = outs.iter().map(|o| &o.diff_id).collect();
    let config = config::image_config(commit.timestamp(), opts, &parts, &diff_ids);
    let config_bytes = serde_json::to_vec(&config).expect("JSON values serialize");
    // ostree-ext repeats the labels as manifest annotations.
    let mut annotations: BTreeMap<String, String> = config["config"]["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    annotations.extend(opts.annotations.clone());
    let layer_list: Vec<_> = outs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let a = (i > 0).then(|| {
                let c = comps[i - 1].join(",");
                BTreeMap::from([(COMPONENTS_ANNOTATION.to_string(), c)])
            });
            (o, a)
        })
        .collect();
    let media_type = compression.media_type(MEDIA_TYPE_LAYER_GZIP);
    let manifest = config::manifest(&config_bytes, &layer_list, media_type, &annotations);
    let digest = sink.finish(&config_bytes, &manifest, MEDIA_TYPE_MANIFEST)?;
    Ok(EncapsulateReport {
        commit: checksum.clone(),
        format: EncapsulateFormat::OstreeNative,
        manifest_digest: digest.to_string(),
        layers: outs.iter().map(|o| o.digest.clone()).collect(),
        diff_ids: outs.into_iter().map(|o| o.diff_id).collect(),
        paths: nodes.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_directories_three_levels_deep() {
        let objs: Vec<Object<'_>> = vec![
            (
                "a",
                vec!["usr/lib/x86_64-linux-gnu/perl/5.36/a.pm", "usr/bin/sh"],
            ),
            ("b", vec!["usr/etc/motd", "top", "usr/share/a,b/c"]),
        ];
        assert_eq!(
            components(&objs),
            [
                "/",
                "/etc",
                "/usr/bin",
                "/usr/lib/x86_64-linux-gnu",
                "/usr/share/a%2Cb"
            ]
        );
        assert_eq!(chunk_name(&components(&objs)[..2]), "/ and /etc");
        assert_eq!(chunk_name(&[]), "Reserved for new packages");
    }

    #[test]
    fn a_native_prior_counts_chunks() {
        let p = PriorLayers {
            paths: [
                ("sysroot/ostree/repo/objects/ab/cd.file", 1),
                ("usr/bin/sh", 1),
                ("etc/motd", 2),
                ("usr/lib/remainder", 0),
            ]
            .into_iter()
            .map(|(p, l)| (p.to_string(), l))
            .collect(),
            layers: 3,
        };
        let c = chunk_prior(p);
        assert_eq!(c.layers, 2);
        let paths: Vec<_> = c.paths.iter().map(|(p, l)| (p.as_str(), *l)).collect();
        assert_eq!(paths, [("usr/bin/sh", 0), ("usr/etc/motd", 1)]);
    }
}
