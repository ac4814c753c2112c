//! Reading an image commit back: name, source, manifest, config and layers.

use ostree::{ObjectType, Repo, glib};

use crate::error::{Error, Result};
use crate::image::file_tree::{ARTIFACT_TYPE, DEFAULT_MAX_BLOBS, FileTreeRecord};
use crate::image::{ImageFormat, refs};
use crate::meta;
use crate::refname;
use crate::spec::{Config, Manifest};

/// What an image commit records.
#[derive(Clone, Debug)]
pub struct ImageInfo {
    /// Local name.
    pub name: String,
    /// The image commit checksum.
    pub commit: String,
    /// Source reference it was imported from.
    pub source: String,
    /// Manifest digest.
    pub manifest_digest: String,
    /// Manifest bytes.
    pub manifest: String,
    /// Config bytes.
    pub config: String,
    /// Layer blob digests, base first.
    pub layers: Vec<String>,
    /// Layer diff_ids, base first.
    pub diff_ids: Vec<String>,
    /// Commit timestamp (the config's `created`).
    pub timestamp: u64,
    /// For an encapsulated commit or the commit of an ostree native container (whose own
    /// metadata is not ocitree's): the commit holding this record, under
    /// [`refname::encapsulated_ref`].
    pub record: Option<String>,
    /// For an ostree native container with derived layers: the commit it carries, on which
    /// they were applied ([`meta::OSTREE_BASE`]).
    pub ostree_base: Option<String>,
    /// For an imported file tree ([`crate::image::file_tree`]): what it records. Its
    /// `manifest` is then the root document (an index or manifest), `config` is `{}`, and
    /// `layers` are the digests of the manifests holding files.
    pub file_tree: Option<FileTreeRecord>,
}

impl ImageInfo {
    /// The format the image was read in (see [`crate::image::format`]). Only a plain
    /// reading, or an ostree native container with derived layers (which records its base),
    /// leaves no record; any other was the one the config labels name.
    pub fn format(&self) -> ImageFormat {
        if self.file_tree.is_some() {
            return ImageFormat::FileTree;
        }
        match self.record {
            None if self.ostree_base.is_some() => ImageFormat::OstreeNative,
            None => ImageFormat::Plain,
            Some(_) => match self
                .parsed_config()
                .map(|c| ImageFormat::detect(&c.labels()))
            {
                Ok(f @ (ImageFormat::OstreeNative | ImageFormat::Flatpak)) => f,
                _ => ImageFormat::Encapsulated,
            },
        }
    }

    /// Loads the image called `name`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when there is no such image; [`Error::InvalidImage`] when the commit
    /// lacks ocitree metadata.
    pub fn load(repo: &Repo, name: &str) -> Result<ImageInfo> {
        let commit = refs::image_commit(repo, name)?;
        Self::load_commit(repo, name, &commit)
    }

    /// Loads an image commit by checksum. When the image is an encapsulated commit, its record
    /// under [`refname::encapsulated_ref`] (which must name this commit) is read instead.
    ///
    /// # Errors
    /// As [`ImageInfo::load`].
    pub fn load_commit(repo: &Repo, name: &str, commit: &str) -> Result<ImageInfo> {
        let v = repo
            .load_variant(ObjectType::Commit, commit)
            .map_err(Error::ostree(format!("loading commit {commit}")))?;
        // The record comes first: an encapsulated commit may carry ocitree metadata of its
        // own (it was an image commit where it came from), which describes another image.
        if let Some(record) = refs::resolve(repo, &refname::encapsulated_ref(name))? {
            let rv = repo
                .load_variant(ObjectType::Commit, &record)
                .map_err(Error::ostree(format!("loading commit {record}")))?;
            let rdict = glib::VariantDict::new(Some(&rv.child_value(0)));
            let described = rdict.lookup::<String>(meta::ENCAPSULATED).ok().flatten();
            if described.as_deref() == Some(commit) {
                let mut info = Self::from_dict(name, &record, &rdict, Some(record.clone()))?;
                info.source = Self::source(repo, name, &record, &rdict)?;
                info.commit = commit.to_string();
                info.timestamp = ostree::commit_get_timestamp(&v);
                return Ok(info);
            }
        }
        let dict = glib::VariantDict::new(Some(&v.child_value(0)));
        let mut info = Self::from_dict(name, commit, &dict, None)?;
        info.source = Self::source(repo, name, commit, &dict)?;
        info.timestamp = ostree::commit_get_timestamp(&v);
        Ok(info)
    }

    /// Where image `name` came from: its entry in the detached metadata of `commit` (the
    /// commit holding its record), else what ocitree before 0.2 kept on the commit.
    fn source(repo: &Repo, name: &str, commit: &str, dict: &glib::VariantDict) -> Result<String> {
        let mut sources = super::commit::sources(repo, commit)?;
        Ok(sources
            .remove(name)
            .or_else(|| dict.lookup::<String>(meta::LEGACY_SOURCE).ok().flatten())
            .unwrap_or_default())
    }

    fn from_dict(
        name: &str,
        commit: &str,
        dict: &glib::VariantDict,
        record: Option<String>,
    ) -> Result<ImageInfo> {
        let bad = || Error::InvalidImage {
            image: name.to_string(),
            reason: format!("commit {commit} has no ocitree metadata"),
        };
        let s = |k: &str| dict.lookup::<String>(k).ok().flatten().ok_or_else(bad);
        let list = |k: &str| dict.lookup::<Vec<String>>(k).ok().flatten().ok_or_else(bad);
        let manifest = s(meta::MANIFEST)?;
        Ok(ImageInfo {
            name: name.to_string(),
            commit: commit.to_string(),
            source: String::new(),
            manifest_digest: s(meta::MANIFEST_DIGEST)?,
            file_tree: Self::file_tree_record(name, &manifest, dict)?,
            manifest,
            config: s(meta::CONFIG)?,
            layers: list(meta::LAYERS)?,
            diff_ids: list(meta::DIFF_IDS)?,
            timestamp: 0,
            record,
            ostree_base: dict.lookup::<String>(meta::OSTREE_BASE).ok().flatten(),
        })
    }

    /// The file-tree record: [`meta::FILE_TREE`], or for a file tree imported before it
    /// was written, one inferred from the root document's `artifactType` (counts unknown).
    fn file_tree_record(
        name: &str,
        manifest: &str,
        dict: &glib::VariantDict,
    ) -> Result<Option<FileTreeRecord>> {
        if let Some(json) = dict.lookup::<String>(meta::FILE_TREE).ok().flatten() {
            return serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| Error::InvalidImage {
                    image: name.to_string(),
                    reason: format!("stored file-tree record: {e}"),
                });
        }
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Typed {
            artifact_type: Option<String>,
        }
        let typed: Option<Typed> = serde_json::from_str(manifest).ok();
        Ok(typed
            .and_then(|t| t.artifact_type)
            .filter(|t| t == ARTIFACT_TYPE)
            .map(|_| FileTreeRecord {
                max_blobs: DEFAULT_MAX_BLOBS,
                ..FileTreeRecord::default()
            }))
    }

    /// The parsed manifest.
    ///
    /// # Errors
    /// The stored manifest does not parse (it did at import).
    pub fn parsed_manifest(&self) -> Result<Manifest> {
        serde_json::from_str(&self.manifest).map_err(|e| Error::InvalidImage {
            image: self.name.clone(),
            reason: format!("stored manifest: {e}"),
        })
    }

    /// Checks that the image holds every layer of its manifest, as an export needs: an image
    /// imported with a layer selection holds only some.
    ///
    /// # Errors
    /// [`Error::InvalidImage`] naming how many layers it holds.
    pub fn check_complete(&self) -> Result<()> {
        let manifest = self.parsed_manifest()?;
        let all: Vec<&str> = manifest
            .layers
            .iter()
            .map(|d| d.digest_str.as_str())
            .collect();
        if all != self.layers.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(Error::InvalidImage {
                image: self.name.clone(),
                reason: format!(
                    "imported with a layer selection ({} of the manifest's {} layers): it cannot be exported as the original image",
                    self.layers.len(),
                    all.len()
                ),
            });
        }
        Ok(())
    }

    /// The parsed config.
    ///
    /// # Errors
    /// The stored config does not parse.
    pub fn parsed_config(&self) -> Result<Config> {
        serde_json::from_str(&self.config).map_err(|e| Error::InvalidImage {
            image: self.name.clone(),
            reason: format!("stored config: {e}"),
        })
    }
}
