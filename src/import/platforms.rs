//! `import --all-platforms`: every image of a multi-platform index, each imported as
//! [`import`] does under its own name, [`platform_name`]: `NAME@OS/ARCH[/VARIANT]`
//! (`app@linux/amd64`, `app@linux/arm/v7`). The name is injective: the platform part follows
//! the last `@`, and each of its parts (from the index, so untrusted) must be a plain word
//! ([`plain_part`]: no `/`, `@`, spaces or control characters; else two platforms could give
//! one name, or a name could rewrite the terminal it is printed on). Each image is read by its
//! digest, so the source must be readable more than once (not standard input). Docker
//! attestation manifests (`vnd.docker.reference.type: attestation-manifest`) are not images
//! of a platform and are left out; any other entry without a platform is an error.

use ostree::Repo;

use crate::error::{Error, Result};
use crate::import::{ImportOptions, ImportReport, import};
use crate::resolve::all_manifests;
use crate::source::{Selector, SourceRef};
use crate::spec::Platform;

/// The name `import --all-platforms` gives the image of `platform` under `name`.
///
/// # Examples
/// ```
/// use ocitree::spec::Platform;
/// let p = Platform::parse("linux/arm/v7").unwrap();
/// assert_eq!(ocitree::import::platform_name("app", &p), "app@linux/arm/v7");
/// ```
pub fn platform_name(name: &str, platform: &Platform) -> String {
    format!("{name}@{platform}")
}

/// Whether `s` may be a part (os, architecture, variant) of a platform in an image name:
/// letters, digits and `.`, `_`, `-`, `+`, at most 64 of them.
fn plain_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
}

/// `source` narrowed to the manifest `digest`.
fn by_digest(source: &SourceRef, digest: crate::digest::Digest) -> Result<SourceRef> {
    Ok(match source {
        SourceRef::OciDir { path, .. } => SourceRef::OciDir {
            path: path.clone(),
            selector: Selector::Digest(digest),
        },
        SourceRef::OciArchive {
            path: Some(path), ..
        } => SourceRef::OciArchive {
            path: Some(path.clone()),
            selector: Selector::Digest(digest),
        },
        SourceRef::Registry(r) => {
            let mut r = r.clone();
            r.digest = Some(digest);
            SourceRef::Registry(r)
        }
        _ => {
            return Err(Error::InvalidReference {
                reference: source.to_string(),
                reason: "--all-platforms reads an index (oci:, oci-archive:FILE or docker://)"
                    .into(),
            });
        }
    })
}

/// Imports every platform's image of the index `source` names, as `NAME@PLATFORM`
/// ([`platform_name`]), in index order; `opts.name` is NAME (required) and `opts.platform`
/// must be unset. Each import is its own transaction: on an error, the platforms imported
/// before it stay.
///
/// # Errors
/// No NAME, a platform given, an entry without a platform, two entries of one platform, and
/// what [`import`] returns.
pub fn import_all_platforms(
    repo: &Repo,
    source: &SourceRef,
    opts: &ImportOptions,
) -> Result<Vec<ImportReport>> {
    let bad = |reason: String| Error::Invalid {
        what: format!("import --all-platforms {source}"),
        reason,
    };
    let Some(name) = opts.name.clone() else {
        return Err(bad(
            "--all-platforms needs the NAME the platforms go under".into()
        ));
    };
    if opts.platform.is_some() {
        return Err(bad(
            "--all-platforms and --platform exclude each other".into()
        ));
    }
    let image = source.to_string();
    let mut src = source.open_with(&opts.registry)?;
    let mut picked: Vec<(Platform, crate::digest::Digest)> = Vec::new();
    for desc in all_manifests(src.as_mut(), &image, source.selector())? {
        let attestation = desc
            .annotations
            .get("vnd.docker.reference.type")
            .is_some_and(|t| t == "attestation-manifest");
        if attestation {
            continue;
        }
        let Some(p) = desc.platform.clone() else {
            return Err(bad(format!(
                "{} has no platform: import it alone, by digest",
                desc.digest_str
            )));
        };
        let parts = [Some(&p.os), Some(&p.architecture), p.variant.as_ref()];
        if !parts.into_iter().flatten().all(|s| plain_part(s)) {
            return Err(bad(format!(
                "{}: platform {:?} cannot be part of an image name (each of os, architecture \
                 and variant must be letters, digits, '.', '_', '-' or '+')",
                desc.digest_str,
                p.to_string()
            )));
        }
        if picked.iter().any(|(q, _)| q.to_string() == p.to_string()) {
            return Err(bad(format!("two manifests for platform {p}")));
        }
        picked.push((p, desc.digest()?));
    }
    drop(src);
    let mut reports = Vec::new();
    for (p, digest) in picked {
        let mut o = opts.clone();
        o.name = Some(platform_name(&name, &p));
        reports.push(import(repo, &by_digest(source, digest)?, &o)?);
    }
    Ok(reports)
}
