//! `ocitree encapsulate --format ostree-native` (issue 10, export): commits made by the real
//! `ostree commit` → an ostree native container that the real ostree-ext (built by
//! `bench/ostree-ext-cli/build.sh`) reads back as the **identical** commit, signatures kept,
//! single-layer and chunked; chunks re-used across versions; `ocitree import` gives the same
//! commit; the labels are those ostree-ext writes for the same commit.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::ostree_native::ostree_ext_cli;
use crate::util::*;

/// A source repository holding bootable commits `os/1`, `os/2`, … of a small OS tree.
struct Os {
    tmp: tempfile::TempDir,
    repo: PathBuf,
}

fn write(root: &Path, rel: &str, data: &[u8], mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn setfattr(path: &Path, name: &str, value: &str) {
    tools::require("setfattr");
    tools::run(
        Command::new("setfattr")
            .args(["-h", "-n", name, "-v", value])
            .arg(path),
    );
}

impl Os {
    fn new() -> Os {
        let tmp = tempdir();
        let repo = tmp.path().join("src");
        tools::ostree(&repo, &["init", "--mode=bare-user"]);
        Os { tmp, repo }
    }

    /// The tree of version `v`: every kind of entry, spread over several directories so that
    /// chunking has something to split; version 2 changes `usr/bin/tool` only.
    fn tree(&self, v: u32) -> PathBuf {
        let t = self.tmp.path().join(format!("tree{v}"));
        if t.exists() {
            return t;
        }
        let tool = format!("#!/bin/sh\necho tool {v}\n");
        write(&t, "usr/bin/tool", tool.as_bytes(), 0o755);
        std::fs::hard_link(t.join("usr/bin/tool"), t.join("usr/bin/tool-hardlink")).unwrap();
        write(&t, "usr/bin/su", b"su\n", 0o4755);
        write(&t, "usr/bin/empty", b"", 0o644);
        write(&t, "usr/lib/libx.so.1", &vec![b'l'; 50_000], 0o644);
        std::os::unix::fs::symlink("libx.so.1", t.join("usr/lib/libx.so")).unwrap();
        std::os::unix::fs::symlink("../..//usr/lib/libx.so.1", t.join("usr/lib/denormal")).unwrap();
        write(
            &t,
            "usr/lib/modules/6.1.0/vmlinuz",
            &vec![b'k'; 80_000],
            0o644,
        );
        write(&t, "usr/share/data", b"data\n", 0o644);
        setfattr(&t.join("usr/share/data"), "user.test", "value");
        write(&t, "usr/share/big", &vec![b'b'; 300_000], 0o644);
        setfattr(&t.join("usr/share/big"), "user.big", "1");
        write(&t, "usr/share/owned", b"owned\n", 0o640);
        std::os::unix::fs::chown(t.join("usr/share/owned"), Some(1000), Some(1000)).unwrap();
        let long = format!("usr/share/doc/{}/file", "long-name-".repeat(12));
        write(&t, &long, b"long\n", 0o644);
        write(&t, "usr/etc/os-release", b"ID=ocitree-test\n", 0o644);
        write(&t, "usr/etc/motd", &vec![b'm'; 20_000], 0o644);
        setfattr(&t.join("usr/etc/motd"), "user.etc", "motd");
        for d in ["sysroot", "boot", "var"] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        t
    }

    /// Commits version `v` with `ostree commit --bootable` (which writes `ostree.bootable`
    /// and `ostree.linux` from usr/lib/modules) and a detached signature; its checksum.
    fn commit(&self, v: u32) -> String {
        let tree = self.tree(v);
        tools::ostree(
            &self.repo,
            &[
                "commit",
                "--bootable",
                &format!("--branch=os/{v}"),
                &format!("--tree=dir={}", tree.display()),
                &format!("--timestamp=2024-01-0{v}T00:00:00Z"),
                &format!("--subject=test os {v}"),
                &format!("--add-metadata-string=version={v}.0"),
                &format!("--add-detached-metadata-string=test.signature=signature of {v}"),
            ],
        )
        .trim()
        .to_string()
    }

    /// `ocitree encapsulate` with the source repository.
    fn encapsulate(&self, args: &[&str]) -> Run {
        let out = Command::new(bin())
            .arg("--repo")
            .arg(&self.repo)
            .arg("encapsulate")
            .args(args)
            .output()
            .unwrap();
        let r = output(out);
        assert_eq!(r.code, 0, "{r:?}");
        r
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn listing(&self, rev: &str) -> String {
        tools::ostree(&self.repo, &["ls", "-R", "-X", rev])
    }
}

fn oci(dir: &Path, tag: &str) -> String {
    Repo::oci(dir, tag)
}

/// `ostree-ext-cli container unencapsulate` into a fresh bare-user repository: the commit it
/// says it imported, checked by fsck, listed, with its detached signature.
fn unencapsulate(cli: &Path, image: &str, repo: &Path) -> String {
    if !repo.exists() {
        tools::ostree(repo, &["init", "--mode=bare-user"]);
    }
    let out = tools::run(
        Command::new(cli)
            .args(["container", "unencapsulate", "--quiet"])
            .arg(format!("--repo={}", repo.display()))
            .arg(format!("ostree-unverified-image:{image}")),
    );
    let said = String::from_utf8(out.stdout).unwrap();
    tools::fsck(repo);
    said.trim()
        .strip_prefix("Imported: ")
        .unwrap_or_else(|| panic!("ostree-ext said {said:?}"))
        .to_string()
}

fn signature(repo: &Path, commit: &str) -> String {
    tools::ostree(
        repo,
        &[
            "show",
            "--print-detached-metadata-key=test.signature",
            commit,
        ],
    )
    .trim()
    .to_string()
}

/// The manifest and config of `dir:tag`.
fn image(dir: &Path, tag: &str) -> (Value, Value) {
    let read = |p: &str| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join(p)).unwrap()).unwrap()
    };
    let index = read("index.json");
    let desc = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let blob = |d: &Value| format!("blobs/sha256/{}", &d.as_str().unwrap()[7..]);
    let manifest = read(&blob(&desc["digest"]));
    let config = read(&blob(&manifest["config"]["digest"]));
    (manifest, config)
}

fn layer_digests(manifest: &Value) -> Vec<(String, u64)> {
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

fn labels(config: &Value) -> BTreeMap<String, String> {
    config["config"]["Labels"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn ostree_ext_reads_ocitree_native_images_as_the_identical_commit() {
    let cli = ostree_ext_cli();
    let os = Os::new();
    let c = os.commit(1);
    let out = os.dir("img");
    // A bootable commit is written as an ostree native container by default.
    let r = os.encapsulate(&["os/1", &oci(&out, "single")]);
    assert_eq!(r.field("Format"), "ostree-native");
    let r = os.encapsulate(&["--max-layers", "4", "os/1", &oci(&out, "chunked")]);
    assert_eq!(r.field("Format"), "ostree-native");
    let (single, _) = image(&out, "single");
    assert_eq!(layer_digests(&single).len(), 1);
    let (chunked, config) = image(&out, "chunked");
    let layers = chunked["layers"].as_array().unwrap();
    assert!(layers.len() >= 3 && layers.len() <= 4, "{chunked}");
    assert!(layers[0].get("annotations").is_none());
    for l in &layers[1..] {
        let comps = l["annotations"]["ostree.components"].as_str().unwrap();
        assert!(comps.starts_with('/'), "{comps}");
    }
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(
        labels(&config)["ostree.final-diffid"],
        diff_ids.last().unwrap().as_str().unwrap()
    );
    for tag in ["single", "chunked"] {
        let theirs = os.dir(&format!("theirs-{tag}"));
        assert_eq!(unencapsulate(&cli, &oci(&out, tag), &theirs), c, "{tag}");
        assert_eq!(
            tools::ostree(&theirs, &["ls", "-R", "-X", &c]),
            os.listing(&c)
        );
        assert_eq!(signature(&theirs, &c), "'signature of 1'");
    }
    // `container image pull` too: the commit layer's blob ref is the commit, and the image's
    // merge commit has its tree.
    let pulled = os.dir("pulled");
    tools::ostree(&pulled, &["init", "--mode=bare-user"]);
    tools::run(
        Command::new(&cli)
            .args(["container", "image", "pull", "--quiet"])
            .arg(&pulled)
            .arg(format!("ostree-unverified-image:{}", oci(&out, "chunked"))),
    );
    tools::fsck(&pulled);
    let blob_ref = format!(
        "ostree/container/blob/sha256_3A_{}",
        &layers[0]["digest"].as_str().unwrap()[7..]
    );
    assert_eq!(tools::ostree(&pulled, &["rev-parse", &blob_ref]).trim(), c);
    let image_ref = tools::ostree(&pulled, &["refs", "ostree/container/image"]);
    let image_ref = format!("ostree/container/image/{}", image_ref.trim());
    assert_eq!(
        tools::ostree(&pulled, &["ls", "-R", "-X", &image_ref]),
        os.listing(&c)
    );
}

#[test]
fn a_new_version_reuses_every_unchanged_chunk() {
    let cli = ostree_ext_cli();
    let os = Os::new();
    os.commit(1);
    let c2 = os.commit(2);
    let out = os.dir("img");
    os.encapsulate(&["--max-layers", "6", "os/1", &oci(&out, "v1")]);
    os.encapsulate(&["--prior", &oci(&out, "v1"), "os/2", &oci(&out, "v2")]);
    let (m1, _) = image(&out, "v1");
    let (m2, _) = image(&out, "v2");
    let (v1, v2) = (layer_digests(&m1), layer_digests(&m2));
    assert_eq!(v1.len(), v2.len(), "the prior's layer count is kept");
    let new: Vec<_> = v2.iter().filter(|l| !v1.contains(l)).collect();
    let total: u64 = v2.iter().map(|l| l.1).sum();
    let fetched: u64 = new.iter().map(|l| l.1).sum();
    eprintln!(
        "v2: {} of {} layers new, {fetched} of {total} bytes to fetch",
        new.len(),
        v2.len()
    );
    // The commit layer (always new) and the chunk holding usr/bin/tool.
    assert_eq!(new.len(), 2, "v1 {v1:?} v2 {v2:?}");
    assert_ne!(v1[0], v2[0]);
    // ostree-ext updates a repository holding v1 to the identical v2 commit.
    let theirs = os.dir("theirs");
    unencapsulate(&cli, &oci(&out, "v1"), &theirs);
    assert_eq!(unencapsulate(&cli, &oci(&out, "v2"), &theirs), c2);
    assert_eq!(signature(&theirs, &c2), "'signature of 2'");
    // ocitree fetches only the two new layers.
    let repo = Repo::new();
    repo.import(&oci(&out, "v1"), "os");
    let r = repo.import(&oci(&out, "v2"), "os");
    assert_eq!(r.commit(), c2);
    assert_eq!(r.layers(), (2, v2.len() - 2));
    tools::fsck(&repo.path);
}

#[test]
fn ocitree_imports_its_native_output_to_the_identical_commit_and_exports_it_again() {
    let cli = ostree_ext_cli();
    let os = Os::new();
    let c = os.commit(1);
    let out = os.dir("img");
    os.encapsulate(&["os/1", &oci(&out, "single")]);
    os.encapsulate(&["--max-layers", "3", "os/1", &oci(&out, "chunked")]);
    for mode in ["bare-user", "archive"] {
        for tag in ["single", "chunked"] {
            let repo = Repo::with_mode(mode);
            let r = repo.import(&oci(&out, tag), "os");
            assert_eq!(r.commit(), c, "{mode} {tag}");
            assert_eq!(
                tools::ostree(&repo.path, &["ls", "-R", "-X", &c]),
                os.listing(&c)
            );
            assert_eq!(signature(&repo.path, &c), "'signature of 1'");
            let inspect: Value = serde_json::from_str(&repo.ok(&["inspect", "os"]).stdout).unwrap();
            assert_eq!(inspect["format"], "ostree-native");
            tools::fsck(&repo.path);
        }
    }
    // `export` of the imported image writes the same native image, which ostree-ext reads.
    let repo = Repo::new();
    repo.import(&oci(&out, "chunked"), "os");
    let exported = os.dir("exported");
    repo.ok(&["export", "os", &oci(&exported, "os")]);
    let (m_in, c_in) = image(&out, "chunked");
    let (m_out, c_out) = image(&exported, "os");
    assert_eq!(c_in, c_out, "the config, byte for byte");
    assert_eq!(layer_digests(&m_in), layer_digests(&m_out));
    let theirs = os.dir("theirs");
    assert_eq!(unencapsulate(&cli, &oci(&exported, "os"), &theirs), c);
    // Encapsulating the imported image again (by name) gives the same bytes.
    let again = os.dir("again");
    let r = repo.ok(&["encapsulate", "--max-layers", "3", "os", &oci(&again, "os")]);
    assert_eq!(r.field("Format"), "ostree-native");
    assert_eq!(layer_digests(&image(&again, "os").0), layer_digests(&m_in));
}

#[test]
fn labels_are_those_ostree_ext_writes_for_the_same_commit() {
    let cli = ostree_ext_cli();
    let os = Os::new();
    let c = os.commit(1);
    let out = os.dir("img");
    os.encapsulate(&["os/1", &oci(&out, "ours")]);
    tools::run(
        Command::new(&cli)
            .args(["container", "encapsulate"])
            .arg(format!("--repo={}", os.repo.display()))
            .arg("os/1")
            .arg(oci(&out, "theirs")),
    );
    let (m_ours, ours) = image(&out, "ours");
    let (m_theirs, theirs) = image(&out, "theirs");
    let (mut l_ours, mut l_theirs) = (labels(&ours), labels(&theirs));
    assert_eq!(l_ours["ostree.commit"], c);
    assert_eq!(l_ours["ostree.linux"], "6.1.0");
    assert_eq!(l_ours["ostree.bootable"], "true");
    assert_eq!(l_ours["containers.bootc"], "1");
    // Our final diff_id is our layer's; the legacy `version` label is rpm-ostree's.
    for l in [&mut l_ours, &mut l_theirs] {
        assert!(l.remove("ostree.final-diffid").is_some());
    }
    assert_eq!(l_ours.remove("version").as_deref(), Some("1.0"));
    assert_eq!(l_ours, l_theirs);
    // Both repeat the labels as manifest annotations, and date the image by the commit.
    assert_eq!(
        m_ours["annotations"].as_object().unwrap().len(),
        m_theirs["annotations"].as_object().unwrap().len() + 1
    );
    assert_eq!(ours["created"], theirs["created"]);
    assert_eq!(ours["history"][0]["created_by"], "test os 1");
    assert_eq!(theirs["history"][0]["created_by"], "test os 1");
}

#[test]
fn the_format_is_chosen_by_the_bootable_flag_unless_given() {
    let cli = ostree_ext_cli();
    let os = Os::new();
    let tree = os.tree(1);
    let plain = tools::ostree_commit(&os.repo, "plain", &tree);
    let out = os.dir("img");
    let r = os.encapsulate(&["plain", &oci(&out, "plain")]);
    assert_eq!(r.field("Format"), "ocitree-encapsulated");
    let (_, config) = image(&out, "plain");
    assert_eq!(labels(&config)["ocitree.commit"], plain);
    // Asked for, a commit that is not bootable is an ostree native container too (without
    // the bootable labels).
    let r = os.encapsulate(&["--format", "ostree-native", "plain", &oci(&out, "native")]);
    assert_eq!(r.field("Format"), "ostree-native");
    let (_, config) = image(&out, "native");
    let l = labels(&config);
    assert!(!l.contains_key("ostree.bootable") && !l.contains_key("ocitree.commit"));
    assert_eq!(
        unencapsulate(&cli, &oci(&out, "native"), &os.dir("theirs")),
        plain
    );
    // And a bootable commit in ocitree's own format.
    let c = os.commit(1);
    let r = os.encapsulate(&[
        "--format",
        "ocitree-encapsulated",
        "os/1",
        &oci(&out, "own"),
    ]);
    assert_eq!(r.field("Format"), "ocitree-encapsulated");
    let repo = Repo::new();
    assert_eq!(repo.import(&oci(&out, "own"), "os").commit(), c);
    let inspect: Value = serde_json::from_str(&repo.ok(&["inspect", "os"]).stdout).unwrap();
    assert_eq!(inspect["format"], "ocitree-encapsulated");
}

#[test]
fn trees_the_format_cannot_carry_are_refused_naming_the_path() {
    let os = Os::new();
    let tree = os.tree(1);
    write(&tree, "sysroot/stray", b"x", 0o644);
    tools::ostree_commit(&os.repo, "sysroot", &tree);
    std::fs::remove_file(tree.join("sysroot/stray")).unwrap();
    write(&tree, "etc/hosts", b"x", 0o644);
    tools::ostree_commit(&os.repo, "both-etc", &tree);
    let out = os.dir("img");
    for (rev, path) in [("sysroot", "/sysroot/stray"), ("both-etc", "/etc")] {
        let r = output(
            Command::new(bin())
                .arg("--repo")
                .arg(&os.repo)
                .args(["encapsulate", "--format", "ostree-native", rev])
                .arg(oci(&out, rev))
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(path), "{rev}: {}", r.stderr);
        assert!(r.stderr.contains("ocitree-encapsulated"), "{}", r.stderr);
        assert!(!out.exists(), "nothing written");
    }
}

/// What a container runtime sees (`umoci unpack`: the checkout paths, the object store under
/// `sysroot/ostree`, `etc`, `var/tmp`) is, file for file, what it sees of ostree-ext's own
/// image of the same commit: single-layer and chunked.
#[test]
fn a_container_runtime_sees_what_it_sees_of_ostree_ext_images() {
    let cli = ostree_ext_cli();
    let os = Os::new();
    os.commit(1);
    let out = os.dir("img");
    os.encapsulate(&["os/1", &oci(&out, "single")]);
    os.encapsulate(&["--max-layers", "4", "os/1", &oci(&out, "chunked")]);
    tools::run(
        Command::new(&cli)
            .args(["container", "encapsulate"])
            .arg(format!("--repo={}", os.repo.display()))
            .arg("os/1")
            .arg(oci(&out, "theirs")),
    );
    let theirs = tools::umoci_unpack(&out, "theirs", &os.dir("b-theirs"));
    assert!(theirs.join("sysroot/ostree/repo/config").is_file());
    assert!(theirs.join("etc/motd").is_file());
    for tag in ["single", "chunked"] {
        let ours = tools::umoci_unpack(&out, tag, &os.dir(&format!("b-{tag}")));
        tree::assert_same(&ours, &theirs);
    }
}
