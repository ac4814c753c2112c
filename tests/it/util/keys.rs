//! Signing keys for the tests, made by the real tools: a GnuPG home with a key (gpg), an
//! ed25519 key pair (OpenSSL).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

use super::tools;

/// A GnuPG home with one signing key (no passphrase); returns (homedir, key id, public key file).
pub fn gpg_key(tmp: &Path) -> (PathBuf, String, PathBuf) {
    tools::require("gpg");
    let home = tmp.join("gnupg");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let gpg = |args: &[&str]| {
        tools::run(
            Command::new("gpg")
                .arg("--homedir")
                .arg(&home)
                .args(["--batch", "--yes"])
                .args(args),
        )
    };
    gpg(&[
        "--passphrase",
        "",
        "--quick-gen-key",
        "ocitree test <test@example.invalid>",
        "ed25519",
        "sign",
        "never",
    ]);
    let listing = String::from_utf8(gpg(&["--with-colons", "--list-keys"]).stdout).unwrap();
    let fpr = listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|l| l.split(':').find(|f| !f.is_empty()))
        .unwrap()
        .to_string();
    let public = tmp.join("public.asc");
    gpg(&[
        "--armor",
        "--output",
        public.to_str().unwrap(),
        "--export",
        &fpr,
    ]);
    (home, fpr, public)
}

/// An ed25519 key made by OpenSSL: (secret key file as `ostree sign --keys-file` reads it,
/// PEM public key for OpenSSL).
pub fn ed25519_key(tmp: &Path) -> (PathBuf, PathBuf) {
    tools::require("openssl");
    std::fs::create_dir_all(tmp).unwrap();
    let pem = tmp.join("ed25519.pem");
    tools::run(
        Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&pem),
    );
    let der = tools::run(
        Command::new("openssl")
            .args(["pkey", "-outform", "DER", "-in"])
            .arg(&pem),
    )
    .stdout;
    let pub_pem = tmp.join("ed25519.pub.pem");
    tools::run(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&pub_pem),
    );
    let pub_der = tools::run(
        Command::new("openssl")
            .args(["pkey", "-pubin", "-outform", "DER", "-in"])
            .arg(&pub_pem),
    )
    .stdout;
    // DER ends with the 32-byte seed (private) or the 32-byte key (public).
    let secret = [&der[der.len() - 32..], &pub_der[pub_der.len() - 32..]].concat();
    let keys = tmp.join("ed25519.keys");
    std::fs::write(
        &keys,
        base64::engine::general_purpose::STANDARD.encode(secret) + "\n",
    )
    .unwrap();
    (keys, pub_pem)
}
