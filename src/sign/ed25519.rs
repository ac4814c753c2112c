//! libostree's ed25519 signatures, written and checked here: Debian 12's libostree is built
//! without libsodium, so `ostree sign` cannot, but the format is small and documented.
//!
//! - A signature is the 64-byte ed25519 signature of the signed bytes: the commit object's
//!   bytes (its GVariant serialisation) for a commit, the `summary` file for a summary.
//! - Signatures are kept as an `aay` under [`DETACHED_KEY`] (`ostree.sign.ed25519`): in the
//!   commit's detached metadata, or in `summary.sig` for the summary.
//! - A secret key file (what `ostree sign --keys-file` reads) holds base64 of the 64-byte
//!   secret key (32-byte seed, then the 32-byte public key), one key a line; a public key file
//!   (a remote's `verification-ed25519-file`) base64 of 32-byte public keys, one a line.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use crate::error::{Error, Result};

/// The detached metadata (and `summary.sig`) key of ed25519 signatures.
pub const DETACHED_KEY: &str = "ostree.sign.ed25519";

fn bad_key(path: &Path, reason: &str) -> Error {
    Error::Invalid {
        what: format!("ed25519 key file {}", path.display()),
        reason: reason.to_string(),
    }
}

fn lines(path: &Path) -> Result<Vec<Vec<u8>>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(format!(
        "reading ed25519 key file {}",
        path.display()
    )))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            STANDARD
                .decode(l)
                .map_err(|_| bad_key(path, "a line is not base64"))
        })
        .collect()
}

/// Reads the secret keys of a key file (base64 of 64 bytes, one a line).
///
/// # Errors
/// The file cannot be read, holds no key, or a key is not 64 bytes whose second half is the
/// public key of the first.
pub fn secret_keys(path: &Path) -> Result<Vec<SigningKey>> {
    let keys = lines(path)?
        .into_iter()
        .map(|b| {
            let bytes: [u8; 64] = b
                .try_into()
                .map_err(|_| bad_key(path, "a secret key is not 64 bytes"))?;
            SigningKey::from_keypair_bytes(&bytes)
                .map_err(|_| bad_key(path, "a secret key's public half does not match its seed"))
        })
        .collect::<Result<Vec<_>>>()?;
    if keys.is_empty() {
        return Err(bad_key(path, "no key in it"));
    }
    Ok(keys)
}

/// Parses public keys: base64 of 32 bytes each.
///
/// # Errors
/// A key is not base64 of a valid 32-byte ed25519 public key.
pub fn public_keys_from(text: &str, origin: &Path) -> Result<Vec<VerifyingKey>> {
    text.split_whitespace()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let b = STANDARD
                .decode(l)
                .map_err(|_| bad_key(origin, "a public key is not base64"))?;
            let bytes: [u8; 32] = b
                .try_into()
                .map_err(|_| bad_key(origin, "a public key is not 32 bytes"))?;
            VerifyingKey::from_bytes(&bytes)
                .map_err(|_| bad_key(origin, "not an ed25519 public key"))
        })
        .collect()
}

/// Reads a public key file (base64 of 32 bytes, one a line).
///
/// # Errors
/// As [`public_keys_from`], or the file cannot be read.
pub fn public_keys(path: &Path) -> Result<Vec<VerifyingKey>> {
    let text = std::fs::read_to_string(path).map_err(Error::io(format!(
        "reading ed25519 public keys {}",
        path.display()
    )))?;
    public_keys_from(&text, path)
}

/// The signature of `data` by `key`.
pub fn sign(key: &SigningKey, data: &[u8]) -> [u8; 64] {
    key.sign(data).to_bytes()
}

/// Whether any of `signatures` is a valid signature of `data` by any of `keys`.
pub fn verify_any(keys: &[VerifyingKey], data: &[u8], signatures: &[Vec<u8>]) -> bool {
    signatures.iter().any(|s| {
        <[u8; 64]>::try_from(s.as_slice()).is_ok_and(|b| {
            let sig = Signature::from_bytes(&b);
            keys.iter().any(|k| k.verify(data, &sig).is_ok())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_sign_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let secret = dir.path().join("secret");
        std::fs::write(
            &secret,
            format!("# a comment\n{}\n", STANDARD.encode(key.to_keypair_bytes())),
        )
        .unwrap();
        let public = dir.path().join("public");
        std::fs::write(&public, STANDARD.encode(key.verifying_key().to_bytes())).unwrap();
        let keys = secret_keys(&secret).unwrap();
        let sig = sign(&keys[0], b"commit bytes");
        let pubs = public_keys(&public).unwrap();
        assert!(verify_any(&pubs, b"commit bytes", &[sig.to_vec()]));
        assert!(!verify_any(&pubs, b"other bytes", &[sig.to_vec()]));
        assert!(!verify_any(&pubs, b"commit bytes", &[vec![0; 63]]));
    }

    #[test]
    fn bad_key_files_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        for content in [
            "".to_string(),
            "not base64!".into(),
            STANDARD.encode([1u8; 32]),
            // a seed with someone else's public half
            STANDARD.encode([[1u8; 32], [2u8; 32]].concat()),
        ] {
            std::fs::write(&p, content).unwrap();
            assert!(secret_keys(&p).is_err());
        }
    }
}
