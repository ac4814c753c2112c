//! Pushes read back by skopeo (same config and diff_ids, same tree through umoci), blob
//! reuse and cross-repository mounts, chunked uploads of large blobs with auth.

use super::*;

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

/// A registry answering uploads with a `Location` relative to the request (`UUID?_state=…`,
/// which the distribution spec allows): the upload continues at
/// `/v2/REPO/blobs/uploads/UUID`, and skopeo reads the image back.
#[test]
fn relative_upload_locations_resolve_against_the_request() {
    let reg = registry_with_small();
    let proxy = Proxy::start(reg.port, Fault::RelativeUploadLocation);
    let repo = Repo::new();
    let small = wild_images().join("small");
    repo.import(&Repo::oci(&small, "latest"), "small");
    let dest = format!("{}:v1", proxy.url("relative/small"));
    let r = repo.ok(&["export", "--tls-verify=false", "small", &dest]);
    let log = proxy.requests();
    assert!(
        log.contains("PUT /v2/relative/small/blobs/uploads/")
            || log.contains("PATCH /v2/relative/small/blobs/uploads/"),
        "{log}"
    );
    let out = tools::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("{}:v1", reg.url("relative/small"))),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r.field("Pushed")
    );
}

#[test]
fn large_blob_is_pushed_in_chunks_and_auth_applies_to_push() {
    let reg = Registry::with_htpasswd("bob", "pw");
    let tmp = tempdir();
    // 20 MiB of incompressible data, uncompressed layer: above the 16 MiB single-PUT limit
    let data = super::resume::noise(20 << 20);
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
