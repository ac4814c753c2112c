//! The registry transport against a real `docker-registry` on 127.0.0.1: pulls of images
//! pushed by skopeo (trees equal to umoci's unpack), layer reuse, auth (htpasswd with --creds
//! and auth files), resume of cut transfers with Range, corrupted blobs rejected, and pushes
//! read back by skopeo.

use crate::util::registry::{Fault, Proxy, Registry, TokenGateway};
use crate::util::*;

// Credential helpers: credHelpers, credsStore, precedence (issue 12).
mod creds;
// TLS: private CAs, client certificates, --tls-verify=false (issue 12).
mod tls;
// Upload resumption (issue 12).
mod resume;
// registries.conf: mirrors, insecure and blocked registries (issue 12).
mod mirrors;
// Multi-platform: import --all-platforms, export --index-of (issue 12).
mod platforms;

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

/// Pulls `test/small:latest` through `proxy` into `repo` as `name`; asserts success.
fn pull_small(repo: &Repo, proxy: &Proxy, name: &str) -> Run {
    repo.ok(&[
        "import",
        "--tls-verify=false",
        &format!("{}:latest", proxy.url("test/small")),
        name,
    ])
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
fn layers_present_by_diff_id_are_not_downloaded() {
    let reg = registry_with_small();
    let tmp = tempdir();
    // the same layers, uncompressed, from a docker archive: other blob digests, same diff_ids
    let archive = tmp.path().join("small.tar");
    tools::run(
        std::process::Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!(
                "oci:{}:latest",
                wild_images().join("small").display()
            ))
            .arg(format!("docker-archive:{}:small:1", archive.display())),
    );
    let repo = Repo::new();
    repo.import(&format!("docker-archive:{}", archive.display()), "local");
    let proxy = Proxy::start(reg.port, Fault::None);
    let src = format!("{}:latest", proxy.url("test/small"));
    let r = repo.ok(&["check", "--tls-verify=false", &src, "pulled"]);
    assert!(r.field("Layers").contains("0 to fetch, 0 bytes"), "{r:?}");
    let r = repo.ok(&["import", "--tls-verify=false", &src, "pulled"]);
    assert_eq!(r.layers(), (0, 3));
    for (d, _) in small_layers() {
        assert!(proxy.blob_requests(&d).is_empty(), "layer {d} was fetched");
    }
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
    let reg = Registry::small_behind_htpasswd();
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
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn cut_transfer_resumes_with_range() {
    let reg = registry_with_small();
    let (big, size, _) = big_layer();
    let proxy = Proxy::start(reg.port, Fault::CutOnce(1 << 20));
    let repo = Repo::new();
    let r = pull_small(&repo, &proxy, "small");
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
fn a_link_cut_every_256_kib_still_completes_by_resuming() {
    let reg = registry_with_small();
    let (big, size, _) = big_layer();
    let proxy = Proxy::start(reg.port, Fault::CutEvery(256 << 10));
    let repo = Repo::new();
    let r = pull_small(&repo, &proxy, "small");
    let reqs = proxy.blob_requests(&big);
    let ranged = reqs
        .iter()
        .filter(|r| r.to_ascii_lowercase().contains("range: bytes="))
        .count();
    assert!(
        ranged as u64 >= size / (256 << 10),
        "{ranged} resumes of {size} bytes"
    );
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
}

#[test]
fn a_layer_is_imported_while_it_downloads() {
    use std::io::BufRead;
    let reg = registry_with_small();
    let (_, size, _) = big_layer();
    // the big layer's transfer stops for 5 s after 1.5 MiB
    let proxy = Proxy::start(reg.port, Fault::PauseOnce(3 << 19, 5));
    let repo = Repo::new();
    let mut child = repo
        .cmd()
        .args(["import", "--json", "--tls-verify=false"])
        .arg(format!("{}:latest", proxy.url("test/small")))
        .arg("small")
        .stdout(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let mut first_bytes = None;
    let mut last = None;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "layer-bytes" && v["index"] == 0 && first_bytes.is_none() {
            let read = v["read"].as_u64().unwrap();
            assert!(read < size, "{line}");
            first_bytes = Some(start.elapsed());
        }
        last = Some(start.elapsed());
    }
    assert!(child.wait().unwrap().success());
    let (first_bytes, last) = (first_bytes.unwrap(), last.unwrap());
    // the first MiB was imported while the rest of the blob was still held back
    assert!(last >= std::time::Duration::from_secs(5), "{last:?}");
    assert!(
        last - first_bytes >= std::time::Duration::from_secs(4),
        "first layer bytes at {first_bytes:?}, done at {last:?}"
    );
}

#[test]
fn two_pulls_of_the_same_blob_into_one_repo_at_once() {
    let reg = registry_with_small();
    // the first pull's big layer stalls half way, so the second starts while it downloads
    let proxy = Proxy::start(reg.port, Fault::PauseOnce(1 << 20, 3));
    let repo = Repo::new();
    let src = format!("{}:latest", proxy.url("test/small"));
    let spawn = |name: &str| {
        repo.cmd()
            .args(["import", "--tls-verify=false", &src, name])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn("first");
    std::thread::sleep(std::time::Duration::from_secs(1));
    let second = spawn("second");
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    assert!(spool_files(&repo).is_empty(), "{:?}", spool_files(&repo));
    tools::fsck(&repo.path);
    let a = repo.ok(&["inspect", "first"]).stdout;
    assert!(a.contains("sha256:"), "{a}");
}

#[test]
fn cut_transfer_completes_when_the_registry_ignores_range() {
    let reg = registry_with_small();
    let (big, _, _) = big_layer();
    let proxy = Proxy::start(reg.port, Fault::CutOnceNoRange(1 << 20));
    let repo = Repo::new();
    let r = pull_small(&repo, &proxy, "small");
    // asked for a range, got the whole blob again, skipped what it had
    assert!(proxy.blob_requests(&big).len() >= 2);
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    assert!(spool_files(&repo).is_empty());
}

#[test]
fn partial_blob_from_an_earlier_run_is_resumed_or_refetched() {
    let reg = registry_with_small();
    let (big, size, bytes) = big_layer();
    let repo = Repo::new();
    std::fs::create_dir_all(spool(&repo)).unwrap();
    let half = (size / 2) as usize;
    std::fs::write(partial_in(&repo, &big), &bytes[..half]).unwrap();
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
    std::fs::write(partial_in(&repo, &big), vec![0u8; half]).unwrap();
    let proxy = Proxy::start(reg.port, Fault::None);
    let r = pull_small(&repo, &proxy, "b");
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

/// Config digest and diff_ids of a layout's (single) image, read with skopeo's help.
fn config_and_diff_ids(layout: &std::path::Path, tag: &str) -> (String, Vec<String>) {
    let out = tools::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{tag}", layout.display())),
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = tools::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--config", "--raw"])
            .arg(format!("oci:{}:{tag}", layout.display())),
    );
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    (
        m["config"]["digest"].as_str().unwrap().to_string(),
        c["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_string())
            .collect(),
    )
}

#[test]
fn pushed_image_reads_back_with_skopeo_with_same_config_and_diff_ids() {
    let reg = registry_with_small();
    let repo = Repo::new();
    let small = wild_images().join("small");
    let commit = repo.import(&Repo::oci(&small, "latest"), "small").commit();
    let r = repo.ok(&[
        "export",
        "--tls-verify=false",
        "small",
        &format!("{}:v1", reg.url("pushed/small")),
    ]);
    let pushed = r.field("Pushed");
    assert!(pushed.starts_with("sha256:"), "{r:?}");
    // skopeo pulls it; the same config and diff_ids, and the same tree through umoci
    let tmp = tempdir();
    let back = tmp.path().join("back");
    tools::run(
        std::process::Command::new("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(format!("{}:v1", reg.url("pushed/small")))
            .arg(format!("oci:{}:v1", back.display())),
    );
    assert_eq!(
        config_and_diff_ids(&back, "v1"),
        config_and_diff_ids(&small, "latest")
    );
    let out = tools::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("{}:v1", reg.url("pushed/small"))),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), pushed);
    let bundle = tmp.path().join("bundle");
    let rootfs = tools::umoci_unpack(&back, "v1", &bundle);
    let ours = tmp.path().join("ours");
    tools::ostree_checkout(&repo.path, &commit, &ours);
    tree::assert_same(&ours, &rootfs);

    // again: every blob is there already; by digest too
    let r = repo.ok(&[
        "export",
        "--tls-verify=false",
        "small",
        &format!("{}@{pushed}", reg.url("pushed/small")),
    ]);
    assert!(r.field("Blobs").starts_with("0 uploaded"), "{r:?}");
    let err = repo.fails(&[
        "export",
        "--tls-verify=false",
        "small",
        &format!("{}@sha256:{}", reg.url("pushed/small"), "1".repeat(64)),
    ]);
    assert!(err.contains("digest is"), "{err}");

    // pulled from the registry, pushed to another repository: unchanged blobs are mounted
    let r = repo.ok(&[
        "import",
        "--tls-verify=false",
        &format!("{}:v1", reg.url("pushed/small")),
        "pulled",
    ]);
    assert_eq!(r.layers(), (0, 3));
    let r = repo.ok(&[
        "export",
        "--tls-verify=false",
        "pulled",
        &format!("{}:v1", reg.url("mounted/small")),
    ]);
    assert!(r.field("Blobs").contains("4 mounted"), "{r:?}");
    assert_eq!(r.field("Pushed"), pushed);
}

#[test]
fn large_blob_is_pushed_in_chunks_and_auth_applies_to_push() {
    let reg = Registry::with_htpasswd("bob", "pw");
    let tmp = tempdir();
    // 20 MiB of incompressible data, uncompressed layer: above the 16 MiB single-PUT limit
    let mut data = vec![0u8; 20 << 20];
    let mut x = 0x9e3779b97f4a7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let layer = Layer::with(tar_of(&[file("big.bin", &data)]), Comp::None, false);
    let layout = Layout::single(&tmp.path().join("img"), &[layer]);
    let repo = Repo::new();
    repo.import(&Repo::oci(&layout.dir, "latest"), "big");
    let dest = format!("{}:1", reg.url("big/img"));
    let err = repo.fails(&["export", "--tls-verify=false", "big", &dest]);
    assert!(err.contains("authentication failed"), "{err}");
    let proxy = Proxy::start(reg.port, Fault::None);
    let via_proxy = format!("{}:1", proxy.url("big/img"));
    let r = repo.ok(&[
        "export",
        "--tls-verify=false",
        "--creds",
        "bob:pw",
        "big",
        &via_proxy,
    ]);
    assert!(r.field("Blobs").starts_with("2 uploaded"), "{r:?}");
    let patches = proxy
        .requests()
        .matches("PATCH /v2/big/img/blobs/uploads/")
        .count();
    assert_eq!(patches, 2, "20 MiB in 16 MiB chunks");
    // an uncompressed layer keeps its digest: the manifest is the original
    let original = std::fs::read_to_string(layout.dir.join("index.json")).unwrap();
    assert!(original.contains(&r.field("Pushed")), "{r:?}");
    // and it pulls back whole
    let other = Repo::new();
    let r = other.ok(&[
        "import",
        "--tls-verify=false",
        "--creds",
        "bob:pw",
        &dest,
        "x",
    ]);
    assert_eq!(r.layers(), (1, 0));
    let out = other.cmd().args(["cat", "x", "/big.bin"]).output().unwrap();
    assert!(out.stdout == data, "big.bin differs");
}

#[test]
fn docker_v2s2_manifests_and_manifest_lists_pull() {
    let reg = Registry::start();
    let tmp = tempdir();
    // a two-platform index, pushed by skopeo as a docker manifest list
    let mut layout = Layout::new(&tmp.path().join("multi"));
    let docker_layer = |e| Layer::with(tar_of(&[e]), Comp::Gzip, true);
    let amd = layout.image(&[docker_layer(file("arch", b"amd64"))], true);
    let arm = layout.image(&[docker_layer(file("arch", b"arm64"))], true);
    let list = layout.nested_index(vec![
        {
            let mut d = amd.clone();
            d["platform"] = platform_json("linux/amd64");
            d
        },
        {
            let mut d = arm.clone();
            d["platform"] = platform_json("linux/arm64");
            d
        },
    ]);
    layout.add(list, Some("latest"), None);
    tools::run(
        std::process::Command::new("skopeo")
            .args([
                "copy",
                "-q",
                "--all",
                "--format",
                "v2s2",
                "--dest-tls-verify=false",
            ])
            .arg(format!("oci:{}:latest", layout.dir.display()))
            .arg(format!("{}:multi", reg.url("test/multi"))),
    );
    let raw = tools::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("{}:multi", reg.url("test/multi"))),
    );
    let raw = String::from_utf8_lossy(&raw.stdout).into_owned();
    assert!(raw.contains("manifest.list.v2+json"), "{raw}");
    let repo = Repo::new();
    let src = format!("{}:multi", reg.url("test/multi"));
    let r = repo.ok(&[
        "import",
        "--tls-verify=false",
        "--platform",
        "linux/arm64",
        &src,
        "arm",
    ]);
    assert_eq!(r.field("Manifest"), arm["digest"].as_str().unwrap());
    assert_eq!(repo.ok(&["cat", "arm", "/arch"]).stdout, "arm64");
    let r = repo.ok(&[
        "import",
        "--tls-verify=false",
        "--platform",
        "linux/amd64",
        &src,
        "amd",
    ]);
    assert_eq!(repo.ok(&["cat", "amd", "/arch"]).stdout, "amd64");
    assert_eq!(r.layers(), (1, 0));
    tools::fsck(&repo.path);
}

#[test]
fn bearer_token_flow_with_creds() {
    let reg = registry_with_small();
    let gw = TokenGateway::start(reg.port, "carol", "tok-pw");
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = format!("{}:latest", gw.url("test/small"));
    let err = repo.fails(&[
        "import",
        "--tls-verify=false",
        "--creds",
        "carol:nope",
        &src,
    ]);
    assert!(
        err.contains("authentication failed") && err.contains("/token"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
    let r = repo.ok(&[
        "import",
        "--tls-verify=false",
        "--creds",
        "carol:tok-pw",
        &src,
        "s",
    ]);
    assert_eq!(r.layers(), (3, 0));
    let token_requests: Vec<String> = gw
        .requests()
        .into_iter()
        .filter(|r| r.contains("/token?"))
        .collect();
    assert!(
        token_requests
            .iter()
            .all(|r| r.contains("scope=repository%3Atest%2Fsmall%3Apull")
                && r.contains("service=test-registry")),
        "{token_requests:?}"
    );
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
}

#[test]
fn a_silent_registry_times_out_instead_of_hanging() {
    let reg = registry_with_small();
    let proxy = Proxy::start(reg.port, Fault::Stall);
    let repo = Repo::new();
    let start = std::time::Instant::now();
    let err = repo.fails(&[
        "import",
        "--tls-verify=false",
        "--timeout",
        "1",
        &format!("{}:latest", proxy.url("test/small")),
    ]);
    let took = start.elapsed();
    assert!(
        err.contains("timeout") || err.contains("timed out"),
        "{err}"
    );
    assert!(err.contains("5 attempt(s)"), "{err}");
    // 5 attempts of 1 s plus 3.75 s of backoff
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
}

#[test]
fn tls_is_verified_by_default_and_not_retried() {
    let reg = Registry::with_self_signed_tls();
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &format!("{}:1", reg.url("test/small"))]);
    assert!(
        err.contains(&format!("https://{}/v2/", reg.host())),
        "{err}"
    );
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    assert!(err.contains("after 1 attempt(s)"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// `--json` on a pull reports the download phase too: per layer, download events that grow to
/// the blob size, next to the import's own layer-bytes events.
#[test]
fn json_progress_reports_downloads() {
    let reg = registry_with_small();
    let repo = Repo::new();
    let src = format!("{}:latest", reg.url("test/small"));
    let r = repo.ok(&["import", "--tls-verify=false", "--json", &src, "small"]);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (digest, size) in small_layers() {
        let downloads: Vec<u64> = events
            .iter()
            .filter(|e| e["event"] == "layer-download" && e["digest"] == digest.as_str())
            .map(|e| e["downloaded"].as_u64().unwrap())
            .collect();
        assert!(!downloads.is_empty(), "no download events for {digest}");
        assert!(downloads.windows(2).all(|w| w[0] < w[1]), "{downloads:?}");
        assert_eq!(*downloads.last().unwrap(), size, "{digest}");
        // at most one event per MiB, plus the last
        assert!(
            downloads.len() as u64 <= size / (1 << 20) + 2,
            "{downloads:?}"
        );
    }
    assert_eq!(events.last().unwrap()["event"], "imported");
}
