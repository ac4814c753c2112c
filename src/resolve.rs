//! Index → one manifest: by tag (`org.opencontainers.image.ref.name`), by digest, and by
//! platform through nested indexes. Several entries for the wanted platform: the first is
//! taken, as the image-index spec says ("the first matching entry SHOULD be used"), and
//! [`Resolved::passed_over`] names the others so that the caller can say how to pick one by
//! digest. Several candidates and no rule to choose (no platform on any) is an error that
//! lists them, never a guess. Nesting deeper than [`MAX_DEPTH`] is an error.
//!
//! Nested indexes form a DAG, not a tree: one index may be listed many times, at one level or
//! at several. Each index is followed once per tag annotation in force (following it again
//! could only repeat candidates already found, behind the first), and the whole walk is
//! bounded: at most [`MAX_INDEX_ENTRIES`] entries and [`READ_BYTES_FACTOR`] times the
//! metadata limit of documents read. A small layout listing the next level many times costs
//! one read per index, not one per path; a walk that still grows (one index under many tags,
//! many large indexes from a registry) is a clear error.

use std::collections::{HashMap, HashSet};

use crate::blob;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::source::{Selector, Source};
use crate::spec::{
    Descriptor, Index, MEDIA_TYPE_DOCKER_LIST, MEDIA_TYPE_INDEX, Manifest, Platform, metadata_limit,
};

/// Deepest index nesting followed (a deeper one is an error, not a stack overflow).
pub const MAX_DEPTH: usize = 8;

/// Most index entries read while choosing one manifest, over every index followed (a
/// multi-platform index has tens).
pub const MAX_INDEX_ENTRIES: usize = 100_000;

/// Bytes of indexes and manifests read while choosing one manifest: at most this many times
/// [`metadata_limit`] (64 MiB by default).
pub const READ_BYTES_FACTOR: u64 = 8;

/// Most candidates an error lists (then says how many more there are): an index may list
/// thousands.
pub const MAX_LISTED: usize = 20;

/// The manifest chosen for an import.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Its digest.
    pub digest: Digest,
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// Parsed.
    pub manifest: Manifest,
    /// The tag annotation that led to it, if any.
    pub ref_name: Option<String>,
    /// Other manifests of the index for the same platform, passed over because this one
    /// comes first (empty when the choice was not by platform).
    pub passed_over: Vec<Digest>,
    /// The platform the choice was made for, when it was made by platform.
    pub platform: Option<Platform>,
}

/// A manifest candidate: its descriptor and the tag annotation in force.
#[derive(Clone, Debug)]
struct Candidate {
    desc: Descriptor,
    ref_name: Option<String>,
}

/// Reads and verifies a small JSON blob.
///
/// # Errors
/// Missing, too large, or not matching its descriptor.
pub fn read_blob(src: &mut dyn Source, image: &str, desc: &Descriptor) -> Result<Vec<u8>> {
    let digest = desc.digest()?;
    let r = src.open_blob(&digest)?;
    blob::read_verified(r, &digest, desc.size, metadata_limit()).map_err(|e| Error::InvalidImage {
        image: image.to_string(),
        reason: e.to_string(),
    })
}

fn parse_json<'a, T: serde::Deserialize<'a>>(
    image: &str,
    what: &str,
    bytes: &'a [u8],
) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::InvalidImage {
        image: image.to_string(),
        reason: format!("{what}: {e}"),
    })
}

/// Parses an image manifest, naming Docker's schema 1 (deprecated, no config, no diff_ids)
/// when that is what it is.
fn parse_manifest(image: &str, bytes: &[u8]) -> Result<Manifest> {
    parse_json(image, "manifest", bytes).map_err(|e| {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            schema_version: Option<u64>,
        }
        match serde_json::from_slice::<Version>(bytes) {
            Ok(Version {
                schema_version: Some(1),
            }) => Error::InvalidImage {
                image: image.to_string(),
                reason: "the manifest is Docker's image manifest schema 1 (deprecated: no \
                         config, no diff_ids), which ocitree does not read; convert it first \
                         (skopeo copy --format v2s2 SOURCE DEST)"
                    .into(),
            },
            _ => e,
        }
    })
}

/// What a document an index entry points at says it is.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct NestedIndex {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<serde::de::IgnoredAny>,
}

/// One resolution's reads of the source: what it has followed, and how much it has read
/// (bounded by [`MAX_INDEX_ENTRIES`] and [`READ_BYTES_FACTOR`]).
struct Walk<'a> {
    src: &'a mut dyn Source,
    image: &'a str,
    /// Index entries read so far (index.json's included).
    entries: usize,
    /// Bytes of indexes and manifests read so far.
    bytes: u64,
    /// The indexes followed, with the tag annotation in force for their entries.
    followed: HashSet<(String, Option<String>)>,
    /// The indexes searched for a digest.
    searched: HashSet<String>,
    /// The artifact types of the manifests read for them, by digest.
    artifact_types: HashMap<String, Option<String>>,
}

impl<'a> Walk<'a> {
    fn new(src: &'a mut dyn Source, image: &'a str) -> Self {
        Walk {
            src,
            image,
            entries: 0,
            bytes: 0,
            followed: HashSet::new(),
            searched: HashSet::new(),
            artifact_types: HashMap::new(),
        }
    }

    fn invalid(&self, reason: String) -> Error {
        Error::InvalidImage {
            image: self.image.to_string(),
            reason,
        }
    }

    /// Counts `n` more index entries read, refusing more than [`MAX_INDEX_ENTRIES`].
    fn count_entries(&mut self, n: usize, at: &str) -> Result<()> {
        self.entries = self.entries.saturating_add(n);
        if self.entries > MAX_INDEX_ENTRIES {
            return Err(self.invalid(format!(
                "its indexes list more than {MAX_INDEX_ENTRIES} entries in all (an index \
                 counted once for each tag it is reached under; at {at}): refusing to follow \
                 further (a multi-platform index lists tens)"
            )));
        }
        Ok(())
    }

    /// Reads the document `desc` names, counting its bytes.
    fn read(&mut self, desc: &Descriptor) -> Result<Vec<u8>> {
        let bytes = read_blob(self.src, self.image, desc)?;
        let limit = metadata_limit().saturating_mul(READ_BYTES_FACTOR);
        self.bytes = self.bytes.saturating_add(bytes.len() as u64);
        if self.bytes > limit {
            return Err(self.invalid(format!(
                "the indexes and manifests read to choose a manifest come to more than \
                 {limit} bytes ({READ_BYTES_FACTOR} times the metadata limit; raise it with \
                 --max-metadata-size) at {}: refusing to read further",
                desc.digest_str
            )));
        }
        Ok(bytes)
    }

    /// Reads the index `desc` (an entry whose mediaType says index) points at: its entries.
    /// A document that is not an index (a manifest has no `manifests`, and used to read as
    /// an empty index: "0 manifests match") is an error saying the entry's mediaType does
    /// not match it.
    fn read_index(&mut self, desc: &Descriptor) -> Result<Vec<Descriptor>> {
        let bytes = self.read(desc)?;
        let doc: NestedIndex = parse_json(self.image, "index", &bytes)?;
        let index_type = doc
            .media_type
            .as_deref()
            .is_none_or(|t| t == MEDIA_TYPE_INDEX || t == MEDIA_TYPE_DOCKER_LIST);
        match doc.manifests {
            Some(manifests) if index_type => {
                self.count_entries(manifests.len(), &desc.digest_str)?;
                Ok(manifests)
            }
            _ => {
                let is = match (&doc.media_type, &doc.config) {
                    (Some(t), _) => format!("mediaType {t:?}"),
                    (None, Some(_)) => "an image manifest (a config, no manifests)".into(),
                    (None, None) => "not an index (no manifests)".into(),
                };
                Err(self.invalid(format!(
                    "the index entry for {} says mediaType {:?} but the document is {is}: the \
                     entry's mediaType does not match the document",
                    desc.digest_str, desc.media_type
                )))
            }
        }
    }

    /// Flattens (nested) indexes into manifest candidates, in order. An index already
    /// followed under the same tag annotation is not followed again: it would add only
    /// candidates already found, after them.
    fn flatten(
        &mut self,
        list: Vec<Candidate>,
        depth: usize,
        out: &mut Vec<Candidate>,
    ) -> Result<()> {
        for c in list {
            if !c.desc.is_index() {
                out.push(c);
                continue;
            }
            if depth >= MAX_DEPTH {
                return Err(too_deep(self.image, &c.desc));
            }
            if !self
                .followed
                .insert((c.desc.digest_str.clone(), c.ref_name.clone()))
            {
                continue;
            }
            let children = self
                .read_index(&c.desc)?
                .into_iter()
                .map(|d| Candidate {
                    ref_name: d.ref_name().map(String::from).or(c.ref_name.clone()),
                    desc: d,
                })
                .collect();
            self.flatten(children, depth + 1, out)?;
        }
        Ok(())
    }

    /// Finds a descriptor with `digest` at any depth (the first, depth first). An index
    /// already searched is not searched again.
    fn find_digest(
        &mut self,
        list: &[Descriptor],
        digest: &Digest,
        depth: usize,
    ) -> Result<Option<Descriptor>> {
        for d in list {
            if d.digest_str == digest.as_str() {
                return Ok(Some(d.clone()));
            }
            if d.is_index() {
                if depth >= MAX_DEPTH {
                    return Err(too_deep(self.image, d));
                }
                if !self.searched.insert(d.digest_str.clone()) {
                    continue;
                }
                let children = self.read_index(d)?;
                if let Some(found) = self.find_digest(&children, digest, depth + 1)? {
                    return Ok(Some(found));
                }
            }
        }
        Ok(None)
    }

    /// The artifact type of a candidate: its descriptor's `artifactType`, else the
    /// manifest's (read from the source, once per digest).
    fn artifact_type_of(&mut self, c: &Candidate) -> Result<Option<String>> {
        if let Some(t) = &c.desc.artifact_type {
            return Ok(Some(t.clone()));
        }
        if let Some(t) = self.artifact_types.get(&c.desc.digest_str) {
            return Ok(t.clone());
        }
        let bytes = self.read(&c.desc)?;
        let m = parse_manifest(self.image, &bytes)?;
        let t = m.artifact_type().map(String::from);
        self.artifact_types
            .insert(c.desc.digest_str.clone(), t.clone());
        Ok(t)
    }

    /// The manifests `selector` names in the source's index (before nested indexes are
    /// followed).
    fn top_candidates(&mut self, selector: &Selector) -> Result<Vec<Candidate>> {
        let image = self.image;
        let index_bytes = self.src.index()?;
        let index: Index = parse_json(image, "index.json", &index_bytes)?;
        drop(index_bytes);
        self.count_entries(index.manifests.len(), "index.json")?;
        let top: Vec<Candidate> = match selector {
            Selector::Default => index
                .manifests
                .into_iter()
                .map(|d| Candidate {
                    ref_name: d.ref_name().map(String::from),
                    desc: d,
                })
                .collect(),
            Selector::Tag(tag) => index
                .manifests
                .into_iter()
                .filter(|d| {
                    d.ref_name()
                        .is_some_and(|r| r == tag || r.ends_with(&format!(":{tag}")))
                })
                .map(|d| Candidate {
                    ref_name: Some(tag.clone()),
                    desc: d,
                })
                .collect(),
            Selector::Digest(dg) => {
                let found = self.find_digest(&index.manifests, dg, 0)?;
                found
                    .into_iter()
                    .map(|d| Candidate {
                        ref_name: d.ref_name().map(String::from),
                        desc: d,
                    })
                    .collect()
            }
        };
        if top.is_empty() {
            return Err(match selector {
                Selector::Default => self.invalid("the index lists no manifest".into()),
                Selector::Tag(t) => Error::NotFound(format!("{image}: tag {t:?}")),
                Selector::Digest(d) => Error::NotFound(format!("{image}: manifest {d}")),
            });
        }
        Ok(top)
    }
}

fn too_deep(image: &str, desc: &Descriptor) -> Error {
    Error::InvalidImage {
        image: image.into(),
        reason: format!(
            "indexes nested more than {MAX_DEPTH} deep (at {}): refusing to follow further",
            desc.digest_str
        ),
    }
}

/// Every image manifest `selector` names, through nested indexes, as its descriptor in the
/// index (with its platform, if the index gives one): what `import --all-platforms` imports.
///
/// # Errors
/// As [`resolve`] before it picks one.
pub fn all_manifests(
    src: &mut dyn Source,
    image: &str,
    selector: &Selector,
) -> Result<Vec<Descriptor>> {
    let mut walk = Walk::new(src, image);
    let top = walk.top_candidates(selector)?;
    let mut all = Vec::new();
    walk.flatten(top, 0, &mut all)?;
    Ok(all.into_iter().map(|c| c.desc).collect())
}

/// Picks the manifest `selector` names from the source's index, for `platform`, and of
/// `artifact_type` when given (artifacts usually have no platform: then the platform does not
/// filter them).
///
/// # Errors
/// [`Error::NotFound`] when nothing matches the selector, [`Error::InvalidImage`] when no
/// manifest has the artifact type (listing those there are), [`Error::AmbiguousIndex`] when
/// several match and none has a platform (with their artifact types); [`Error::InvalidImage`]
/// for indexes nested deeper than [`MAX_DEPTH`].
pub fn resolve(
    src: &mut dyn Source,
    image: &str,
    selector: &Selector,
    platform: Option<&Platform>,
    artifact_type: Option<&str>,
) -> Result<Resolved> {
    let mut walk = Walk::new(src, image);
    let top = walk.top_candidates(selector)?;
    let mut all = Vec::new();
    let single_top = top.len() == 1;
    walk.flatten(top, 0, &mut all)?;
    if all.is_empty() {
        return Err(Error::InvalidImage {
            image: image.to_string(),
            reason: "the index lists no manifest (its nested indexes are empty)".into(),
        });
    }
    if let Some(wanted) = artifact_type {
        let mut kept = Vec::new();
        let mut present: Vec<(String, usize)> = Vec::new();
        for c in all {
            let t = walk.artifact_type_of(&c)?;
            if t.as_deref() == Some(wanted) {
                kept.push(c);
                continue;
            }
            let t = t.map_or("(container image)".to_string(), |t| format!("{t:?}"));
            match present.iter_mut().find(|(p, _)| *p == t) {
                Some((_, n)) => *n += 1,
                None => present.push((t, 1)),
            }
        }
        if kept.is_empty() {
            let listing: Vec<String> = present.iter().map(|(t, n)| format!("  {t} ×{n}")).collect();
            return Err(Error::InvalidImage {
                image: image.to_string(),
                reason: format!(
                    "no manifest of artifact type {wanted:?}; the index has:\n{}",
                    listing.join("\n")
                ),
            });
        }
        all = kept;
    }
    let host = Platform::host();
    let wanted = platform.unwrap_or(&host);
    let mut passed_over = Vec::new();
    let mut by_platform = None;
    let chosen = if all.len() == 1
        && (single_top && platform.is_none()
            || all[0]
                .desc
                .platform
                .as_ref()
                .is_none_or(|p| p.satisfies(wanted)))
    {
        all.remove(0)
    } else {
        let matching: Vec<Candidate> = all
            .iter()
            .filter(|c| {
                c.desc
                    .platform
                    .as_ref()
                    .is_some_and(|p| p.satisfies(wanted))
            })
            .cloned()
            .collect();
        if matching.is_empty()
            && platform.is_none()
            && all.iter().all(|c| c.desc.platform.is_none())
        {
            // No platform anywhere: nothing says which one is meant, unless they are all one
            // (the same manifest under the same tag, listed again).
            let mut seen = std::collections::HashSet::new();
            all.retain(|c| seen.insert((c.desc.digest_str.clone(), c.ref_name.clone())));
            if all.len() == 1 {
                all.remove(0)
            } else {
                let mut lines = Vec::new();
                let mut typed = false;
                // only those listed are read for their type (an index may list thousands)
                for c in all.iter().take(MAX_LISTED) {
                    let t = walk.artifact_type_of(c)?;
                    typed |= t.is_some();
                    lines.push(format!(
                        "{}  artifactType {}",
                        describe(c),
                        t.as_deref().unwrap_or("-")
                    ));
                }
                if all.len() > MAX_LISTED {
                    lines.push(format!("  … and {} more", all.len() - MAX_LISTED));
                }
                let hint = if typed && artifact_type.is_none() {
                    ", or by type with --artifact-type TYPE".to_string()
                } else {
                    String::new()
                };
                return Err(Error::AmbiguousIndex {
                    image: image.to_string(),
                    count: all.len(),
                    candidates: lines.join("\n"),
                    hint,
                });
            }
        } else {
            let mut matching = matching.into_iter();
            let Some(first) = matching.next() else {
                let hint = if artifact_type.is_none()
                    && all.iter().any(|c| c.desc.platform.is_none())
                {
                    "; manifests without a platform (artifacts) are picked with --artifact-type TYPE or @DIGEST"
                } else {
                    ""
                };
                return Err(Error::InvalidImage {
                    image: image.to_string(),
                    reason: format!(
                        "no manifest for platform {wanted} (available: {}{}){hint}",
                        all.iter()
                            .take(MAX_LISTED)
                            .map(describe)
                            .collect::<Vec<_>>()
                            .join("; "),
                        match all.len().checked_sub(MAX_LISTED) {
                            Some(more) if more > 0 => format!("; … and {more} more"),
                            _ => String::new(),
                        }
                    ),
                });
            };
            // The image-index spec: "the first matching entry SHOULD be used".
            for c in matching {
                let d = c.desc.digest()?;
                if c.desc.digest_str != first.desc.digest_str && !passed_over.contains(&d) {
                    passed_over.push(d);
                }
            }
            by_platform = Some(wanted.clone());
            first
        }
    };
    let bytes = walk.read(&chosen.desc)?;
    let manifest = parse_manifest(image, &bytes)?;
    if manifest.manifests.is_some() || manifest.schema_version != 2 {
        return Err(Error::InvalidImage {
            image: image.into(),
            reason: format!(
                "{} is not an image manifest (schemaVersion 2)",
                chosen.desc.digest_str
            ),
        });
    }
    Ok(Resolved {
        digest: chosen.desc.digest()?,
        bytes,
        manifest,
        ref_name: chosen.ref_name,
        passed_over,
        platform: by_platform,
    })
}

fn describe(c: &Candidate) -> String {
    format!(
        "  {}  platform {}  tag {}",
        c.desc.digest_str,
        c.desc
            .platform
            .as_ref()
            .map_or("-".to_string(), |p| p.to_string()),
        c.ref_name.as_deref().unwrap_or("-")
    )
}
