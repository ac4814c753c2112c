//! Image names and digests ⇄ OSTree ref names.
//!
//! This module is the only place ref strings are built or parsed. Every ocitree ref lives under
//! [`REF_PREFIX`], except the refs an image's commit is bound to (`ostree.ref-binding`, see
//! [`crate::image::EncapsulatedCommit::ref_bindings`]), which import creates for clients under
//! the names the commit gives:
//!
//! | ref | points to |
//! |---|---|
//! | `ocitree/image/<escape(name)>` ([`image_ref`]) | image commit (the merged tree) |
//! | `ocitree/blob/<escape(alg)>/<escape(encoded)>` ([`blob_ref`]) | layer commit, keyed by blob digest |
//! | `ocitree/diffid/<escape(alg)>/<escape(encoded)>` ([`diffid_ref`]) | the same layer commit, keyed by diff_id |
//! | `ocitree/encapsulated/<escape(name)>` ([`encapsulated_ref`]) | image record of an image whose `ocitree/image/` ref points at an encapsulated (foreign) commit |
//! | `ocitree/bound/<escape(ref)>` ([`bound_marker_ref`]) | the commit ocitree set the bound ref `ref` (outside `ocitree/`) to |
//! | `<ref>`, as the commit's `ostree.ref-binding` names it | the image's commit, for clients, when ocitree made it |
//!
//! A bound ref is ocitree's, to move or delete, only while its marker `ocitree/bound/…` exists
//! and points at the same commit: a ref that existed before ocitree would have made it (a
//! user's `ostree commit -b` branch), or that someone moved since, is never changed.
//!
//! A digest `alg:encoded` is split at its first `:`; both parts are escaped separately, so a
//! layer ref always has exactly four components.
//!
//! ## Escaping
//!
//! libostree accepts a ref made of `/`-separated components, each matching
//! `[\w\d][-._\w\d]*` (so no component may start with `.` or `-`, and `:` or `@` are never
//! allowed). [`escape`] maps any UTF-8 string to exactly one such component:
//!
//! - each byte in `[A-Za-z0-9.-]` is written as itself, except a `.` or `-` in first position;
//! - every other byte — including `_` itself (`_5F`), `/` (`_2F`), `:` (`_3A`), `@` (`_40`) and
//!   each byte of a multi-byte character (`é` → `_C3_A9`) — and a leading `.` or `-` (`_2E`,
//!   `_2D`) is written `_XX`, two UPPERCASE hex digits;
//! - the empty string is written as a lone `_` (which no other string produces, since every
//!   other `_` is followed by two hex digits).
//!
//! Every escaped component therefore starts with a letter, a digit or `_`. Escaping `/` keeps an
//! image name to a single component: refs `a` and `a/b` would otherwise collide as a file and a
//! directory under `refs/heads/`.
//!
//! [`unescape`] is strict: it accepts exactly the strings [`escape`] produces, so the encoding is
//! a bijection between all strings and its image. Lowercase hex, a `_XX` for a byte `escape`
//! writes literally, a literal byte `escape` would have escaped, or bytes that do not form UTF-8
//! are all rejected.
//!
//! Escaping can triple a name's length, and each ref component is a file name under
//! `refs/heads/`, so a name whose escaped form is longer than the file system's `NAME_MAX`
//! (usually 255 bytes) cannot be stored: libostree then fails with "File name too long".
//!
//! Common names stay readable: `busybox:latest` → `busybox_3Alatest`,
//! `quay.io/fedora/fedora:40` → `quay.io_2Ffedora_2Ffedora_3A40`, and
//! `sha256:e3b0…` → `ocitree/blob/sha256/e3b0…`.

/// The prefix of every ref ocitree writes.
pub const REF_PREFIX: &str = "ocitree/";
/// The prefix of image refs: `ocitree/image/<escape(name)>`.
pub const IMAGE_REF_PREFIX: &str = "ocitree/image/";
/// The prefix of image records of encapsulated commits: `ocitree/encapsulated/<escape(name)>`.
pub const ENCAPSULATED_REF_PREFIX: &str = "ocitree/encapsulated/";
/// The prefix of layer refs keyed by blob digest: `ocitree/blob/<escape(alg)>/<escape(encoded)>`.
pub const BLOB_REF_PREFIX: &str = "ocitree/blob/";
/// The prefix of markers of the bound refs ocitree made: `ocitree/bound/<escape(ref)>`.
pub const BOUND_REF_PREFIX: &str = "ocitree/bound/";
/// The prefix of layer refs keyed by diff_id: `ocitree/diffid/<escape(alg)>/<escape(encoded)>`.
pub const DIFFID_REF_PREFIX: &str = "ocitree/diffid/";

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Whether [`escape`] writes byte `b` as itself (`first`: it is the string's first byte).
fn literal(b: u8, first: bool) -> bool {
    b.is_ascii_alphanumeric() || (!first && (b == b'.' || b == b'-'))
}

/// The value of one uppercase hex digit, `None` for anything else (lowercase included).
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Escapes any string into one valid ref component (see the [module docs](self)).
///
/// # Examples
/// ```
/// use ocitree::refname::escape;
/// assert_eq!(escape("busybox:latest"), "busybox_3Alatest");
/// assert_eq!(escape(""), "_");
/// assert_eq!(escape("-x"), "_2Dx");
/// assert_eq!(escape("a_b"), "a_5Fb");
/// ```
pub fn escape(s: &str) -> String {
    if s.is_empty() {
        return "_".to_string();
    }
    let mut out = String::with_capacity(s.len());
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if literal(b, i == 0) {
            out.push(char::from(b));
        } else {
            out.push('_');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
    out
}

/// Reverses [`escape`]: `None` for any string `escape` cannot produce.
///
/// # Examples
/// ```
/// use ocitree::refname::unescape;
/// assert_eq!(unescape("busybox_3Alatest").as_deref(), Some("busybox:latest"));
/// assert_eq!(unescape("_").as_deref(), Some(""));
/// assert_eq!(unescape("busybox_3alatest"), None); // lowercase hex
/// assert_eq!(unescape("_41"), None); // escape("A") is "A"
/// assert_eq!(unescape("-x"), None); // escape("-x") is "_2Dx"
/// ```
pub fn unescape(s: &str) -> Option<String> {
    if s == "_" {
        return Some(String::new());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some((&c, tail)) = rest.split_first() {
        let first = out.is_empty();
        if c == b'_' {
            let [hi, lo, tail @ ..] = tail else {
                return None;
            };
            let b = (hex_value(*hi)? << 4) | hex_value(*lo)?;
            if literal(b, first) {
                return None; // escape() writes this byte as itself
            }
            out.push(b);
            rest = tail;
        } else if literal(c, first) {
            out.push(c);
            rest = tail;
        } else {
            return None; // escape() would have written this byte as `_XX`
        }
    }
    if out.is_empty() {
        return None; // "" is not escape() of anything
    }
    String::from_utf8(out).ok()
}

/// The ref of the image called `name`: `ocitree/image/<escape(name)>`.
///
/// # Examples
/// ```
/// use ocitree::refname::image_ref;
/// assert_eq!(image_ref("busybox:latest"), "ocitree/image/busybox_3Alatest");
/// ```
pub fn image_ref(name: &str) -> String {
    format!("{IMAGE_REF_PREFIX}{}", escape(name))
}

/// Longest ref component: each is a file name in the repository (`NAME_MAX`).
pub const MAX_COMPONENT: usize = 255;

/// Checks that image `name` makes a ref the repository can store: its escaped form must fit
/// in one file name ([`MAX_COMPONENT`] bytes). Checked before an import writes anything.
///
/// # Errors
/// [`crate::error::Error::InvalidName`] saying how long the escaped name is.
pub fn check_image_name(name: &str) -> crate::error::Result<()> {
    let n = escape(name).len();
    if n > MAX_COMPONENT {
        return Err(crate::error::Error::InvalidName {
            name: name.chars().take(80).collect::<String>() + "…",
            reason: format!(
                "too long: escaped for its ref it is {n} bytes, the limit is {MAX_COMPONENT} (bytes outside A-Z a-z 0-9 . - take 3)"
            ),
        });
    }
    Ok(())
}

/// The image name an image ref stands for; `None` if `r` is not an image ref [`image_ref`] can
/// produce.
pub fn image_name_from_ref(r: &str) -> Option<String> {
    unescape(r.strip_prefix(IMAGE_REF_PREFIX)?)
}

/// The ref of the image record of image `name` when its image ref points at an encapsulated
/// commit (see [`crate::image::encapsulated`]).
///
/// # Examples
/// ```
/// assert_eq!(ocitree::refname::encapsulated_ref("app:1"), "ocitree/encapsulated/app_3A1");
/// ```
pub fn encapsulated_ref(name: &str) -> String {
    format!("{ENCAPSULATED_REF_PREFIX}{}", escape(name))
}

/// The image name of an encapsulated-record ref, `None` if `r` is not one.
pub fn image_name_from_encapsulated_ref(r: &str) -> Option<String> {
    unescape(r.strip_prefix(ENCAPSULATED_REF_PREFIX)?)
}

/// The marker of bound ref `bound` (a ref outside `ocitree/` that an image's commit is bound
/// to): `ocitree/bound/<escape(bound)>`, pointing at the commit ocitree set `bound` to. `None`
/// when the escaped name does not fit in one file name ([`MAX_COMPONENT`]): such a ref cannot
/// be marked, so ocitree never makes it.
///
/// # Examples
/// ```
/// use ocitree::refname::bound_marker_ref;
/// assert_eq!(
///     bound_marker_ref("exampleos/x86_64/stable").as_deref(),
///     Some("ocitree/bound/exampleos_2Fx86_5F64_2Fstable")
/// );
/// assert_eq!(bound_marker_ref(&"a/".repeat(100)), None);
/// ```
pub fn bound_marker_ref(bound: &str) -> Option<String> {
    let e = escape(bound);
    (e.len() <= MAX_COMPONENT).then(|| format!("{BOUND_REF_PREFIX}{e}"))
}

/// The bound ref a marker stands for; `None` if `r` is not a ref [`bound_marker_ref`] can
/// produce.
pub fn bound_ref_from_marker(r: &str) -> Option<String> {
    let e = r.strip_prefix(BOUND_REF_PREFIX)?;
    if e.len() > MAX_COMPONENT {
        return None;
    }
    unescape(e)
}

/// `prefix` + the escaped algorithm and encoded parts of `digest`, split at its first `:`.
///
/// A digest without `:` (which callers never pass: digests are validated first) is treated as an
/// algorithm with an empty encoded part.
fn digest_ref(prefix: &str, digest: &str) -> String {
    let (alg, encoded) = digest.split_once(':').unwrap_or((digest, ""));
    format!("{prefix}{}/{}", escape(alg), escape(encoded))
}

/// The layer ref keyed by a blob digest: `ocitree/blob/<escape(alg)>/<escape(encoded)>`.
///
/// `digest` is `alg:encoded`, already validated by the caller; it is split at the first `:`.
///
/// # Examples
/// ```
/// use ocitree::refname::blob_ref;
/// assert_eq!(blob_ref("sha256:abc"), "ocitree/blob/sha256/abc");
/// ```
pub fn blob_ref(digest: &str) -> String {
    digest_ref(BLOB_REF_PREFIX, digest)
}

/// The layer ref keyed by a diff_id: `ocitree/diffid/<escape(alg)>/<escape(encoded)>`.
///
/// `digest` is `alg:encoded`, already validated by the caller; it is split at the first `:`.
pub fn diffid_ref(digest: &str) -> String {
    digest_ref(DIFFID_REF_PREFIX, digest)
}

/// The digest (`alg:encoded`) a blob or diff_id layer ref stands for; `None` for any other ref.
///
/// # Examples
/// ```
/// use ocitree::refname::{blob_ref, diffid_ref, digest_from_layer_ref};
/// let d = "sha256:abc";
/// assert_eq!(digest_from_layer_ref(&blob_ref(d)).as_deref(), Some(d));
/// assert_eq!(digest_from_layer_ref(&diffid_ref(d)).as_deref(), Some(d));
/// assert_eq!(digest_from_layer_ref("ocitree/image/x"), None);
/// ```
pub fn digest_from_layer_ref(r: &str) -> Option<String> {
    let rest = r
        .strip_prefix(BLOB_REF_PREFIX)
        .or_else(|| r.strip_prefix(DIFFID_REF_PREFIX))?;
    let (alg, encoded) = rest.split_once('/')?;
    let alg = unescape(alg)?;
    if alg.contains(':') {
        return None; // the split is at the first ':', so blob_ref() never produces this
    }
    Some(format!("{alg}:{}", unescape(encoded)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        for (s, e) in [
            ("busybox:latest", "busybox_3Alatest"),
            ("", "_"),
            ("-x", "_2Dx"),
            (".x", "_2Ex"),
            ("..", "_2E."),
            ("x-.", "x-."),
            ("_", "_5F"),
            ("a/b", "a_2Fb"),
            ("é", "_C3_A9"),
            ("@sha256:abc", "_40sha256_3Aabc"),
            ("sha256", "sha256"),
            ("quay.io/fedora/fedora:40", "quay.io_2Ffedora_2Ffedora_3A40"),
        ] {
            assert_eq!(escape(s), e, "escape({s:?})");
            assert_eq!(unescape(e).as_deref(), Some(s), "unescape({e:?})");
            let r = image_ref(s);
            assert_eq!(r, format!("ocitree/image/{e}"));
            assert!(ostree::validate_rev(&r).is_ok(), "{r}");
            assert_eq!(image_name_from_ref(&r).as_deref(), Some(s));
        }
    }

    #[test]
    fn layer_refs() {
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let d = format!("sha256:{hex}");
        assert_eq!(blob_ref(&d), format!("ocitree/blob/sha256/{hex}"));
        assert_eq!(diffid_ref(&d), format!("ocitree/diffid/sha256/{hex}"));
        for r in [blob_ref(&d), diffid_ref(&d)] {
            assert!(ostree::validate_rev(&r).is_ok(), "{r}");
            assert_eq!(digest_from_layer_ref(&r), Some(d.clone()));
            assert!(r.starts_with(REF_PREFIX));
        }
        // split at the first ':' only
        assert_eq!(blob_ref("a:b:c"), "ocitree/blob/a/b_3Ac");
        assert_eq!(
            digest_from_layer_ref("ocitree/blob/a/b_3Ac").as_deref(),
            Some("a:b:c")
        );
        assert_eq!(
            blob_ref("sha256+b64u:x_y"),
            "ocitree/blob/sha256_2Bb64u/x_5Fy"
        );
    }

    #[test]
    fn bound_markers() {
        for b in [
            "exampleos/x86_64/stable",
            "app/org.example.App/x86_64/master",
            "x",
        ] {
            let m = bound_marker_ref(b).unwrap();
            assert!(ostree::validate_rev(&m).is_ok(), "{m}");
            assert!(m.starts_with(BOUND_REF_PREFIX) && m.starts_with(REF_PREFIX));
            assert_eq!(m.matches('/').count(), 2, "{m}");
            assert_eq!(bound_ref_from_marker(&m).as_deref(), Some(b));
            assert_eq!(image_name_from_ref(&m), None);
            assert_eq!(digest_from_layer_ref(&m), None);
        }
        // the longest that fits, and one more byte
        let fits = "a".repeat(MAX_COMPONENT);
        assert!(bound_marker_ref(&fits).is_some());
        assert_eq!(bound_marker_ref(&format!("{fits}b")), None);
        for r in [
            "ocitree/bound/",
            "ocitree/bound/a/b",
            "ocitree/boundx",
            "ocitree/image/x",
        ] {
            assert_eq!(bound_ref_from_marker(r), None, "{r:?}");
        }
    }

    #[test]
    fn rejects_what_escape_cannot_produce() {
        for s in [
            "",          // escape never yields ""
            "_3a",       // lowercase hex
            "_3G",       // not hex
            "_41",       // 'A' is written literally
            "a_2E",      // a non-leading '.' is written literally
            "a_2D",      // a non-leading '-' is written literally
            "a_",        // truncated
            "a_4",       // truncated
            "__",        // '_' never stands alone but as the empty string
            "a__5F",     // ditto
            "_5F_",      // ditto
            ".a",        // a leading '.' is escaped
            "-a",        // a leading '-' is escaped
            ".",         // ditto
            "a:b",       // ':' is escaped
            "a/b",       // '/' is escaped
            "a b",       // ' ' is escaped
            "é",         // non-ASCII is escaped byte by byte
            "_é",        // ditto, and not hex
            "_C3",       // truncated UTF-8
            "_FF",       // never UTF-8
            "_C3_28",    // invalid continuation
            "_ED_A0_80", // a surrogate
            "_2Ea_2D",   // only the leading '-' or '.' is escaped
        ] {
            assert_eq!(unescape(s), None, "{s:?}");
        }
        assert_eq!(unescape("_2D").as_deref(), Some("-"));
        assert_eq!(unescape("_2Ea-").as_deref(), Some(".a-"));
        assert_eq!(unescape("_00").as_deref(), Some("\0"));
    }

    #[test]
    fn rejects_foreign_refs() {
        for r in [
            "ostree/container/x",
            "ocitree/image/",
            "ocitree/image/a/b",
            "ocitree/image/a:b",
            "ocitree/imagex",
            "ocitree/blob/sha256/abc",
        ] {
            assert_eq!(image_name_from_ref(r), None, "{r:?}");
        }
        for r in [
            "ocitree/image/sha256_3Aabc",
            "ocitree/blob/sha256",
            "ocitree/blob/sha256/",
            "ocitree/blob/sha256/a/b",
            "ocitree/blob/sha256:abc",
            "ocitree/blob/a_3Ab/c", // alg with ':' cannot come from a first-':' split
            "ocitree/diffid/sha256/ABC_3a",
            "ocitree/other/sha256/abc",
        ] {
            assert_eq!(digest_from_layer_ref(r), None, "{r:?}");
        }
    }

    /// Strings made of the characters escaping is most likely to get wrong.
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
                "9",
                "F",
                "é",
                "\u{0}",
                " ",
                "\u{10FFFF}",
                "_2D",
                "_5F",
                "..",
                "./",
                "-_",
            ]),
            0..12,
        )
        .prop_map(|v| v.concat())
    }

    /// Strings over the escaped alphabet, plus a few bytes escape never writes, to look for
    /// spellings `unescape` accepts but `escape` would not produce.
    fn escaped_looking() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec![
                "_", "0", "2", "3", "5", "7", "8", "A", "C", "D", "E", "F", "a", "f", ".", "-",
                "z", "é", "/", ":",
            ]),
            0..14,
        )
        .prop_map(|v| v.concat())
    }

    fn any_string() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), ".*", "\\PC*", adversarial()]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::testing::fuzz_cases(1024)))]

        #[test]
        fn roundtrip_and_valid(s in any_string()) {
            let e = escape(&s);
            prop_assert_eq!(unescape(&e), Some(s.clone()));
            prop_assert!(ostree::validate_rev(&e).is_ok(), "{}", e);
            let r = image_ref(&s);
            prop_assert!(ostree::validate_rev(&r).is_ok(), "{}", r);
            prop_assert_eq!(r.matches('/').count(), 2);
            prop_assert_eq!(image_name_from_ref(&r), Some(s));
        }

        #[test]
        fn injective(a in any_string(), b in any_string()) {
            prop_assume!(a != b);
            prop_assert_ne!(escape(&a), escape(&b));
        }

        #[test]
        fn injective_on_near_misses(a in adversarial(), b in adversarial()) {
            prop_assume!(a != b);
            prop_assert_ne!(escape(&a), escape(&b));
        }

        #[test]
        fn unescape_only_accepts_escape_output(t in escaped_looking()) {
            if let Some(s) = unescape(&t) {
                prop_assert_eq!(escape(&s), t);
            }
        }

        /// Fuzz target: decoding arbitrary strings (refs from any repo) never panics, and
        /// whatever decodes is what encodes back to the same ref.
        #[test]
        fn decode_arbitrary_strings(t in prop_oneof![any_string(), escaped_looking()]) {
            if let Some(s) = unescape(&t) {
                prop_assert_eq!(escape(&s), t.clone());
            }
            for r in [t.clone(), format!("{BOUND_REF_PREFIX}{t}")] {
                if let Some(b) = bound_ref_from_marker(&r) {
                    prop_assert_eq!(bound_marker_ref(&b), Some(r.clone()));
                }
            }
            for r in [t.clone(), format!("ocitree/image/{t}"), format!("ocitree/encapsulated/{t}")] {
                if let Some(name) = image_name_from_ref(&r) {
                    prop_assert_eq!(image_ref(&name), r.clone());
                }
                if let Some(name) = image_name_from_encapsulated_ref(&r) {
                    prop_assert_eq!(encapsulated_ref(&name), r.clone());
                }
            }
            for r in [t.clone(), format!("{BLOB_REF_PREFIX}{t}"), format!("{DIFFID_REF_PREFIX}{t}")] {
                if let Some(d) = digest_from_layer_ref(&r) {
                    prop_assert!(r == blob_ref(&d) || r == diffid_ref(&d), "{} {}", r, d);
                }
            }
        }

        #[test]
        fn digest_refs_roundtrip(
            alg in any_string().prop_filter("no ':' in alg", |a| !a.contains(':')),
            enc in any_string(),
        ) {
            let d = format!("{alg}:{enc}");
            for (r, prefix) in [(blob_ref(&d), BLOB_REF_PREFIX), (diffid_ref(&d), DIFFID_REF_PREFIX)] {
                prop_assert!(ostree::validate_rev(&r).is_ok(), "{}", r);
                prop_assert!(r.starts_with(prefix));
                prop_assert_eq!(r.matches('/').count(), 3);
                prop_assert_eq!(digest_from_layer_ref(&r), Some(d.clone()));
                prop_assert_eq!(image_name_from_ref(&r), None);
            }
        }
    }
}
