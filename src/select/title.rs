//! Where an artifact file goes: its `org.opencontainers.image.title` as a relative path
//! (ORAS writes `sample/mixed/src/main.js` for `oras push $(find sample -type f)`), normalised
//! and confined to the tree, and no two layers at the same place.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The path a title names, normalised: `./a//b/` → `a/b`.
///
/// # Errors
/// An empty title, an absolute path, a `..` segment, a NUL, a whiteout name (`.wh.`) or a
/// title that normalises to nothing: the error names image, layer and title.
pub fn title_path(image: &str, layer: &Digest, title: &str) -> Result<String> {
    let bad = |why: &str| Error::InvalidImage {
        image: image.into(),
        reason: format!(
            "layer {layer}: title {:?} {why}",
            crate::error::printable(title)
        ),
    };
    if title.is_empty() {
        return Err(bad("is empty: it names no file"));
    }
    if title.starts_with('/') {
        return Err(bad(
            "is an absolute path: an artifact file must stay inside the tree",
        ));
    }
    if title.contains('\0') {
        return Err(bad("holds a NUL byte"));
    }
    let mut parts = Vec::new();
    for seg in title.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                return Err(bad(
                    "has a `..` segment: an artifact file must stay inside the tree",
                ));
            }
            s if s.starts_with(".wh.") => {
                return Err(bad("has a whiteout name (.wh.): it would delete files"));
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return Err(bad("names the root of the tree, not a file"));
    }
    Ok(parts.join("/"))
}

/// Checks that no two artifact files (`(layer, path)`) land on the same path, or one inside
/// the other (file `a` and file `a/b`).
///
/// # Errors
/// The first clash, naming image, both layers and the path.
pub fn check_unique<'a>(
    image: &str,
    files: impl IntoIterator<Item = (&'a Digest, &'a str)>,
) -> Result<()> {
    let mut seen: BTreeMap<&str, &Digest> = BTreeMap::new();
    for (layer, path) in files {
        if let Some(other) = seen.get(path) {
            if *other == layer {
                // The same blob twice: the same file.
                continue;
            }
            return Err(Error::InvalidImage {
                image: image.into(),
                reason: format!(
                    "layers {other} and {layer} would both be the file {:?} (by title or --copy \
                     name): one would silently replace the other (import with --layers \
                     per-dir to keep both)",
                    crate::error::printable(path)
                ),
            });
        }
        seen.insert(path, layer);
    }
    // A path that is also a directory of another: sorted, `a` comes right before `a/...`
    // (after anything `a` + a byte below '/').
    for (path, layer) in &seen {
        let dir = format!("{path}/");
        if let Some((inner, other)) = seen.range(dir.as_str()..).next()
            && inner.starts_with(&dir)
        {
            return Err(Error::InvalidImage {
                image: image.into(),
                reason: format!(
                    "layer {layer} has title {:?} and layer {other} has title {:?}: a file \
                     cannot also be a directory",
                    crate::error::printable(path),
                    crate::error::printable(inner)
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Digest {
        Digest::parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
            .unwrap()
    }

    #[test]
    fn titles_are_normalised_and_confined() {
        let p = |t| title_path("img", &d(), t);
        assert_eq!(p("values.json").unwrap(), "values.json");
        assert_eq!(
            p("sample/mixed/src/main.js").unwrap(),
            "sample/mixed/src/main.js"
        );
        assert_eq!(p("./a//b/").unwrap(), "a/b");
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/..",
            ".",
            "./",
            "a/.wh.b",
        ] {
            let e = p(bad).unwrap_err().to_string();
            assert!(
                e.contains("img") && e.contains("layer sha256:e3b0"),
                "{bad:?}: {e}"
            );
        }
        assert!(
            p("\u{1b}[31m/..")
                .unwrap_err()
                .to_string()
                .contains("\\u{1b}"),
            "escape sequences are not echoed"
        );
    }

    #[test]
    fn clashes_are_found() {
        let (a, b) = (
            d(),
            Digest::parse(&format!("sha256:{}", "0".repeat(64))).unwrap(),
        );
        assert!(check_unique("i", [(&a, "x"), (&b, "y/x"), (&b, "x0")]).is_ok());
        assert!(
            check_unique("i", [(&a, "x"), (&a, "x")]).is_ok(),
            "one blob twice"
        );
        let e = check_unique("i", [(&a, "x"), (&b, "x")]).unwrap_err();
        assert!(e.to_string().contains("both be the file \"x\""), "{e}");
        let e = check_unique("i", [(&a, "x/y"), (&b, "x.txt"), (&b, "x")]).unwrap_err();
        assert!(e.to_string().contains("cannot also be a directory"), "{e}");
    }
}
