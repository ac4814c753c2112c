//! Artifacts and selection: non-tar layers become files, layers picked by media type or
//! index, one directory per layer, manifests picked by artifact type. Submodules: the
//! producers' conventions (Go ORAS, Flux, Timoni, Helm) with hand-built manifests, the ORAS
//! Python client against a real registry, and hostile input.

mod conventions;
mod hostile;
mod oras;
mod roundtrip;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::util::*;

const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const JSON: &str = "application/json";
const HELM: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
const TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Writes an artifact manifest (config `{}`) with `layers` = (media type, bytes, title);
/// returns its descriptor.
fn artifact(l: &Layout, artifact_type: &str, layers: &[(&str, Vec<u8>, Option<&str>)]) -> Value {
    let layers: Vec<(&str, Vec<u8>, Value)> = layers
        .iter()
        .map(|(mt, data, title)| {
            let ann = match title {
                Some(t) => json!({"org.opencontainers.image.title": t}),
                None => json!({}),
            };
            (*mt, data.clone(), ann)
        })
        .collect();
    manifest(l, Some(artifact_type), (EMPTY, b"{}"), &layers)
}

/// Writes a manifest with config (media type, bytes) and `layers` = (media type, bytes,
/// annotations); returns its descriptor.
fn manifest(
    l: &Layout,
    artifact_type: Option<&str>,
    config: (&str, &[u8]),
    layers: &[(&str, Vec<u8>, Value)],
) -> Value {
    let (cd, cs) = l.put(config.1);
    let descs: Vec<Value> = layers
        .iter()
        .map(|(mt, data, ann)| {
            let (d, s) = l.put(data);
            let mut v = json!({"mediaType": mt, "digest": d, "size": s});
            if ann.as_object().is_some_and(|o| !o.is_empty()) {
                v["annotations"] = ann.clone();
            }
            v
        })
        .collect();
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config.0, "digest": cd, "size": cs},
        "layers": descs,
    });
    if let Some(t) = artifact_type {
        m["artifactType"] = json!(t);
    }
    let (md, ms) = l.put(&serde_json::to_vec(&m).unwrap());
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms})
}

/// `ostree checkout COMMIT` (the real CLI, as root: owners and modes applied) into a new
/// directory under `tmp`.
fn checkout(repo: &Repo, commit: &str, tmp: &Path) -> PathBuf {
    let co = tmp.join(format!("co-{commit}"));
    if !co.exists() {
        tools::ostree_checkout(&repo.path, commit, &co);
    }
    co
}

/// Exports `name` to a fresh OCI layout; returns the manifest digest written and the export
/// output.
fn export_digest(repo: &Repo, name: &str, tmp: &Path) -> (String, String) {
    let out = tmp.join(format!("export-{}", name.replace(['/', ':'], "_")));
    let r = repo.ok(&["export", name, &format!("oci:{}:x", out.display())]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    (
        index["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .to_string(),
        r.stdout,
    )
}

/// Makes `dir` hold `files` (path, bytes), parents created (0755).
fn write_files(dir: &Path, files: &[(&str, &[u8])]) {
    for (p, data) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, data).unwrap();
    }
}

/// `tar -xf BLOB -C DIR` (GNU tar: gzip and zstd by their magic), as root: owners and modes
/// as the tar says. The oracle for an extracted layer.
fn untar(blob: &[u8], dir: &Path) {
    tools::require("tar");
    std::fs::create_dir_all(dir).unwrap();
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), blob).unwrap();
    tools::run(
        std::process::Command::new("tar")
            .arg("-xf")
            .arg(f.path())
            .arg("-C")
            .arg(dir),
    );
}

fn helm_chart() -> Vec<u8> {
    compress(
        &tar_of(&[file("chart/Chart.yaml", b"name: demo\n")]),
        Comp::Gzip,
    )
}

/// An ORAS-style artifact: a titled JSON file, an untitled Helm chart (digest-named, kept
/// compressed as a file) and a tar layer (applied as a tree). The export gives back every
/// blob unchanged, so the manifest digest too.
#[test]
fn artifact_layers_become_files_and_export_unchanged() {
    let tmp = tempdir();
    let dir = tmp.path().join("art");
    let mut l = Layout::new(&dir);
    let chart = helm_chart();
    let desc = artifact(
        &l,
        "application/vnd.example.bundle",
        &[
            (JSON, b"{\"replicas\": 3}".to_vec(), Some("values.json")),
            (HELM, chart.clone(), None),
            (TAR, tar_of(&[file("docs/README", b"read me")]), None),
        ],
    );
    l.add(desc.clone(), Some("v1"), None);
    let repo = Repo::new();
    let r = repo.import(&Repo::oci(&dir, "v1"), "bundle");
    assert_eq!(r.layers(), (3, 0));
    assert_eq!(
        repo.ok(&["cat", "bundle", "/values.json"]).stdout,
        "{\"replicas\": 3}"
    );
    assert_eq!(
        repo.ok(&["cat", "bundle", "/docs/README"]).stdout,
        "read me"
    );
    let chart_name = format!(
        "/sha256-{}.tgz",
        sha256(&chart).trim_start_matches("sha256:")
    );
    let co = tmp.path().join("co");
    repo.ok(&["checkout", "bundle", co.to_str().unwrap()]);
    assert_eq!(std::fs::read(co.join(&chart_name[1..])).unwrap(), chart);
    tools::fsck(&repo.path);

    // export: every blob comes back byte for byte, so the manifest keeps its digest
    let out = tmp.path().join("out");
    repo.ok(&["export", "bundle", &format!("oci:{}:v1", out.display())]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], desc["digest"]);

    // a second import reads nothing
    assert_eq!(
        repo.import(&Repo::oci(&dir, "v1"), "again").layers(),
        (0, 3)
    );
}

/// --layer-media-type and --layer-index pick layers; a selection that matches nothing, or an
/// index past the end, is an error listing the layers, and leaves the repo unchanged.
#[test]
fn layers_are_selected_by_media_type_and_index() {
    let tmp = tempdir();
    let dir = tmp.path().join("art");
    let mut l = Layout::new(&dir);
    let desc = artifact(
        &l,
        "application/vnd.example.bundle",
        &[
            (TAR, tar_of(&[file("rootfs/bin/tool", b"#!")]), None),
            (JSON, b"{}".to_vec(), Some("a.json")),
            (JSON, b"[]".to_vec(), Some("b.json")),
        ],
    );
    l.add(desc, Some("v1"), None);
    let src = Repo::oci(&dir, "v1");
    let repo = Repo::new();
    repo.ok(&["import", &src, "json", "--layer-media-type", JSON]);
    let ls = repo.ok(&["ls", "json", "/"]).stdout;
    assert!(
        ls.contains("a.json") && ls.contains("b.json") && !ls.contains("rootfs"),
        "{ls}"
    );
    repo.ok(&["import", &src, "second", "--layer-index", "2"]);
    let ls = repo.ok(&["ls", "second", "/"]).stdout;
    assert!(ls.contains("b.json") && !ls.contains("a.json"), "{ls}");
    repo.ok(&[
        "import",
        &src,
        "tar",
        "--layer-index",
        "0",
        "--layer-media-type",
        TAR,
    ]);
    assert_eq!(repo.ok(&["cat", "tar", "/rootfs/bin/tool"]).stdout, "#!");
    // the selection shapes the tree, so an export of it would not be the original image
    let e = repo.fails(&[
        "export",
        "json",
        &format!("oci:{}", tmp.path().join("o").display()),
    ]);
    assert!(e.contains("layer selection"), "{e}");

    let snap = Snapshot::take(&repo.path);
    let e = repo.fails(&["import", &src, "bad", "--layer-index", "5"]);
    assert!(
        e.contains("3 layers") && e.contains("2: application/json"),
        "{e}"
    );
    let e = repo.fails(&["import", &src, "bad", "--layer-media-type", "text/plain"]);
    assert!(
        e.contains("no layer matches") && e.contains("\"b.json\"") && !e.contains("not found"),
        "{e}"
    );
    snap.assert_unchanged(&repo.path);
}

/// --layers per-dir: each layer alone in a directory named after its digest; a whiteout in
/// the second layer deletes nothing of the first and does not show.
#[test]
fn per_dir_puts_each_layer_in_its_own_directory() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let l1 = Layer::new(&[file("etc/a", b"one"), file("etc/b", b"bee")]);
    let l2 = Layer::new(&[whiteout("etc/a"), file("etc/c", b"sea")]);
    let (d1, d2) = (sha256(&l1.blob), sha256(&l2.blob));
    Layout::single(&dir, &[l1, l2]);
    let repo = Repo::new();
    repo.ok(&[
        "import",
        &Repo::oci(&dir, "latest"),
        "img",
        "--layers",
        "per-dir",
    ]);
    let name = |d: &str| format!("/sha256-{}", d.trim_start_matches("sha256:"));
    assert_eq!(
        repo.ok(&["cat", "img", &format!("{}/etc/a", name(&d1))])
            .stdout,
        "one"
    );
    let second = repo
        .ok(&["ls", "img", &format!("{}/etc", name(&d2))])
        .stdout;
    assert!(
        second.contains("c") && !second.contains(".wh.") && !second.contains("/etc/a\n"),
        "{second}"
    );
    let root = repo.ok(&["ls", "img", "/"]).stdout;
    assert_eq!(root.matches("/sha256-").count(), 2, "{root}");
    // merge mode, same layers: the whiteout applies
    repo.ok(&["import", &Repo::oci(&dir, "latest"), "merged"]);
    let etc = repo.ok(&["ls", "merged", "/etc"]).stdout;
    assert!(!etc.contains("/etc/a\n") && etc.contains("/etc/b"), "{etc}");
}

/// --artifact-type picks a manifest from an index; two of the same type and no other rule
/// is an error listing both and suggesting @digest.
#[test]
fn artifact_type_picks_from_an_index() {
    let tmp = tempdir();
    let dir = tmp.path().join("idx");
    let mut l = Layout::new(&dir);
    let image = l.image(&[Layer::new(&[file("bin/app", b"app")])], false);
    let sbom = artifact(
        &l,
        "application/spdx+json",
        &[(JSON, b"{\"spdx\":1}".to_vec(), Some("sbom.json"))],
    );
    let sig = artifact(
        &l,
        "application/vnd.example.signature",
        &[(JSON, b"sig".to_vec(), Some("sig.json"))],
    );
    let sig2 = artifact(
        &l,
        "application/vnd.example.signature",
        &[(JSON, b"sig2".to_vec(), Some("sig.json"))],
    );
    l.add(image, None, Some("linux/amd64"));
    l.add(sbom, None, None);
    l.add(sig.clone(), None, None);
    l.add(sig2.clone(), None, None);
    let src = format!("oci:{}", dir.display());
    let repo = Repo::new();
    repo.ok(&[
        "import",
        &src,
        "sbom",
        "--artifact-type",
        "application/spdx+json",
    ]);
    assert_eq!(
        repo.ok(&["cat", "sbom", "/sbom.json"]).stdout,
        "{\"spdx\":1}"
    );
    let e = repo.fails(&[
        "import",
        &src,
        "sig",
        "--artifact-type",
        "application/vnd.example.signature",
    ]);
    assert!(
        e.contains(sig["digest"].as_str().unwrap())
            && e.contains(sig2["digest"].as_str().unwrap())
            && e.contains("@"),
        "{e}"
    );
    let pick = format!("{src}@{}", sig2["digest"].as_str().unwrap());
    repo.ok(&[
        "import",
        &pick,
        "sig",
        "--artifact-type",
        "application/vnd.example.signature",
    ]);
    assert_eq!(repo.ok(&["cat", "sig", "/sig.json"]).stdout, "sig2");
    let e = repo.fails(&[
        "import",
        &src,
        "none",
        "--artifact-type",
        "application/nothing",
    ]);
    assert!(e.contains("artifact type"), "{e}");
}
