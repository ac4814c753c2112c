//! The registry transport against a real `docker-registry` on 127.0.0.1: pulls of images
//! pushed by skopeo (trees equal to umoci's unpack), layer reuse, auth (htpasswd with --creds
//! and auth files), resume of cut transfers with Range, corrupted blobs rejected, and pushes
//! read back by skopeo.

use crate::util::registry::{Fault, Proxy, Registry};
use crate::util::*;

/// The small image's layer blobs (digest, size), base first, from its OCI layout.
fn small_layers() -> Vec<(String, u64)> {
    let layout = wild_images().join("small");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let m = index["manifests"][0]["digest"].as_str().unwrap();
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(m)).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["digest"].as_str().unwrap().to_string(),
                l["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The largest layer of the small image (the 2 MiB file): (digest, size, bytes).
fn big_layer() -> (String, u64, Vec<u8>) {
    let (d, s) = small_layers().into_iter().max_by_key(|l| l.1).unwrap();
    let bytes = std::fs::read(
        wild_images()
            .join("small/blobs/sha256")
            .join(d.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert!(s > 1_500_000, "the small image's big layer is {s} bytes");
    (d, s, bytes)
}

fn registry_with_small() -> Registry {
    let reg = Registry::start();
    reg.skopeo_push(&wild_images().join("small"), "latest", "test/small", None);
    reg
}

fn spool(repo: &Repo) -> std::path::PathBuf {
    repo.path.join("tmp/ocitree-blobs")
}

fn spool_files(repo: &Repo) -> Vec<String> {
    match std::fs::read_dir(spool(repo)) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    }
}

#[test]
fn skopeo_pushed_image_pulls_like_umoci_and_second_pull_reuses_layers() {
    let reg = registry_with_small();
    let repo = Repo::new();
    let src = format!("{}:latest", reg.url("test/small"));
    let r = repo.ok(&["import", "--tls-verify=false", &src]);
    assert_eq!(
        r.field("Image"),
        format!("{}/test/small:latest", reg.host())
    );
    assert_eq!(r.layers(), (3, 0));
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    assert!(spool_files(&repo).is_empty(), "{:?}", spool_files(&repo));

    // a second pull, by digest, through a logging proxy: no layer blob is requested
    let digest = r.field("Manifest");
    let proxy = Proxy::start(reg.port, Fault::None);
    let again = repo.ok(&[
        "import",
        "--tls-verify=false",
        &format!("{}@{digest}", proxy.url("test/small")),
        "again",
    ]);
    assert_eq!(again.layers(), (0, 3));
    assert_eq!(again.field("Manifest"), digest);
    for (d, _) in small_layers() {
        assert!(proxy.blob_requests(&d).is_empty(), "layer {d} was fetched");
    }
    tools::fsck(&repo.path);
}

#[test]
fn check_lists_layers_and_bytes_to_fetch() {
    let reg = registry_with_small();
    let repo = Repo::new();
    let src = format!("{}:latest", reg.url("test/small"));
    let total: u64 = small_layers().iter().map(|l| l.1).sum();
    let r = repo.ok(&["check", "--tls-verify=false", &src, "small"]);
    assert!(
        r.field("Layers")
            .contains(&format!("0 present, 3 to fetch, {total} bytes")),
        "{r:?}"
    );
    repo.ok(&["import", "--tls-verify=false", &src, "small"]);
    let r = repo.ok(&["check", "--tls-verify=false", &src, "small"]);
    assert_eq!(r.field("Status"), "up to date");
    assert!(r.field("Layers").contains("3 present, 0 to fetch, 0 bytes"));
}

#[test]
fn missing_image_and_bad_references_fail_cleanly() {
    let reg = registry_with_small();
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&[
        "import",
        "--tls-verify=false",
        &format!("{}:nope", reg.url("test/small")),
    ]);
    assert!(
        err.contains("not found") && err.contains("manifests/nope"),
        "{err}"
    );
    let err = repo.fails(&["import", "docker://Bad/Name"]);
    assert!(err.contains("invalid image reference"), "{err}");
    // a digest the tag does not have
    let err = repo.fails(&[
        "import",
        "--tls-verify=false",
        &format!("{}@sha256:{}", reg.url("test/small"), "0".repeat(64)),
    ]);
    assert!(err.contains("not found"), "{err}");
    snap.assert_unchanged(&repo.path);
}

#[test]
fn basic_auth_with_creds_and_auth_files() {
    let reg = Registry::with_htpasswd("alice", "s3cret");
    reg.skopeo_push(
        &wild_images().join("small"),
        "latest",
        "test/small",
        Some("alice:s3cret"),
    );
    let repo = Repo::new();
    let src = format!("{}:latest", reg.url("test/small"));
    let snap = repo.snapshot();
    let env_free = |args: &[&str]| {
        let out = repo
            .cmd()
            .args(args)
            .env_remove("REGISTRY_AUTH_FILE")
            .env("XDG_RUNTIME_DIR", repo.tmp.path().join("no-runtime"))
            .env("HOME", repo.tmp.path().join("no-home"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // no credentials, and a wrong password: exit 2, a clear message, repo unchanged
    let (code, _, err) = env_free(&["import", "--tls-verify=false", &src]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("authentication failed") && err.contains("--creds"),
        "{err}"
    );
    let (code, _, err) = env_free(&[
        "import",
        "--tls-verify=false",
        "--creds",
        "alice:wrong",
        &src,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("wrong"), "the password leaked: {err}");
    snap.assert_unchanged(&repo.path);

    let (code, out, err) = env_free(&[
        "import",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        &src,
        "a",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("3 imported"), "{out}");

    // an auth file, by --authfile, by $REGISTRY_AUTH_FILE and as ~/.docker/config.json
    let auth = serde_json::json!({"auths": {reg.host(): {"auth": base64("alice:s3cret")}}});
    let file = repo.tmp.path().join("auth.json");
    std::fs::write(&file, auth.to_string()).unwrap();
    let (code, _, err) = env_free(&[
        "check",
        "--tls-verify=false",
        "--authfile",
        file.to_str().unwrap(),
        &src,
        "b",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let out = repo
        .cmd()
        .args(["check", "--tls-verify=false", &src, "b"])
        .env("REGISTRY_AUTH_FILE", &file)
        .env("HOME", repo.tmp.path().join("no-home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let home = repo.tmp.path().join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::copy(&file, home.join(".docker/config.json")).unwrap();
    let out = repo
        .cmd()
        .args(["import", "--tls-verify=false", &src, "c"])
        .env_remove("REGISTRY_AUTH_FILE")
        .env("XDG_RUNTIME_DIR", repo.tmp.path().join("no-runtime"))
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    tools::fsck(&repo.path);
}

fn base64(s: &str) -> String {
    let out = tools::run(
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s '{s}' | base64 -w0")),
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn cut_transfer_resumes_with_range() {
    let reg = registry_with_small();
    let (big, size, _) = big_layer();
    let proxy = Proxy::start(reg.port, Fault::CutOnce(1 << 20));
    let repo = Repo::new();
    let r = repo.ok(&[
        "import",
        "--tls-verify=false",
        &format!("{}:latest", proxy.url("test/small")),
        "small",
    ]);
    assert_eq!(r.layers(), (3, 0));
    let reqs = proxy.blob_requests(&big);
    assert!(reqs.len() >= 2, "{reqs:?}");
    let resumed = reqs
        .iter()
        .find(|r| r.to_ascii_lowercase().contains("range: bytes="))
        .unwrap_or_else(|| panic!("no Range request: {reqs:?}"));
    let from: u64 = resumed
        .to_ascii_lowercase()
        .split("range: bytes=")
        .nth(1)
        .unwrap()
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(from > 0 && from < size, "{resumed}");
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    assert!(spool_files(&repo).is_empty());
}

#[test]
fn partial_blob_from_an_earlier_run_is_resumed_or_refetched() {
    let reg = registry_with_small();
    let (big, size, bytes) = big_layer();
    let repo = Repo::new();
    let partial = spool(&repo).join(format!("{}.partial", big.replace(':', "-")));
    std::fs::create_dir_all(spool(&repo)).unwrap();
    let half = (size / 2) as usize;
    std::fs::write(&partial, &bytes[..half]).unwrap();
    let proxy = Proxy::start(reg.port, Fault::None);
    let src = format!("{}:latest", proxy.url("test/small"));
    repo.ok(&["import", "--tls-verify=false", &src, "a"]);
    let reqs = proxy.blob_requests(&big);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(
        reqs[0]
            .to_ascii_lowercase()
            .contains(&format!("range: bytes={half}-")),
        "{reqs:?}"
    );
    assert!(spool_files(&repo).is_empty());

    // a kept part that is wrong: the resumed blob does not match, and is fetched again whole
    let repo = Repo::new();
    std::fs::create_dir_all(spool(&repo)).unwrap();
    std::fs::write(&partial_in(&repo, &big), vec![0u8; half]).unwrap();
    let proxy = Proxy::start(reg.port, Fault::None);
    let r = repo.ok(&[
        "import",
        "--tls-verify=false",
        &format!("{}:latest", proxy.url("test/small")),
        "b",
    ]);
    let reqs = proxy.blob_requests(&big);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(!reqs[1].to_ascii_lowercase().contains("range:"), "{reqs:?}");
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
}

fn partial_in(repo: &Repo, digest: &str) -> std::path::PathBuf {
    spool(repo).join(format!("{}.partial", digest.replace(':', "-")))
}

#[test]
fn corrupted_blob_is_rejected_and_nothing_is_committed() {
    let reg = registry_with_small();
    let (big, _, _) = big_layer();
    let proxy = Proxy::start(reg.port, Fault::Flip(1 << 20));
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = format!("{}:latest", proxy.url("test/small"));
    let err = repo.fails(&["import", "--tls-verify=false", &src, "small"]);
    assert!(
        err.contains(&big) && err.contains("digest mismatch"),
        "{err}"
    );
    assert!(err.contains("test/small"), "{err}");
    snap.assert_unchanged(&repo.path);
    // the bad bytes are not kept to be resumed from (verified blobs of other layers may be)
    let name = big.replace(':', "-");
    assert!(
        !spool_files(&repo).iter().any(|f| f.starts_with(&name)),
        "{:?}",
        spool_files(&repo)
    );
}

#[test]
fn prune_removes_leftover_partial_blobs() {
    let repo = Repo::new();
    std::fs::create_dir_all(spool(&repo)).unwrap();
    std::fs::write(
        partial_in(&repo, &format!("sha256:{}", "a".repeat(64))),
        b"junk",
    )
    .unwrap();
    repo.ok(&["prune"]);
    assert!(spool_files(&repo).is_empty());
}
