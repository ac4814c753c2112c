//! Any OSTree commit → an OCI image that `ocitree import` turns back into the **identical**
//! commit (same checksum: tree, metadata, subject, body, timestamp, parent, detached
//! metadata).
//!
//! The data flow, one module each:
//!
//! ```text
//! commit ──walk──> sorted paths (dirmeta / content checksums)      walk
//!        ──chunk─> content object → layer (stable with a prior)    chunk
//!        ──tar───> deterministic layer tars, streamed from objects tar
//!        ──sink──> gzip blobs + config + manifest → oci / oci-archive / docker-archive
//! ```
//!
//! The commit object and its detached metadata ride along as config labels
//! ([`crate::image::encapsulated`]); `created` is the commit timestamp. The same commit with
//! the same options always gives the same bytes, so the same digests.
//!
//! A tree holding a name that starts with `.wh.` is refused: OCI tools would read it as a
//! whiteout, so no image can carry it.

pub mod chunk;
mod config;
pub mod flatpak;
pub mod native;
pub mod tar;
pub mod walk;

use std::collections::{BTreeMap, HashSet};

use ostree::{Repo, gio};

use crate::decompress::Compression;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::export::compress::LayerCompression;
use crate::export::sink::Sink;
use crate::image::format::ImageFormat;
use crate::image::{EncapsulatedCommit, ImageInfo, refs};
use crate::source::SourceRef;
use crate::spec::{MEDIA_TYPE_MANIFEST, Platform};
use chunk::PriorLayers;
use config::ConfigParts;
use walk::{Kind, Node};

/// OCI gzip layer media type.
pub(super) const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The layout of the image [`encapsulate`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncapsulateFormat {
    /// ocitree's own: the tree as plain layer tars, the commit object and its detached
    /// metadata as config labels (`ocitree.commit`, …). Carries any commit; read back by
    /// `ocitree import`.
    Ocitree,
    /// ostree-ext's "ostree native container" ([`native`]): what bootc, rpm-ostree and
    /// `ostree-ext-cli container unencapsulate` read, and `ocitree import` too.
    OstreeNative,
}

impl EncapsulateFormat {
    /// The format `import` will see in the image.
    pub fn image_format(self) -> ImageFormat {
        match self {
            EncapsulateFormat::Ocitree => ImageFormat::Encapsulated,
            EncapsulateFormat::OstreeNative => ImageFormat::OstreeNative,
        }
    }

    /// The default for `commit`: [`EncapsulateFormat::OstreeNative`] for a bootable commit
    /// (commit metadata `ostree.bootable` true, as `ostree commit` of an OS tree, rpm-ostree
    /// and bootc builds write it: such a commit is meant for bootc), else
    /// [`EncapsulateFormat::Ocitree`].
    pub fn default_for(commit: &EncapsulatedCommit) -> EncapsulateFormat {
        if native::is_bootable(commit) {
            EncapsulateFormat::OstreeNative
        } else {
            EncapsulateFormat::Ocitree
        }
    }
}

impl std::fmt::Display for EncapsulateFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.image_format().as_str())
    }
}

impl std::str::FromStr for EncapsulateFormat {
    type Err = Error;

    /// The names of [`ImageFormat`]: `ocitree-encapsulated` or `ostree-native`.
    fn from_str(s: &str) -> Result<EncapsulateFormat> {
        [EncapsulateFormat::Ocitree, EncapsulateFormat::OstreeNative]
            .into_iter()
            .find(|f| f.image_format().as_str() == s)
            .ok_or_else(|| Error::Invalid {
                what: format!("--format {s}"),
                reason: "encapsulation format must be ocitree-encapsulated or ostree-native".into(),
            })
    }
}

/// Options of [`encapsulate`].
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct EncapsulateOptions {
    /// The image layout (default: [`EncapsulateFormat::default_for`] the commit).
    pub format: Option<EncapsulateFormat>,
    /// Split the tree into at most this many layers (default 1, or the prior image's count).
    pub max_layers: Option<usize>,
    /// An earlier encapsulation whose layer boundaries to keep.
    pub prior: Option<Prior>,
    /// Config labels to add.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// A base for the config's `config` object (`ExposedPorts`, `Volumes`, `StopSignal`, …):
    /// the fields above and the labels are set over it.
    pub exec_base: Option<serde_json::Map<String, serde_json::Value>>,
    /// Config `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// Config `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// Config `Env` (`KEY=VALUE`).
    pub env: Vec<String>,
    /// Config `WorkingDir`.
    pub working_dir: Option<String>,
    /// Config `User`.
    pub user: Option<String>,
    /// Platform of the image (default: this host's).
    pub platform: Option<Platform>,
    /// mtime of every tar entry (default: the commit timestamp for one layer; 0 when the
    /// tree is split, so that unchanged layers keep their digests across versions; 0 for
    /// [`EncapsulateFormat::OstreeNative`], as ostree-ext writes).
    pub mtime: Option<u64>,
    /// Layer compression (default gzip, level 6).
    pub compression: Option<LayerCompression>,
}

/// Where the earlier version of an encapsulation is (see [`EncapsulateOptions::prior`]).
#[derive(Clone, Debug)]
pub enum Prior {
    /// An image in the repository, by name.
    Image(String),
    /// An image outside it (`oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`, `docker-archive:…`).
    Source(SourceRef),
}

impl Prior {
    /// An image source when `s` parses as one (`oci:…`, `oci-archive:…`, `docker-archive:…`),
    /// else an image name.
    pub fn parse(s: &str) -> Prior {
        match SourceRef::parse(s) {
            Ok(r) => Prior::Source(r),
            Err(_) => Prior::Image(s.to_string()),
        }
    }
}

impl EncapsulateOptions {
    /// Options with every default.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What [`encapsulate`] wrote.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EncapsulateReport {
    /// The commit encapsulated.
    pub commit: String,
    /// The layout written.
    pub format: EncapsulateFormat,
    /// The manifest digest; for a docker archive, which has none, the config's digest (the
    /// image ID `docker load` reports).
    pub manifest_digest: String,
    /// Layer blob digests, in order.
    pub layers: Vec<Digest>,
    /// Layer diff_ids, in order.
    pub diff_ids: Vec<Digest>,
    /// Paths (directories and files) in the tree.
    pub paths: usize,
}

/// Where the files of an earlier image lay in its layers (for [`EncapsulateOptions::prior`]).
/// `platform` picks the manifest of a multi-platform source (default: the host's).
///
/// # Errors
/// The image or one of its layers is missing or unreadable.
pub fn prior_layers(
    repo: &Repo,
    prior: &Prior,
    platform: Option<&Platform>,
) -> Result<PriorLayers> {
    match prior {
        Prior::Image(name) => prior_from_repo(repo, name),
        Prior::Source(source) => prior_from_source(source, platform),
    }
}

fn prior_from_repo(repo: &Repo, name: &str) -> Result<PriorLayers> {
    let info = ImageInfo::load(repo, name)?;
    let mut prior = PriorLayers {
        layers: info.layers.len(),
        ..Default::default()
    };
    for (i, (digest, diff_id)) in info.layers.iter().zip(&info.diff_ids).enumerate() {
        let (digest, diff_id) = (Digest::parse(digest)?, Digest::parse(diff_id)?);
        let commit = refs::find_layer(repo, &digest, Some(&diff_id))?.ok_or_else(|| {
            Error::NotFound(format!("image {name}: layer {digest} (was it pruned?)"))
        })?;
        let (contents, meta) = walk::commit_root(repo, &commit)?;
        for node in walk::walk(repo, &contents, &meta)? {
            if let Kind::Content { .. } = node.kind {
                prior.paths.entry(node.path).or_insert(i);
            }
        }
    }
    Ok(prior)
}

/// Reads the entry paths of every layer of an image outside the repository (digests are
/// checked on the way, as at import).
fn prior_from_source(source: &SourceRef, platform: Option<&Platform>) -> Result<PriorLayers> {
    let mut opts = crate::import::ImportOptions::new();
    opts.platform = platform.cloned();
    let prepared = crate::import::prepare(source, &opts)?;
    let mut src = prepared.src;
    let mut prior = PriorLayers {
        layers: prepared.layers.len(),
        ..Default::default()
    };
    for (i, layer) in prepared.layers.iter().enumerate() {
        let read_err = |e: std::io::Error| Error::Io {
            context: format!("reading layer {} of {source}", layer.digest),
            cause: e,
        };
        let blob = crate::blob::VerifiedReader::new(
            src.open_blob(&layer.digest)?,
            &layer.digest,
            layer.size,
        )?;
        let plain =
            crate::decompress::decompress(std::io::BufReader::new(blob)).map_err(read_err)?;
        let mut archive = ::tar::Archive::new(plain);
        for entry in archive.entries().map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            if entry.header().entry_type().is_dir() {
                continue;
            }
            // Paths that do not normalise cannot be ours: they have no layer to keep.
            if let Ok(path) = crate::entries::path::normalize(&entry.path_bytes()) {
                prior.paths.entry(path.join("/")).or_insert(i);
            }
        }
    }
    Ok(prior)
}

/// The size of content object `c` (0 when it cannot be read: the write reports that).
fn object_size(repo: &Repo, c: &str) -> u64 {
    repo.query_file(c, gio::Cancellable::NONE)
        .map(|(info, _)| u64::try_from(info.size()).unwrap_or(0))
        .unwrap_or(0)
}

/// Refuses trees that an OCI image cannot carry.
fn check_tree(rev: &str, nodes: &[Node]) -> Result<()> {
    if let Some(n) = nodes.iter().find(|n| n.name().starts_with(".wh.")) {
        return Err(Error::Unencapsulable {
            rev: rev.to_string(),
            path: n.path.clone(),
            reason: "names starting with .wh. are OCI whiteouts; an image cannot carry them".into(),
        });
    }
    Ok(())
}

/// Every directory above `path`, the root (`""`) included.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::once("").chain(path.match_indices('/').map(move |(i, _)| &path[..i]))
}

/// Writes commit `rev` (a ref or checksum, or an image name) as an OCI image to `dest`.
///
/// # Errors
/// The commit is missing, its tree cannot be carried ([`Error::Unencapsulable`]), an object
/// is missing, or writing fails.
pub fn encapsulate(
    repo: &Repo,
    rev: &str,
    dest: &SourceRef,
    opts: &EncapsulateOptions,
) -> Result<EncapsulateReport> {
    // What it reads stays until it is done: a `prune` waits.
    let _lock = crate::repo::RepoLock::reading(&crate::repo::dir(repo))?;
    let checksum = refs::resolve_rev(repo, rev)?;
    let commit = EncapsulatedCommit::load(repo, &checksum)?;
    let (contents, meta) = commit.root();
    let nodes = walk::walk(repo, &contents, &meta)?;
    check_tree(rev, &nodes)?;
    let format = opts
        .format
        .unwrap_or_else(|| EncapsulateFormat::default_for(&commit));
    if format == EncapsulateFormat::OstreeNative {
        return native::encapsulate(repo, rev, &commit, &nodes, dest, opts);
    }
    let prior = opts
        .prior
        .as_ref()
        .map(|p| prior_layers(repo, p, opts.platform.as_ref()))
        .transpose()?;
    let mut size = |c: &str| object_size(repo, c);
    let plan = chunk::plan(&nodes, opts.max_layers, prior.as_ref(), &mut size);
    let split = opts.max_layers.unwrap_or(1) > 1 || prior.is_some();
    let mtime = opts
        .mtime
        .unwrap_or(if split { 0 } else { commit.timestamp() });

    let mut sink = Sink::open(dest)?;
    let compression = opts
        .compression
        .unwrap_or_else(|| LayerCompression::new(Compression::Gzip));
    let mut writer = tar::TarWriter::new(repo, rev, mtime);
    let mut outs = Vec::with_capacity(plan.layers);
    for layer in 0..plan.layers {
        let mut dirs: HashSet<&str> = HashSet::new();
        for n in &nodes {
            if let Kind::Content { checksum } = &n.kind
                && plan.layer_of[checksum] == layer
            {
                dirs.extend(ancestors(&n.path));
            }
        }
        let mut wanted = |n: &Node| match &n.kind {
            Kind::Dir { .. } => layer == 0 || dirs.contains(n.path.as_str()),
            Kind::Content { checksum } => plan.layer_of[checksum] == layer,
        };
        let what = format!(
            "layer {} of {} of commit {checksum}",
            layer + 1,
            plan.layers
        );
        let out = sink.add_layer(&compression, Hasher::sha256(), &what, &mut |w| {
            writer.write(&nodes, &mut wanted, w)
        })?;
        outs.push(out);
    }

    let download_size = outs.iter().map(|o| o.size).sum();
    let parts = ConfigParts {
        base_labels: flatpak::labels(&commit, rev, download_size),
        commit_labels: commit.labels().into_iter().collect(),
        default_cmd: None,
        history: (0..outs.len())
            .map(|i| {
                let comment = format!("commit {checksum} layer {}/{}", i + 1, outs.len());
                ("ocitree encapsulate".to_string(), Some(comment))
            })
            .collect(),
    };
    let diff_ids: Vec<&Digest> = outs.iter().map(|o| &o.diff_id).collect();
    let config = config::image_config(commit.timestamp(), opts, &parts, &diff_ids);
    let config_bytes = serde_json::to_vec(&config).expect("JSON values serialize");
    let layers: Vec<_> = outs.iter().map(|o| (o, None)).collect();
    let media_type = compression.media_type(MEDIA_TYPE_LAYER_GZIP);
    let manifest_bytes = config::manifest(&config_bytes, &layers, media_type, &opts.annotations);
    let digest = sink.finish(&config_bytes, &manifest_bytes, MEDIA_TYPE_MANIFEST)?;
    Ok(EncapsulateReport {
        commit: checksum,
        format: EncapsulateFormat::Ocitree,
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
    fn ancestors_start_at_the_root() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["", "a", "a/b"]);
        assert_eq!(ancestors("a").collect::<Vec<_>>(), [""]);
    }
}
