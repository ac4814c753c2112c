//! Registries behind TLS (issue 12): a private CA trusted through `--cert-dir` or a certs.d
//! directory (`$OCITREE_CERTS_D` stands for /etc/containers/certs.d), client certificates, and
//! `--tls-verify=false` speaking HTTPS without verification.

use std::path::Path;

use crate::util::registry::{Registry, TlsMode};
use crate::util::*;

/// Runs ocitree on `repo` with the certs.d base `certs_d` (an empty directory stands for a
/// machine without /etc/containers/certs.d entries).
fn run(repo: &Repo, certs_d: &Path, args: &[&str]) -> Run {
    output(
        repo.cmd()
            .args(args)
            .env("OCITREE_CERTS_D", certs_d)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    )
}

fn with_small(tls: TlsMode) -> Registry {
    let reg = Registry::with_tls(tls);
    reg.skopeo_push(&wild_images().join("small"), "latest", "test/small", None);
    reg
}

/// The manifest digest skopeo reads for `image` on `reg`, trusting `cert_dir`.
fn skopeo_digest(reg: &Registry, cert_dir: &Path, image: &str) -> String {
    let out = tools::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--format", "{{.Digest}}", "--cert-dir"])
            .arg(cert_dir)
            .arg(reg.url(image)),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn private_ca_is_trusted_through_cert_dir_and_certs_d() {
    let reg = with_small(TlsMode::PrivateCa { clients: false });
    let repo = Repo::new();
    let empty = repo.tmp.path().join("no-certs.d");
    std::fs::create_dir_all(&empty).unwrap();
    let src = format!("{}:latest", reg.url("test/small"));

    // without the CA: a certificate error saying where the CA goes, not retried, repo unchanged
    let snap = repo.snapshot();
    let r = run(&repo, &empty, &["import", &src, "small"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("certificate is not trusted"), "{r:?}");
    assert!(r.stderr.contains("--cert-dir"), "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("ca.crt in {}", empty.join(reg.host()).display())),
        "{r:?}"
    );
    assert!(r.stderr.contains("after 1 attempt(s)"), "{r:?}");
    snap.assert_unchanged(&repo.path);

    // --cert-dir with the CA: the pull gives umoci's tree
    let certs = reg.cert_dir("certs", true, false);
    let r = run(
        &repo,
        &empty,
        &[
            "import",
            "--cert-dir",
            certs.to_str().unwrap(),
            &src,
            "small",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");

    // certs.d/HOST:PORT/ca.crt
    let base = repo.tmp.path().join("certs.d");
    let host_dir = base.join(reg.host());
    std::fs::create_dir_all(&host_dir).unwrap();
    std::fs::copy(certs.join("ca.crt"), host_dir.join("ca.crt")).unwrap();
    let r = run(&repo, &base, &["check", &src, "small"]);
    assert_eq!(r.code, 0, "{r:?}");

    // push: refused without the CA (nothing written), read back by skopeo with it
    let dest = format!("{}:v1", reg.url("pushed/small"));
    let r = run(&repo, &empty, &["export", "small", &dest]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("certificate is not trusted"), "{r:?}");
    assert!(
        !reg.tmp
            .path()
            .join("data/docker/registry/v2/repositories/pushed")
            .exists()
    );
    let r = run(&repo, &base, &["export", "small", &dest]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        skopeo_digest(&reg, &certs, "pushed/small:v1"),
        r.field("Pushed")
    );
    tools::fsck(&repo.path);
}

#[test]
fn client_certificate_is_presented_when_required() {
    let reg = with_small(TlsMode::PrivateCa { clients: true });
    let repo = Repo::new();
    let empty = repo.tmp.path().join("no-certs.d");
    std::fs::create_dir_all(&empty).unwrap();
    let src = format!("{}:latest", reg.url("test/small"));

    // the CA alone: the registry refuses the handshake; the message points at the client pair
    let ca_only = reg.cert_dir("ca-only", true, false);
    let snap = repo.snapshot();
    let r = run(
        &repo,
        &empty,
        &[
            "import",
            "--cert-dir",
            ca_only.to_str().unwrap(),
            &src,
            "small",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("client certificate"), "{r:?}");
    assert!(r.stderr.contains("NAME.cert and NAME.key"), "{r:?}");
    snap.assert_unchanged(&repo.path);

    // a .cert without its .key: a clear setup error
    let half = reg.cert_dir("half", true, true);
    std::fs::remove_file(half.join("client.key")).unwrap();
    let r = run(
        &repo,
        &empty,
        &[
            "import",
            "--cert-dir",
            half.to_str().unwrap(),
            &src,
            "small",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("client.cert"), "{r:?}");
    assert!(r.stderr.contains("without its key"), "{r:?}");
    snap.assert_unchanged(&repo.path);

    // pairs rustls refuses (a key of another certificate; an X.509 v1 certificate, as
    // `openssl x509 -req` makes without extensions): a setup error naming the file, no panic
    let pki = reg.pki.as_ref().unwrap();
    let mismatched = reg.cert_dir("mismatched", true, true);
    std::fs::copy(&pki.server.1, mismatched.join("client.key")).unwrap();
    let v1 = reg.cert_dir("v1", true, true);
    let ca_dir = pki.ca.parent().unwrap();
    tools::run(
        std::process::Command::new("openssl")
            .args(["req", "-new", "-subj", "/CN=v1 client", "-key"])
            .arg(&pki.client.1)
            .arg("-out")
            .arg(v1.join("client.csr")),
    );
    tools::run(
        std::process::Command::new("openssl")
            .args(["x509", "-req", "-days", "2", "-CAcreateserial", "-in"])
            .arg(v1.join("client.csr"))
            .arg("-CA")
            .arg(&pki.ca)
            .arg("-CAkey")
            .arg(ca_dir.join("ca.key"))
            .arg("-out")
            .arg(v1.join("client.cert")),
    );
    std::fs::remove_file(v1.join("client.csr")).unwrap();
    for dir in [&mismatched, &v1] {
        let r = run(
            &repo,
            &empty,
            &["import", "--cert-dir", dir.to_str().unwrap(), &src, "small"],
        );
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.stderr.contains("client.cert")
                && r.stderr
                    .contains("client certificate and its key cannot be used"),
            "{r:?}"
        );
        snap.assert_unchanged(&repo.path);
    }

    // the pair, from certs.d: pull and push work
    let base = repo.tmp.path().join("certs.d");
    let full = reg.cert_dir("full", true, true);
    std::fs::create_dir_all(&base).unwrap();
    std::fs::rename(&full, base.join(reg.host())).unwrap();
    let r = run(&repo, &base, &["import", &src, "small"]);
    assert_eq!(r.code, 0, "{r:?}");
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    let r = run(
        &repo,
        &base,
        &[
            "export",
            "small",
            &format!("{}:v1", reg.url("pushed/small")),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        skopeo_digest(&reg, &base.join(reg.host()), "pushed/small:v1"),
        r.field("Pushed")
    );
}

#[test]
fn tls_verify_false_speaks_https_without_verifying() {
    let reg = Registry::with_self_signed_tls();
    reg.skopeo_push(&wild_images().join("small"), "latest", "test/small", None);
    let repo = Repo::new();
    let empty = repo.tmp.path().join("no-certs.d");
    std::fs::create_dir_all(&empty).unwrap();
    let src = format!("{}:latest", reg.url("test/small"));
    let r = run(
        &repo,
        &empty,
        &["import", "--tls-verify=false", &src, "small"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    let r = run(
        &repo,
        &empty,
        &[
            "export",
            "--tls-verify=false",
            "small",
            &format!("{}:v1", reg.url("pushed/small")),
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let out = tools::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(reg.url("pushed/small:v1")),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r.field("Pushed")
    );
}

/// A registry that speaks plain HTTP, reached without --tls-verify=false: the error says so
/// and names the two ways to allow it.
#[test]
fn a_plain_http_registry_gets_a_hint() {
    let reg = Registry::start();
    let repo = Repo::new();
    let empty = repo.tmp.path().join("no-certs.d");
    std::fs::create_dir_all(&empty).unwrap();
    let r = run(
        &repo,
        &empty,
        &["check", &format!("{}:latest", reg.url("test/none"))],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("plain HTTP") && r.stderr.contains("--tls-verify=false"),
        "{}",
        r.stderr
    );
}
