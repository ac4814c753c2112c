//! Test-only helpers for the fuzz targets: mutations of well-formed input, driven by proptest,
//! and the case count (raise it with `PROPTEST_CASES`; CI keeps the default so the suite stays
//! fast). The integration tests include this file too (tests/it/util/mod.rs).

use proptest::prelude::*;

/// A label map from `(key, value)` pairs.
pub fn labels(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The number of cases for a fuzz target: `PROPTEST_CASES` if set, else `default`.
pub fn fuzz_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One edit of a byte string; positions are taken modulo its length.
#[derive(Clone, Debug)]
pub enum Edit {
    /// XOR a byte with a non-zero mask.
    Flip(usize, u8),
    /// Overwrite a byte.
    Set(usize, u8),
    /// Cut the string at a position.
    Truncate(usize),
    /// Insert bytes at a position.
    Insert(usize, Vec<u8>),
    /// Copy `len` bytes from one position over another (splice within the input).
    Splice(usize, usize, usize),
    /// Remove `len` bytes at a position.
    Remove(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), 1..=255u8).prop_map(|(p, m)| Edit::Flip(p, m)),
        2 => (any::<usize>(), prop_oneof![Just(0u8), Just(0xff), Just(b'0'), Just(b' '), any::<u8>()])
            .prop_map(|(p, b)| Edit::Set(p, b)),
        1 => any::<usize>().prop_map(Edit::Truncate),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(p, b)| Edit::Insert(p, b)),
        1 => (any::<usize>(), any::<usize>(), 1..2048usize)
            .prop_map(|(a, b, n)| Edit::Splice(a, b, n)),
        1 => (any::<usize>(), 1..1024usize).prop_map(|(p, n)| Edit::Remove(p, n)),
    ]
}

/// Applies `edits` to `data`.
pub fn apply(data: &mut Vec<u8>, edits: &[Edit]) {
    for e in edits {
        let len = data.len();
        let at = |p: usize| if len == 0 { 0 } else { p % len };
        match e {
            Edit::Flip(p, m) if len > 0 => data[at(*p)] ^= m,
            Edit::Set(p, b) if len > 0 => data[at(*p)] = *b,
            Edit::Truncate(p) => data.truncate(at(*p)),
            Edit::Insert(p, b) => {
                let p = at(*p);
                data.splice(p..p, b.iter().copied());
            }
            Edit::Splice(a, b, n) if len > 0 => {
                let (a, b) = (at(*a), at(*b));
                let piece: Vec<u8> = data[a..(a + n).min(len)].to_vec();
                let end = (b + piece.len()).min(len);
                data.splice(b..end, piece);
            }
            Edit::Remove(p, n) if len > 0 => {
                let p = at(*p);
                data.drain(p..(p + n).min(len));
            }
            _ => {}
        }
    }
}

/// A list of `n` edits.
pub fn edits(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), n)
}

/// `seed` with one to eight edits, or (one case in eight) arbitrary bytes.
pub fn mutated(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        7 => edits(1..8).prop_map(move |edits| {
            let mut d = seed.clone();
            apply(&mut d, &edits);
            d
        }),
        1 => prop::collection::vec(any::<u8>(), 0..4096),
    ]
}
