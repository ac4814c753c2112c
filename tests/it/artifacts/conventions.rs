//! Hand-built artifacts the way Go ORAS, Flux, Timoni and Helm push them, each imported and
//! compared file by file with what that tool's pull gives (built here from the blobs: files
//! at their titles, tarballs extracted), then exported back to the same manifest digest.

use serde_json::json;

use super::*;

const ORAS_FILE: &str = "application/vnd.oci.image.layer.v1.tar";
const ORAS_DIR: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const FLUX: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const TIMONI: &str = "application/vnd.timoni.content.v1.tar+gzip";
const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
const HELM_PROV: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";

fn title(t: &str) -> Value {
    json!({"org.opencontainers.image.title": t})
}

/// Imports `desc` (tagged v1 in `dir`) as `name`; returns the checkout.
fn import_tagged(repo: &Repo, l: &mut Layout, desc: Value, name: &str, extra: &[&str]) -> PathBuf {
    l.add(desc, Some("v1"), None);
    let src = Repo::oci(&l.dir, "v1");
    let mut args = vec!["import", &src, name];
    args.extend_from_slice(extra);
    let commit = repo.ok(&args).commit();
    checkout(repo, &commit, repo.path.parent().unwrap())
}

/// `oras push --artifact-type T reg/x a.bin docs/guide/intro.md bundle.tar.gz dir/` (Go ORAS):
/// empty config, raw files under the tar media type titled by their paths, a tarball pushed
/// as a file, and a directory as tar+gzip with the unpack annotation. `oras pull` writes the
/// files at their titles, keeps the tarball as it is and extracts the directory.
#[test]
fn go_oras_files_folders_and_directories() {
    let tmp = tempdir();
    let mut l = Layout::new(&tmp.path().join("art"));
    // raw bytes that would be a terminal escape if echoed
    let binary: Vec<u8> = (0..3000u32).map(|i| (i * 7 % 256) as u8).collect();
    let tarball = compress(
        &tar_of(&[file("inner/x", b"not for extraction")]),
        Comp::Gzip,
    );
    let dir_plain = tar_of(&[
        dir("dir"),
        file("dir/x.txt", b"ex"),
        dir("dir/sub"),
        file_mode("dir/sub/run.sh", b"#!/bin/sh\n", 0o755, 0, 0),
    ]);
    let dir_tar = compress(&dir_plain, Comp::Gzip);
    let desc = manifest(
        &l,
        Some("application/vnd.example.bundle"),
        (EMPTY, b"{}"),
        &[
            (ORAS_FILE, binary.clone(), title("a.bin")),
            (
                ORAS_FILE,
                b"# Intro\n".to_vec(),
                title("docs/guide/intro.md"),
            ),
            (ORAS_FILE, tarball.clone(), title("bundle.tar.gz")),
            (
                ORAS_DIR,
                dir_tar.clone(),
                json!({"org.opencontainers.image.title": "dir",
                       "io.deis.oras.content.unpack": "true",
                       "io.deis.oras.content.digest": sha256(&dir_plain)}),
            ),
        ],
    );
    let repo = Repo::new();
    let co = import_tagged(&repo, &mut l, desc.clone(), "bundle", &[]);
    let oracle = tmp.path().join("oracle");
    write_files(
        &oracle,
        &[
            ("a.bin", &binary),
            ("docs/guide/intro.md", b"# Intro\n"),
            ("bundle.tar.gz", &tarball),
        ],
    );
    untar(&dir_tar, &oracle);
    tree::assert_same(&co, &oracle);
    tools::fsck(&repo.path);

    let (digest, out) = export_digest(&repo, "bundle", tmp.path());
    assert_eq!(digest, desc["digest"].as_str().unwrap(), "{out}");
    assert!(out.contains("manifest digest unchanged"), "{out}");
}

/// Flux: `flux push artifact` writes one tar+gzip layer of its own media type; `flux pull
/// artifact` (and the source-controller's default `operation: extract`) extracts it.
/// `--copy TYPE=NAME` keeps it as a file instead (`operation: copy`).
#[test]
fn flux_content_is_extracted_or_copied() {
    let tmp = tempdir();
    let mut l = Layout::new(&tmp.path().join("flux"));
    let content = compress(
        &tar_of(&[
            file("kustomization.yaml", b"resources: [deploy]\n"),
            dir("deploy"),
            file("deploy/app.yaml", b"kind: Deployment\n"),
        ]),
        Comp::Gzip,
    );
    let desc = manifest(
        &l,
        None,
        ("application/vnd.cncf.flux.config.v1+json", b"{}"),
        &[(FLUX, content.clone(), json!({}))],
    );
    let repo = Repo::new();
    let co = import_tagged(&repo, &mut l, desc.clone(), "flux", &[]);
    let oracle = tmp.path().join("oracle");
    untar(&content, &oracle);
    tree::assert_same(&co, &oracle);
    let (digest, out) = export_digest(&repo, "flux", tmp.path());
    assert_eq!(digest, desc["digest"].as_str().unwrap(), "{out}");

    // operation: copy, named
    let src = Repo::oci(&tmp.path().join("flux"), "v1");
    let r = repo.ok(&[
        "import",
        &src,
        "copied",
        "--copy",
        &format!("{FLUX}=src/app.tgz"),
    ]);
    assert_eq!(r.layers(), (0, 1), "the blob is held: {r:?}");
    let co = checkout(&repo, &r.commit(), tmp.path());
    let oracle = tmp.path().join("oracle-copy");
    write_files(&oracle, &[("src/app.tgz", &content)]);
    tree::assert_same(&co, &oracle);
    // the same blob, held as a file: the export still gives the original
    let (digest, _) = export_digest(&repo, "copied", tmp.path());
    assert_eq!(digest, desc["digest"].as_str().unwrap());
    // and again as a tree, from the blob the repository holds
    let again = repo.ok(&["import", &src, "flux2"]);
    assert_eq!(again.layers(), (0, 1), "{again:?}");
    tree::assert_same(
        &checkout(&repo, &again.commit(), tmp.path()),
        &tmp.path().join("oracle"),
    );
    tools::fsck(&repo.path);
}

/// Timoni: a module is pushed as two content layers (`cue.mod/` and the rest); `timoni mod
/// pull` extracts both into one directory.
#[test]
fn timoni_layers_merge_into_one_tree() {
    let tmp = tempdir();
    let mut l = Layout::new(&tmp.path().join("timoni"));
    let vendor = compress(
        &tar_of(&[
            dir("cue.mod"),
            file("cue.mod/module.cue", b"module: \"timoni.sh/demo\"\n"),
            dir("cue.mod/gen"),
            file("cue.mod/gen/k8s.cue", b"package k8s\n"),
        ]),
        Comp::Gzip,
    );
    let module = compress(
        &tar_of(&[
            file("timoni.cue", b"package main\n"),
            dir("templates"),
            file("templates/config.cue", b"#Config: {}\n"),
        ]),
        Comp::Gzip,
    );
    let desc = manifest(
        &l,
        None,
        ("application/vnd.timoni.config.v1+json", b"{}"),
        &[
            (
                TIMONI,
                vendor.clone(),
                json!({"sh.timoni.content.type": "module/vendor"}),
            ),
            (
                TIMONI,
                module.clone(),
                json!({"sh.timoni.content.type": "module"}),
            ),
        ],
    );
    let repo = Repo::new();
    let co = import_tagged(&repo, &mut l, desc.clone(), "timoni", &[]);
    let oracle = tmp.path().join("oracle");
    untar(&vendor, &oracle);
    untar(&module, &oracle);
    tree::assert_same(&co, &oracle);
    let (digest, _) = export_digest(&repo, "timoni", tmp.path());
    assert_eq!(digest, desc["digest"].as_str().unwrap());
}

/// Helm: `helm pull oci://…` writes the chart as `NAME-VERSION.tgz` (from the config) and,
/// with `--prov`, the provenance beside it. `--extract` gives the chart's tree instead.
#[test]
fn helm_chart_is_a_named_tgz() {
    let tmp = tempdir();
    let mut l = Layout::new(&tmp.path().join("helm"));
    let chart = compress(
        &tar_of(&[
            file("demo/Chart.yaml", b"name: demo\nversion: 1.2.3\n"),
            file("demo/values.yaml", b"replicas: 1\n"),
        ]),
        Comp::Gzip,
    );
    let prov = b"-----BEGIN PGP SIGNED MESSAGE-----\n...\n".to_vec();
    let desc = manifest(
        &l,
        None,
        (
            HELM_CONFIG,
            br#"{"name":"demo","version":"1.2.3","apiVersion":"v2"}"#,
        ),
        &[
            (HELM, chart.clone(), json!({})),
            (HELM_PROV, prov.clone(), json!({})),
        ],
    );
    let repo = Repo::new();
    let co = import_tagged(&repo, &mut l, desc.clone(), "chart", &[]);
    let oracle = tmp.path().join("oracle");
    write_files(
        &oracle,
        &[("demo-1.2.3.tgz", &chart), ("demo-1.2.3.tgz.prov", &prov)],
    );
    tree::assert_same(&co, &oracle);
    let (digest, _) = export_digest(&repo, "chart", tmp.path());
    assert_eq!(digest, desc["digest"].as_str().unwrap());

    // --extract: the chart's files (the provenance stays a file)
    let src = Repo::oci(&tmp.path().join("helm"), "v1");
    let r = repo.ok(&["import", &src, "tree", "--extract", HELM]);
    let co = checkout(&repo, &r.commit(), tmp.path());
    let oracle = tmp.path().join("oracle-tree");
    untar(&chart, &oracle);
    write_files(&oracle, &[("demo-1.2.3.tgz.prov", &prov)]);
    tree::assert_same(&co, &oracle);
    let (digest, _) = export_digest(&repo, "tree", tmp.path());
    assert_eq!(digest, desc["digest"].as_str().unwrap());
}

/// An untitled layer under the tar media type: extracted when it is a tar, a digest-named
/// file when its bytes are none (what `oras push` of a raw blob without a title gives).
#[test]
fn untitled_tar_typed_layers_are_sniffed() {
    let tmp = tempdir();
    let mut l = Layout::new(&tmp.path().join("art"));
    let raw = b"just text, not a tar".repeat(40);
    let tar = tar_of(&[file("etc/conf", b"k=v\n")]);
    let desc = manifest(
        &l,
        Some("application/vnd.example"),
        (EMPTY, b"{}"),
        &[
            (ORAS_FILE, raw.clone(), json!({})),
            (ORAS_FILE, tar.clone(), json!({})),
        ],
    );
    let repo = Repo::new();
    let co = import_tagged(&repo, &mut l, desc.clone(), "sniffed", &[]);
    let oracle = tmp.path().join("oracle");
    let name = format!("sha256-{}.tar", sha256(&raw).trim_start_matches("sha256:"));
    write_files(&oracle, &[(name.as_str(), &raw)]);
    untar(&tar, &oracle);
    tree::assert_same(&co, &oracle);
    let (digest, _) = export_digest(&repo, "sniffed", tmp.path());
    assert_eq!(digest, desc["digest"].as_str().unwrap());
}
