//! Validated content digests (`sha256:…`) and the hasher that produces them.
//!
//! A digest string from an image is never used as a path before it passed [`Digest::parse`]:
//! the algorithm and encoded parts follow the OCI image-spec grammar, and the algorithms we can
//! verify (`sha256`, `sha512`) must have the exact hex length.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use sha2::Digest as _;

use crate::error::{Error, Result};

static DIGEST_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$").expect("static regex")
});

/// A content digest `algorithm:encoded`, validated against the OCI grammar.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    text: String,
    split: usize,
}

impl Digest {
    /// Parses and validates a digest string.
    ///
    /// # Errors
    /// [`Error::InvalidDigest`] when the string does not follow the grammar, or is a `sha256` /
    /// `sha512` digest without exactly 64 / 128 lowercase hex digits.
    ///
    /// # Examples
    /// ```
    /// let d = ocitree::digest::Digest::parse(
    ///     "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap();
    /// assert_eq!(d.algorithm(), "sha256");
    /// assert!(ocitree::digest::Digest::parse("sha256:../../etc").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Digest> {
        let bad = || Error::InvalidDigest(s.to_string());
        let caps = DIGEST_RE.captures(s).ok_or_else(bad)?;
        let (alg, enc) = (&caps[1], &caps[2]);
        let hex_len = match alg {
            "sha256" => Some(64),
            "sha512" => Some(128),
            _ => None,
        };
        if let Some(n) = hex_len
            && (enc.len() != n
                || !enc
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        {
            return Err(bad());
        }
        Ok(Digest {
            text: s.to_string(),
            split: alg.len(),
        })
    }

    /// The algorithm part (`sha256`).
    pub fn algorithm(&self) -> &str {
        &self.text[..self.split]
    }

    /// The encoded part (hex for sha256).
    pub fn encoded(&self) -> &str {
        &self.text[self.split + 1..]
    }

    /// The whole digest string.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// A hasher for this digest's algorithm.
    ///
    /// # Errors
    /// [`Error::InvalidDigest`] for an algorithm ocitree cannot verify.
    pub fn hasher(&self) -> Result<Hasher> {
        match self.algorithm() {
            "sha256" => Ok(Hasher::Sha256(sha2::Sha256::new())),
            "sha512" => Ok(Hasher::Sha512(sha2::Sha512::new())),
            _ => Err(Error::InvalidDigest(format!(
                "{self} (unsupported algorithm)"
            ))),
        }
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        let mut h = Hasher::sha256();
        h.update(data);
        h.finish()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.text)
    }
}

impl std::str::FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Digest> {
        Digest::parse(s)
    }
}

/// An incremental hasher producing a [`Digest`].
#[derive(Clone, Debug)]
pub enum Hasher {
    /// SHA-256 (uses SHA-NI where the CPU has it).
    Sha256(sha2::Sha256),
    /// SHA-512.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// A fresh SHA-256 hasher.
    pub fn sha256() -> Hasher {
        Hasher::Sha256(sha2::Sha256::new())
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (alg, hex) = match self {
            Hasher::Sha256(h) => ("sha256", hex::encode(h.finalize())),
            Hasher::Sha512(h) => ("sha512", hex::encode(h.finalize())),
        };
        let text = format!("{alg}:{hex}");
        Digest {
            split: alg.len(),
            text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_paths_and_bad_hex() {
        for bad in [
            "sha256:../../etc/passwd",
            "sha256:ABC",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256",
            ":abc",
            "SHA256:aa",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85/",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        let ok = Digest::parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8")
            .unwrap();
        assert_eq!(ok.algorithm(), "multihash+base58");
    }

    #[test]
    fn hasher_matches_known_value() {
        assert_eq!(
            Digest::sha256_of(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
