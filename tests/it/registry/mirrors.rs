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

/// The small image on an origin and on one mirror, each behind a proxy with its fault, and a
/// registries.conf naming the mirror for the origin.
struct Mirrored {
    _registries: (Registry, Registry),
    at_origin: Proxy,
    at_mirror: Proxy,
    _tmp: tempfile::TempDir,
    conf: String,
    /// `test/small:latest` on the origin.
    reference: String,
}

impl Mirrored {
    fn start(origin_fault: Fault, mirror_fault: Fault) -> Mirrored {
        let (origin, mirror) = (registry_with_small(), registry_with_small());
        let at_origin = Proxy::start(origin.port, origin_fault);
        let at_mirror = Proxy::start(mirror.port, mirror_fault);
        let tmp = tempdir();
        let conf = write_conf(
            tmp.path(),
            &format!(
                "[[registry]]\nlocation = \"127.0.0.1:{}\"\ninsecure = true\n\
                 [[registry.mirror]]\nlocation = \"127.0.0.1:{}\"\ninsecure = true\n",
                at_origin.port, at_mirror.port
            ),
        );
        let reference = format!("{}:latest", at_origin.url("test/small"));
        Mirrored {
            _registries: (origin, mirror),
            at_origin,
            at_mirror,
            _tmp: tmp,
            conf,
            reference,
        }
    }

    /// The arguments of `ocitree import` of the reference through the conf, as `small`.
    fn import_args(&self) -> [&str; 5] {
        [
            "import",
            "--registries-conf",
            &self.conf,
            &self.reference,
            "small",
        ]
    }

    /// Imports into a new repository; asserts success, skopeo's manifest digest (through
    /// the same conf) and umoci's tree, and that no spooled blob is left.
    fn import_ok(&self) -> (Repo, Run) {
        let repo = Repo::new();
        let r = repo.ok(&self.import_args());
        assert_eq!(
            r.field("Manifest"),
            skopeo_digest(&self.conf, &self.reference)
        );
        repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
        assert!(spool_files(&repo).is_empty());
        (repo, r)
    }
}

/// A mirror that serves the manifest but none of the blobs (a mirror of manifests only, or
/// one whose blob store lost them): every blob comes from the origin, the config (one
/// streamed GET) as well as the layers (downloaded ahead), and the tree is umoci's.
#[test]
fn blobs_a_mirror_does_not_hold_come_from_the_origin() {
    let m = Mirrored::start(
        Fault::None,
        Fault::AnswerAll("GET /v2/test/small/blobs/", 404),
    );
    let (_, r) = m.import_ok();
    assert_eq!(r.layers(), (3, 0));
    // the mirror served the manifest; the origin only the blobs it was asked for
    let (mirrored, origins) = (m.at_mirror.requests(), m.at_origin.requests());
    assert!(
        mirrored.contains("GET /v2/test/small/manifests/latest "),
        "{mirrored}"
    );
    assert!(!origins.contains("/manifests/"), "{origins}");
    for (layer, _) in small_layers() {
        assert_eq!(m.at_mirror.blob_requests(&layer).len(), 1, "{mirrored}");
        assert_eq!(m.at_origin.blob_requests(&layer).len(), 1, "{origins}");
    }
}

/// A mirror that goes down in the middle of the big layer: the origin resumes the blob from
/// where the mirror stopped (a `Range` request), and the tree is umoci's.
#[test]
fn a_mirror_down_mid_blob_is_resumed_from_the_origin() {
    let (big, size, _) = big_layer();
    let m = Mirrored::start(Fault::None, Fault::CutThenDown(1 << 20));
    m.import_ok();
    let origins = m.at_origin.blob_requests(&big);
    assert_eq!(origins.len(), 1, "{origins:?}");
    let from = resumed_from(&origins[0]);
    assert!(from.is_some_and(|f| f > 0 && f < size), "{origins:?}");
}

/// When no place holds a blob, the error names the blob and what each place answered, and
/// nothing is committed.
#[test]
fn a_blob_no_place_holds_names_every_place() {
    let (big, _, _) = big_layer();
    let line: &'static str = Box::leak(format!("GET /v2/test/small/blobs/{big}").into_boxed_str());
    let m = Mirrored::start(Fault::AnswerAll(line, 404), Fault::AnswerAll(line, 404));
    let repo = Repo::new();
    let snap = Snapshot::take(&repo.path);
    let err = repo.fails(&m.import_args());
    assert!(err.contains(&big), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}", m.at_origin.port)),
        "{err}"
    );
    let mirror = format!("tried first: 127.0.0.1:{}", m.at_mirror.port);
    assert!(err.contains(&mirror), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// A mirror that sends a wrong byte in the big layer: the pull either falls back to the
/// origin (the import had not read the blob yet) and gives umoci's tree, or, the import
/// having read the bad bytes as they came, fails naming the mirror's digest mismatch with
/// the repository unchanged. Never a tree of the wrong bytes.
#[test]
fn a_mirror_sending_wrong_bytes_never_gives_a_wrong_tree() {
    let (big, _, _) = big_layer();
    let m = Mirrored::start(Fault::None, Fault::Flip(1 << 20));
    let repo = Repo::new();
    let snap = Snapshot::take(&repo.path);
    let r = repo.run(&m.import_args());
    if r.code == 0 {
        repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
        assert_eq!(m.at_origin.blob_requests(&big).len(), 1);
    } else {
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(&big), "{r:?}");
        assert!(r.stderr.contains("mismatch"), "{r:?}");
        let mirror = format!(
            "http://127.0.0.1:{}/v2/test/small/blobs/{big}",
            m.at_mirror.port
        );
        assert!(r.stderr.contains(&mirror), "{r:?}");
        snap.assert_unchanged(&repo.path);
    }
    eprintln!("wrong bytes from the mirror: exit {}", r.code);
}
