//! Signatures on import: `--sign-by` / `--sign-ed25519` sign the image commit; an image that
//! carries an OSTree commit (`ocitree encapsulate`) is verified against a GPG keyring, ed25519
//! keys or a remote's keys, and refused — the repository unchanged — without a valid signature.

use std::path::{Path, PathBuf};

use crate::util::keys::{ed25519_key, gpg_key};
use crate::util::*;

/// An `ostree commit` in a fresh source repository, and ocitree on that repository.
fn source_commit(tmp: &Path) -> (Repo, String) {
    let tree = tmp.join("tree");
    std::fs::create_dir_all(tree.join("usr/bin")).unwrap();
    std::fs::write(tree.join("usr/bin/tool"), b"#!/bin/sh\n").unwrap();
    let repo = Repo {
        tmp: tempdir(),
        path: tmp.join("src-repo"),
    };
    tools::ostree(&repo.path, &["init", "--mode=bare-user"]);
    let commit = tools::ostree_commit(&repo.path, "os", &tree);
    (repo, commit)
}

fn encapsulate(src: &Repo, rev: &str, out: &Path) -> String {
    src.ok(&["encapsulate", rev, &format!("oci:{}:v1", out.display())]);
    Repo::oci(out, "v1")
}

#[test]
fn gpg_signed_commits_verify_against_a_keyring_or_a_remote_and_others_are_refused() {
    let tmp = tempdir();
    let (home, key, public) = gpg_key(&tmp.path().join("right"));
    let (_, _, other_public) = gpg_key(&tmp.path().join("wrong"));
    let (src, commit) = source_commit(tmp.path());
    let unsigned = encapsulate(&src, "os", &tmp.path().join("unsigned"));
    tools::ostree(
        &src.path,
        &[
            "gpg-sign",
            &format!("--gpg-homedir={}", home.display()),
            &commit,
            &key,
        ],
    );
    let signed = encapsulate(&src, "os", &tmp.path().join("signed"));

    let repo = Repo::new();
    // binary keyrings as well as ASCII-armored ones (libostree itself reads only binary)
    let bin = tmp.path().join("pub.gpg");
    tools::run(
        std::process::Command::new("gpg")
            .arg("--output")
            .arg(&bin)
            .arg("--dearmor")
            .arg(&public),
    );
    let r = repo.ok(&[
        "import",
        "--verify-gpg-keyring",
        bin.to_str().unwrap(),
        &signed,
        "bin",
    ]);
    assert!(r.field("Verified").contains(&key), "{r:?}");
    let keyring = public.to_str().unwrap();
    let r = repo.ok(&["import", "--verify-gpg-keyring", keyring, &signed, "os"]);
    assert_eq!(r.commit(), commit);
    assert!(r.field("Verified").contains(&key), "{r:?}");
    tools::fsck(&repo.path);
    let inspect: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "os"]).stdout).unwrap();
    assert_eq!(inspect["signatures"][0]["kind"], "gpg");
    let by = inspect["signatures"][0]["by"].as_str().unwrap();
    assert!(
        by.starts_with(&key) && !by.contains("[unknown name]"),
        "{inspect}"
    );

    let fresh = Repo::new();
    let snap = fresh.snapshot();
    let wrong = other_public.to_str().unwrap();
    for (src, keyring) in [(&signed, wrong), (&unsigned, keyring)] {
        let err = fresh.fails(&["import", "--verify-gpg-keyring", keyring, src, "os"]);
        assert!(err.contains("signature verification failed"), "{err}");
        assert!(err.contains(&commit), "names the commit: {err}");
        snap.assert_unchanged(&fresh.path);
    }
    // a plain image has no commit to verify: refused too
    let plain = tmp.path().join("plain");
    Layout::single(&plain, &[Layer::new(&[file("a", b"a")])]);
    let err = fresh.fails(&[
        "import",
        "--verify-gpg-keyring",
        keyring,
        &Repo::oci(&plain, "latest"),
        "p",
    ]);
    assert!(err.contains("no OSTree commit"), "{err}");
    snap.assert_unchanged(&fresh.path);

    // the keys of an OSTree remote of the repository
    tools::ostree(
        &fresh.path,
        &[
            "remote",
            "add",
            &format!("--gpg-import={}", public.display()),
            "origin",
            "http://127.0.0.1:9/",
        ],
    );
    let r = fresh.ok(&["import", "--verify-remote", "origin", &signed, "os"]);
    assert_eq!(r.commit(), commit);
    // the signature came along: the commit verifies with ostree's own check
    let out = tools::ostree(
        &fresh.path,
        &["show", "--gpg-verify-remote=origin", &commit],
    );
    assert!(out.contains("Good signature"), "{out}");
}

#[test]
fn ed25519_signed_on_import_verifies_after_export_and_import() {
    let tmp = tempdir();
    let (keys, public_pem) = ed25519_key(&tmp.path().join("k1"));
    let (_, other_pem) = ed25519_key(&tmp.path().join("k2"));
    let public = public_b64(&public_pem);
    let other = public_b64(&other_pem);
    let img = tmp.path().join("img");
    Layout::single(&img, &[Layer::new(&[file("etc/a", b"a")])]);
    let a = Repo::new();
    let signed = a.ok(&[
        "import",
        "--sign-ed25519",
        keys.to_str().unwrap(),
        &Repo::oci(&img, "latest"),
        "app",
    ]);
    let commit = signed.commit();
    let out: PathBuf = tmp.path().join("out");
    a.ok(&["encapsulate", &commit, &format!("oci:{}:v1", out.display())]);
    // encapsulate signs too: a second key's signature joins the first one
    let (keys2, public2_pem) = ed25519_key(&tmp.path().join("k3"));
    let out2: PathBuf = tmp.path().join("out2");
    a.ok(&[
        "encapsulate",
        "--sign-ed25519",
        keys2.to_str().unwrap(),
        &commit,
        &format!("oci:{}:v1", out2.display()),
    ]);
    let twice = Repo::new();
    let r = twice.ok(&[
        "import",
        "--verify-ed25519",
        &public_b64(&public2_pem),
        &Repo::oci(&out2, "v1"),
        "app",
    ]);
    assert_eq!(r.commit(), commit);
    let inspect: serde_json::Value =
        serde_json::from_str(&twice.ok(&["inspect", "app"]).stdout).unwrap();
    assert_eq!(inspect["signatures"][0]["by"], "2 signature(s)");
    let b = Repo::new();
    let snap = b.snapshot();
    let err = b.fails(&[
        "import",
        "--verify-ed25519",
        &other,
        &Repo::oci(&out, "v1"),
        "app",
    ]);
    assert!(err.contains("signature verification failed"), "{err}");
    snap.assert_unchanged(&b.path);
    let r = b.ok(&[
        "import",
        "--verify-ed25519",
        &public,
        &Repo::oci(&out, "v1"),
        "app",
    ]);
    assert_eq!(r.commit(), commit, "the identical, signed commit");
    assert_eq!(r.field("Verified"), format!("ed25519 {public}"));
    let inspect: serde_json::Value =
        serde_json::from_str(&b.ok(&["inspect", "app"]).stdout).unwrap();
    assert_eq!(
        inspect["signatures"],
        serde_json::json!([{"kind": "ed25519", "by": "1 signature(s)"}])
    );
    // a public key file works the same
    let file = tmp.path().join("pub.keys");
    std::fs::write(&file, format!("{public}\n")).unwrap();
    b.ok(&[
        "import",
        "--verify-ed25519",
        file.to_str().unwrap(),
        &Repo::oci(&out, "v1"),
        "app2",
    ]);
}

/// The base64 of the 32-byte public key in an OpenSSL PEM public key file.
fn public_b64(pem: &Path) -> String {
    use base64::Engine as _;
    let der = tools::run(
        std::process::Command::new("openssl")
            .args(["pkey", "-pubin", "-outform", "DER", "-in"])
            .arg(pem),
    )
    .stdout;
    base64::engine::general_purpose::STANDARD.encode(&der[der.len() - 32..])
}
