//! Image names and digests ⇄ OSTree ref names.
//!
//! The only place ref strings are built. Every ocitree ref lives under [`REF_PREFIX`]:
//!
//! | ref | points to |
//! |---|---|
//! | `ocitree/image/<escape(name)>` | image commit |
//! | `ocitree/blob/<escape(alg)>/<escape(encoded)>` | layer commit, by blob digest |
//! | `ocitree/diffid/<escape(alg)>/<escape(encoded)>` | layer commit, by diff_id |
//!
//! ## Escaping
//!
//! libostree accepts ref components matching `[\w\d][-._\w\d]*`, separated by `/`. [`escape`]
//! maps any string to one such component, injectively and reversibly:
//! - bytes in `[A-Za-z0-9.-]` stay as they are, except a leading `.` or `-`;
//! - every other byte (including `_`, `/`, `:` and each byte of a multi-byte character) and a
//!   leading `.` or `-` is written `_XX`, two uppercase hex digits;
//! - the empty string is a lone `_` (which no other string produces, as `_` always introduces
//!   two hex digits).
//!
//! `/` is escaped too, so an image name is always a single component: refs `a` and `a/b` would
//! otherwise collide as a file and a directory in `refs/heads/`.
//!
//! Common names stay readable: `busybox:latest` → `busybox_3Alatest`,
//! `quay.io/fedora/fedora:40` → `quay.io_2Ffedora_2Ffedora_3A40`.

/// The prefix of every ref ocitree writes.
pub const REF_PREFIX: &str = "ocitree/";
/// The prefix of image refs.
pub const IMAGE_REF_PREFIX: &str = "ocitree/image/";
/// The prefix of layer refs keyed by blob digest.
pub const BLOB_REF_PREFIX: &str = "ocitree/blob/";
/// The prefix of layer refs keyed by diff_id.
pub const DIFFID_REF_PREFIX: &str = "ocitree/diffid/";

fn literal(b: u8, first: bool) -> bool {
    b.is_ascii_alphanumeric() || (!first && (b == b'.' || b == b'-'))
}

/// Escapes any string into one valid ref component.
///
/// # Examples
/// ```
/// use ocitree::refname::{escape, unescape};
/// assert_eq!(escape("busybox:latest"), "busybox_3Alatest");
/// assert_eq!(escape(""), "_");
/// assert_eq!(escape("-x"), "_2Dx");
/// assert_eq!(unescape("busybox_3Alatest").as_deref(), Some("busybox:latest"));
/// ```
pub fn escape(s: &str) -> String {
    if s.is_empty() {
        return "_".to_string();
    }
    let mut out = String::with_capacity(s.len());
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if literal(b, i == 0) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02X}"));
        }
    }
    out
}

/// Reverses [`escape`]. `None` for any string `escape` cannot produce.
pub fn unescape(s: &str) -> Option<String> {
    if s == "_" {
        return Some(String::new());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let first = out.is_empty();
        if b[i] == b'_' {
            let hex = s.get(i + 1..i + 3)?;
            if !hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))
            {
                return None;
            }
            let v = u8::from_str_radix(hex, 16).ok()?;
            if literal(v, first) {
                return None; // escape() writes this byte as itself
            }
            out.push(v);
            i += 3;
        } else if literal(b[i], first) {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    if out.is_empty() {
        return None;
    }
    String::from_utf8(out).ok()
}

/// The ref of the image called `name`.
pub fn image_ref(name: &str) -> String {
    format!("{IMAGE_REF_PREFIX}{}", escape(name))
}

/// The image name a ref stands for; `None` if it is not an image ref.
pub fn image_name_from_ref(r: &str) -> Option<String> {
    let rest = r.strip_prefix(IMAGE_REF_PREFIX)?;
    if rest.contains('/') {
        return None;
    }
    unescape(rest)
}

fn digest_ref(prefix: &str, digest: &str) -> String {
    let (alg, enc) = digest.split_once(':').unwrap_or((digest, ""));
    format!("{prefix}{}/{}", escape(alg), escape(enc))
}

/// The layer ref for a blob digest (`alg:encoded`, already validated).
pub fn blob_ref(digest: &str) -> String {
    digest_ref(BLOB_REF_PREFIX, digest)
}

/// The layer ref for a diff_id (`alg:encoded`, already validated).
pub fn diffid_ref(digest: &str) -> String {
    digest_ref(DIFFID_REF_PREFIX, digest)
}

/// The digest a blob or diff_id ref stands for; `None` for any other ref.
pub fn digest_from_layer_ref(r: &str) -> Option<String> {
    let rest = r
        .strip_prefix(BLOB_REF_PREFIX)
        .or_else(|| r.strip_prefix(DIFFID_REF_PREFIX))?;
    let (alg, enc) = rest.split_once('/')?;
    Some(format!("{}:{}", unescape(alg)?, unescape(enc)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(
            image_ref("busybox:latest"),
            "ocitree/image/busybox_3Alatest"
        );
        assert_eq!(escape("a/b"), "a_2Fb");
        assert_eq!(escape(".."), "_2E.");
        assert_eq!(escape("_"), "_5F");
        assert_eq!(escape("é"), "_C3_A9");
        assert_eq!(escape("@sha256:abc"), "_40sha256_3Aabc");
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(blob_ref(d), format!("ocitree/blob/sha256/{}", &d[7..]));
        assert_eq!(digest_from_layer_ref(&blob_ref(d)).as_deref(), Some(d));
        assert_eq!(digest_from_layer_ref(&diffid_ref(d)).as_deref(), Some(d));
    }

    #[test]
    fn rejects_foreign_spellings() {
        for s in [
            "", "_", "_3a", "_41", "a_", "a_4", ".a", "-a", "a:b", "_ZZ", "a/b",
        ] {
            if s == "_" {
                continue;
            }
            assert_eq!(unescape(s), None, "{s:?}");
        }
        assert_eq!(image_name_from_ref("ostree/container/x"), None);
        assert_eq!(image_name_from_ref("ocitree/image/a/b"), None);
    }

    fn adversarial() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "-",
                ".",
                "_",
                "/",
                ":",
                "@",
                "a",
                "Z",
                "0",
                "é",
                "\u{10FFFF}",
                "_2D",
                "..",
            ]),
            0..12,
        )
        .prop_map(|v| v.concat())
    }

    fn any_string() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), "\\PC*", adversarial()]
    }

    proptest! {
        #[test]
        fn roundtrip_and_valid(s in any_string()) {
            prop_assert_eq!(unescape(&escape(&s)), Some(s.clone()));
            prop_assert_eq!(image_name_from_ref(&image_ref(&s)), Some(s.clone()));
            prop_assert!(ostree::validate_rev(&image_ref(&s)).is_ok(), "{}", image_ref(&s));
        }

        #[test]
        fn injective(a in any_string(), b in any_string()) {
            prop_assume!(a != b);
            prop_assert_ne!(escape(&a), escape(&b));
        }

        #[test]
        fn digest_refs_roundtrip(alg in any_string().prop_filter("no colon", |a| !a.contains(':')), enc in any_string()) {
            let d = format!("{alg}:{enc}");
            for r in [blob_ref(&d), diffid_ref(&d)] {
                prop_assert!(ostree::validate_rev(&r).is_ok(), "{}", r);
                prop_assert_eq!(digest_from_layer_ref(&r), Some(d.clone()));
            }
        }
    }
}
