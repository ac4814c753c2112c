//! The registry transport against a real `docker-registry` on 127.0.0.1: pulls of images
//! pushed by skopeo (trees equal to umoci's unpack), layer reuse, manifest lists, timeouts,
//! progress; the other topics in `registry/` (auth, faulty pulls, pushes, TLS, credential
//! helpers, mirrors, multi-platform, upload resumption).

use crate::util::registry::{Fault, Proxy, Registry, TokenGateway};
use crate::util::*;

// Credential helpers: credHelpers, credsStore, precedence (issue 12).
mod creds;
// TLS: private CAs, client certificates, --tls-verify=false (issue 12).
mod tls;
// Upload resumption (issue 12).
mod resume;
// Authentication: basic and bearer.
mod auth;
// Pulls over faulty links.
mod pull_faults;
// Pushes read back by skopeo; chunked uploads.
mod push;
// registries.conf: mirrors, insecure and blocked registries (issue 12).
mod mirrors;
// Multi-platform: import --all-platforms, export --index-of (issue 12).
mod platforms;
// HTTP proxies from the environment.
mod proxies;
// Blob downloads redirected to a storage host.
mod redirects;

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

/// The first byte a request asked for with `Range: bytes=N-`, if it has that header.
fn resumed_from(request: &str) -> Option<u64> {
    request
        .to_ascii_lowercase()
        .split("range: bytes=")
        .nth(1)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

fn registry_with_small() -> Registry {
    let reg = Registry::start();
    reg.skopeo_push(&wild_images().join("small"), "latest", "test/small", None);
    reg
}

/// `import --tls-verify=false --creds CREDS` of `test/small:latest` from `gw` into `repo`,
/// which must fail (exit 2); returns its standard error.
fn gateway_import_fails(repo: &Repo, gw: &TokenGateway, creds: &str) -> String {
    let src = format!("{}:latest", gw.url("test/small"));
    repo.fails(&["import", "--tls-verify=false", "--creds", creds, &src])
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
