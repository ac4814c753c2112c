//! Mirrors, insecure and blocked registries from registries.conf (issue 12): two
//! docker-registry instances on 127.0.0.1, skopeo (which reads the same file) as the
//! reference client.

use super::*;
use crate::util::registry::TlsMode;
use std::process::Command;

/// A port nothing listens on: a registry that is down.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes `text` as a registries.conf in `dir`.
fn write_conf(dir: &std::path::Path, text: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join("registries.conf");
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// The digest of the manifest skopeo reads for `reference` through registries.conf `conf`
/// (`inspect --raw`: `inspect` alone lists tags, which only the origin does).
fn skopeo_digest(conf: &str, reference: &str) -> String {
    tools::require("skopeo");
    let out = tools::run(
        Command::new("skopeo")
            .args(["--registries-conf", conf])
            .args(["inspect", "--raw"])
            .arg(reference),
    );
    sha256(&out.stdout)
}

#[test]
fn a_mirror_serves_the_image_while_the_origin_is_down() {
    let mirror = registry_with_small();
    let tmp = tempdir();
    let origin = format!("127.0.0.1:{}", dead_port());
    let conf = write_conf(
        tmp.path(),
        &format!(
            "[[registry]]\nlocation = \"{origin}/test\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"{}/test\"\ninsecure = true\n",
            mirror.host()
        ),
    );
    let reference = format!("docker://{origin}/test/small:latest");
    let repo = Repo::new();
    let r = repo.ok(&["import", "--registries-conf", &conf, &reference]);
    // named after the reference asked for, not the mirror
    assert_eq!(r.field("Image"), format!("{origin}/test/small:latest"));
    assert_eq!(r.field("Manifest"), skopeo_digest(&conf, &reference));
    let theirs = tools::run(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("{}:latest", mirror.url("test/small"))),
    );
    assert_eq!(
        r.field("Manifest"),
        String::from_utf8_lossy(&theirs.stdout).trim()
    );
    // without the file, the origin is all there is
    let err = Repo::new().fails(&[
        "import",
        "--tls-verify=false",
        "--timeout",
        "2",
        "--registries-conf",
        &tmp.path().join("none.conf").display().to_string(),
        &reference,
    ]);
    assert!(err.contains("none.conf"), "{err}");
}

#[test]
fn a_dead_first_mirror_falls_back_to_the_second_and_then_the_origin() {
    let origin = registry_with_small();
    let empty = Registry::start();
    let logged = Proxy::start(empty.port, Fault::None);
    let tmp = tempdir();
    let conf = write_conf(
        tmp.path(),
        &format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"127.0.0.1:{}\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"127.0.0.1:{}\"\ninsecure = true\n",
            origin.host(),
            dead_port(),
            logged.port
        ),
    );
    let reference = format!("{}:latest", origin.url("test/small"));
    let repo = Repo::new();
    let r = repo.ok(&["import", "--registries-conf", &conf, &reference, "small"]);
    assert_eq!(r.field("Manifest"), skopeo_digest(&conf, &reference));
    // the second mirror was asked (and did not have it) before the origin served it
    assert!(
        logged
            .requests()
            .contains("GET /v2/test/small/manifests/latest "),
        "{}",
        logged.requests()
    );
    let again = repo.ok(&["check", "--registries-conf", &conf, &reference, "small"]);
    assert_eq!(again.field("Status"), "up to date");
}

#[test]
fn by_digest_only_mirrors_serve_digest_references_only() {
    let mirror = registry_with_small();
    let origin = Registry::start(); // without the image
    let tmp = tempdir();
    let conf = write_conf(
        tmp.path(),
        &format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\nmirror-by-digest-only = true\n\
             [[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
            origin.host(),
            mirror.host()
        ),
    );
    let mirror_conf = write_conf(
        &tmp.path().join("m"),
        &format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            mirror.host()
        ),
    );
    let digest = skopeo_digest(
        &mirror_conf,
        &format!("{}:latest", mirror.url("test/small")),
    );
    let repo = Repo::new();
    let snap = Snapshot::take(&repo.path);
    let by_tag = format!("{}:latest", origin.url("test/small"));
    let err = repo.fails(&["import", "--registries-conf", &conf, &by_tag, "x"]);
    assert!(
        err.contains(&origin.host()) && err.contains("MANIFEST_UNKNOWN"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
    let by_digest = format!("{}@{digest}", origin.url("test/small"));
    let r = repo.ok(&["import", "--registries-conf", &conf, &by_digest, "x"]);
    assert_eq!(r.field("Manifest"), digest);
    assert_eq!(skopeo_digest(&conf, &by_digest), digest);
}

#[test]
fn insecure_registries_skip_verification_and_blocked_ones_are_refused() {
    let reg = Registry::with_tls(TlsMode::PrivateCa { clients: false });
    reg.skopeo_push(&wild_images().join("small"), "latest", "test/small", None);
    let tmp = tempdir();
    let reference = format!("{}:latest", reg.url("test/small"));
    let repo = Repo::new();
    let plain = write_conf(tmp.path(), "");
    let err = repo.fails(&["import", "--registries-conf", &plain, &reference, "x"]);
    assert!(err.contains("not trusted"), "{err}");
    let insecure = write_conf(
        tmp.path(),
        &format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
            reg.host()
        ),
    );
    // An explicit --tls-verify=true wins over registries.conf, as with skopeo.
    let err = repo.fails(&[
        "import",
        "--tls-verify=true",
        "--registries-conf",
        &insecure,
        &reference,
        "x",
    ]);
    assert!(err.contains("not trusted"), "{err}");
    let r = repo.ok(&["import", "--registries-conf", &insecure, &reference, "x"]);
    assert_eq!(r.field("Manifest"), skopeo_digest(&insecure, &reference));
    // pushes honour it too
    let r = repo.ok(&[
        "export",
        "--registries-conf",
        &insecure,
        "x",
        &format!("{}:copy", reg.url("test/copy")),
    ]);
    assert!(r.field("Pushed").starts_with("sha256:"), "{r:?}");
    // blocked: refused before any request, the repository untouched
    let blocked = write_conf(
        tmp.path(),
        &format!(
            "[[registry]]\nprefix = \"{}/test\"\nlocation = \"{}/test\"\nblocked = true\n",
            reg.host(),
            reg.host()
        ),
    );
    let snap = Snapshot::take(&repo.path);
    let err = repo.fails(&["import", "--registries-conf", &blocked, &reference, "y"]);
    assert!(err.contains("blocked"), "{err}");
    let err = repo.fails(&[
        "export",
        "--registries-conf",
        &blocked,
        "x",
        &format!("{}:copy", reg.url("test/copy")),
    ]);
    assert!(err.contains("blocked"), "{err}");
    snap.assert_unchanged(&repo.path);
}
