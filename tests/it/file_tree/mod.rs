//! Directory trees as nested indexes (`encapsulate --format file-tree`, issue 13): commits
//! made by the real `ostree` CLI → file-tree artifact (an OCI layout, or pushed to a real
//! docker-registry) → `ocitree import` into a fresh repo → the same root dirtree checksum,
//! the same `ostree ls -RX`, the same checkout. A new version fetches only changed blobs.
//! skopeo reads and copies the index tree. Hostile documents are refused, repo unchanged.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::util::registry::Registry;
use crate::util::*;

mod imported;

/// A directory to commit from and a repo made by `ostree init`.
struct Tree {
    tmp: tempfile::TempDir,
    repo: PathBuf,
    root: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let tmp = tempdir();
        let repo = tmp.path().join("src-repo");
        let root = tmp.path().join("tree");
        std::fs::create_dir_all(&root).unwrap();
        tools::ostree(&repo, &["init", "--mode=bare-user"]);
        Tree { tmp, repo, root }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn write(&self, rel: &str, data: &[u8]) {
        let p = self.p(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    fn chmod(&self, rel: &str, mode: u32) {
        std::fs::set_permissions(self.p(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn chown(&self, rel: &str, uid: u32, gid: u32) {
        std::os::unix::fs::lchown(self.p(rel), Some(uid), Some(gid)).unwrap();
    }

    fn setfattr(&self, rel: &str, name: &str, hex_value: &str) {
        tools::require("setfattr");
        tools::run(
            Command::new("setfattr")
                .args(["-h", "-n", name, "-v", hex_value])
                .arg(self.p(rel)),
        );
    }

    fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.p(rel)).unwrap();
    }

    fn symlink(&self, target: &str, rel: &str) {
        std::os::unix::fs::symlink(target, self.p(rel)).unwrap();
    }

    fn commit(&self, branch: &str) -> String {
        tools::ostree_commit(&self.repo, branch, &self.root)
    }

    fn ocitree(&self, args: &[&str]) -> Run {
        let r = output(
            Command::new(bin())
                .arg("--repo")
                .arg(&self.repo)
                .args(args)
                .env_remove("OCITREE_REPO")
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "ocitree {args:?} failed: {r:?}");
        r
    }

    fn work(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }
}

/// What must survive: owners, setuid/setgid/sticky and odd modes, `user.*` and
/// `security.capability` xattrs on files and directories, symlinks (with owner and xattr),
/// empty directories with metadata, hardlinks and identical files in several directories,
/// a directory sharded over several manifests, mixed directories, a file of several MiB.
fn rich_tree(t: &Tree) {
    t.write("etc/os-release", b"ID=test\n");
    t.write("etc/shared", b"same content\n");
    std::fs::hard_link(t.p("etc/shared"), t.p("etc/shared-link")).unwrap();
    t.write("usr/share/doc/copy", b"same content\n");
    t.setfattr("etc/os-release", "user.note", "0x00ff0a3d0a");
    t.write("usr/bin/ping", b"\x7fELF ping");
    t.chown("usr/bin/ping", 1000, 50);
    t.chmod("usr/bin/ping", 0o4755);
    t.setfattr(
        "usr/bin/ping",
        "security.capability",
        "0x0100000200200000000000000000000000000000",
    );
    t.write("usr/bin/secret", b"x");
    t.chmod("usr/bin/secret", 0o2600);
    t.write("usr/bin/none", b"");
    t.chmod("usr/bin/none", 0o000);
    for i in 0..8 {
        t.write(
            &format!("usr/lib/many/f{i}"),
            format!("file {i}\n").as_bytes(),
        );
    }
    t.symlink("../etc/os-release", "usr/os-release");
    t.symlink("a//b/./c/", "usr/denormal");
    t.chown("usr/denormal", 3, 4);
    t.mkdir("tmp");
    t.chmod("tmp", 0o1777);
    t.mkdir("var/empty");
    t.setfattr("var/empty", "user.dir", "0x01");
    t.chown("var/empty", 7, 8);
    t.chmod("var/empty", 0o700);
    t.mkdir("var/lib/only-links");
    t.symlink("/nowhere", "var/lib/only-links/l");
    t.setfattr("usr/lib", "user.libdir", "0x0203");
    t.chown("usr/lib", 0, 12);
    t.chmod("usr/lib", 0o2775);
    t.write("weird names/ü ñ.txt", b"unicode\n");
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    t.write("usr/lib/big.bin", &big);
}

/// `ostree ls -RX REV` with the root dirtree and dirmeta checksums of `ls -C -d REV /`.
fn listing(repo: &Path, rev: &str) -> (String, String) {
    let root = tools::ostree(repo, &["ls", "-C", "-d", rev, "/"]);
    (root, tools::ostree(repo, &["ls", "-R", "-X", rev]))
}

/// Checks `rev` of `ours` against `theirs_rev` of `theirs`: same root dirtree and dirmeta,
/// same `ls -RX`; with `checkout`, the same checkout (tree::assert_same); fsck clean.
fn assert_same_tree(ours: &Path, rev: &str, theirs: &Path, theirs_rev: &str, checkout: bool) {
    let (a, b) = (listing(ours, rev), listing(theirs, theirs_rev));
    assert_eq!(a.0, b.0, "root dirtree/dirmeta checksums differ");
    assert_eq!(a.1, b.1, "ostree ls -RX differs");
    if checkout {
        let work = tempdir();
        tools::ostree_checkout(ours, rev, &work.path().join("ours"));
        tools::ostree_checkout(theirs, theirs_rev, &work.path().join("theirs"));
        tree::assert_same(&work.path().join("ours"), &work.path().join("theirs"));
    }
    tools::fsck(ours);
}

fn json_file(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn root_digest(layout: &Path) -> String {
    json_file(&layout.join("index.json"))["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every (directory path, document) of a layout's file tree, depth first.
fn documents(layout: &Path, digest: &str, path: &str, out: &mut Vec<(String, Value)>) {
    let doc = json_file(&blob(layout, digest));
    out.push((path.to_string(), doc.clone()));
    for e in doc["manifests"].as_array().into_iter().flatten() {
        let sub = match e["annotations"]["org.opencontainers.image.title"].as_str() {
            Some(t) => format!("{path}/{t}"),
            None => path.to_string(),
        };
        documents(layout, e["digest"].as_str().unwrap(), &sub, out);
    }
}

#[test]
fn oci_dir_round_trip_gives_the_identical_tree() {
    let t = Tree::new();
    rich_tree(&t);
    let commit = t.commit("main");
    let layout = t.work("layout");
    let dest = format!("oci:{}:v1", layout.display());
    let r = t.ocitree(&[
        "encapsulate",
        "--format",
        "file-tree",
        "--max-blobs",
        "3",
        "main",
        &dest,
    ]);
    assert_eq!(r.field("Commit"), commit);
    // Deterministic: the same tree again gives the same root digest.
    let again = t.work("again");
    let r2 = t.ocitree(&[
        "encapsulate",
        "--format=file-tree",
        "--max-blobs=3",
        &commit,
        &format!("oci:{}:v1", again.display()),
    ]);
    assert_eq!(r.field("Root"), r2.field("Root"));
    assert_eq!(root_digest(&layout), r.field("Root"));

    // The mapping as documented: a directory of files is a manifest of titled raw blobs;
    // usr/lib/many (8 files, 3 per manifest) an index of 3 untitled manifests.
    let mut docs = Vec::new();
    documents(&layout, &root_digest(&layout), "", &mut docs);
    let find = |p: &str| {
        docs.iter()
            .find(|(path, _)| path == p)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| panic!("no document for {p}"))
    };
    let many = find("/usr/lib/many");
    assert_eq!(many["mediaType"], "application/vnd.oci.image.index.v1+json");
    assert_eq!(many["artifactType"], "application/vnd.ocitree.file-tree.v1");
    let shards = many["manifests"].as_array().unwrap();
    assert_eq!(shards.len(), 3, "{many}");
    let mut titles = Vec::new();
    for s in shards {
        assert!(s["annotations"]["org.opencontainers.image.title"].is_null());
        let m = json_file(&blob(&layout, s["digest"].as_str().unwrap()));
        for l in m["layers"].as_array().unwrap() {
            let title = l["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap();
            // Tools that ignore our annotations still get the files: title + raw bytes.
            let bytes = std::fs::read(blob(&layout, l["digest"].as_str().unwrap())).unwrap();
            assert_eq!(
                bytes,
                std::fs::read(t.p(&format!("usr/lib/many/{title}"))).unwrap()
            );
            titles.push(title.to_string());
        }
    }
    assert_eq!(titles, (0..8).map(|i| format!("f{i}")).collect::<Vec<_>>());
    let bin = find("/usr/bin");
    assert_eq!(
        bin["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let ping = bin["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["annotations"]["org.opencontainers.image.title"] == "ping")
        .unwrap()
        .clone();
    assert_eq!(ping["annotations"]["org.ocitree.file-tree.mode"], "4755");
    assert_eq!(
        ping["annotations"]["org.ocitree.file-tree.owner"],
        "1000:50"
    );
    assert_eq!(ping["mediaType"], "application/octet-stream");
    let var: Value = serde_json::from_str(
        find("/var")["annotations"]["org.ocitree.file-tree.entries"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        var,
        json!([{"name": "empty", "type": "dir", "mode": "0700", "owner": "7:8",
                "xattrs": {"user.dir": "AQ=="}}])
    );
    // Identical files share one blob: 3 paths of "same content\n", one blob.
    let same = format!("{:x}", Sha256::digest(b"same content\n"));
    let users = docs
        .iter()
        .flat_map(|(_, d)| d["layers"].as_array().cloned().unwrap_or_default())
        .filter(|l| l["digest"].as_str() == Some(&format!("sha256:{same}")))
        .count();
    assert_eq!(users, 3);

    let fresh = Repo::new();
    let imported = fresh.import(&Repo::oci(&layout, "v1"), "tree");
    assert_same_tree(&fresh.path, &imported.commit(), &t.repo, &commit, true);

    // A subdirectory alone.
    let sub = t.work("sub");
    t.ocitree(&[
        "encapsulate",
        "--format=file-tree",
        "--subdir=usr/lib",
        "main",
        &format!("oci:{}:v1", sub.display()),
    ]);
    let r = fresh.import(&Repo::oci(&sub, "v1"), "lib");
    let work = tempdir();
    tools::ostree_checkout(&fresh.path, &r.commit(), &work.path().join("ours"));
    tools::ostree(
        &t.repo,
        &[
            "checkout",
            "--subpath=/usr/lib",
            "main",
            &work.path().join("theirs").display().to_string(),
        ],
    );
    tree::assert_same(&work.path().join("ours"), &work.path().join("theirs"));
}

#[test]
fn a_docker_archive_cannot_hold_a_file_tree() {
    let t = Tree::new();
    t.write("a", b"a");
    t.commit("main");
    let dest = format!("docker-archive:{}", t.work("x.tar").display());
    let out = output(
        Command::new(bin())
            .arg("--repo")
            .arg(&t.repo)
            .args(["encapsulate", "--format=file-tree", "main", &dest])
            .output()
            .unwrap(),
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("OCI layout"), "{}", out.stderr);
    assert!(!t.work("x.tar").exists());
}

/// Options a file tree does not take are refused, not ignored: a `--sign-by` that signed
/// nothing must not succeed.
#[test]
fn options_a_file_tree_does_not_take_are_refused() {
    let t = Tree::new();
    t.write("a", b"a");
    t.commit("main");
    let dest = format!("oci:{}", t.work("x").display());
    for extra in [
        &["--sign-by", "NOSUCHKEY"][..],
        &["--label", "a=b"],
        &["--compression", "zstd"],
        &["--max-layers", "3"],
    ] {
        let mut args = vec!["encapsulate", "--format=file-tree"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["main", &dest]);
        let out = output(
            Command::new(bin())
                .arg("--repo")
                .arg(&t.repo)
                .args(&args)
                .output()
                .unwrap(),
        );
        assert_eq!(out.code, 2, "{extra:?}: {out:?}");
        assert!(
            out.stderr.contains(extra[0]) && out.stderr.contains("file-tree"),
            "{extra:?}: {}",
            out.stderr
        );
        assert!(!t.work("x").exists(), "{extra:?}: wrote the destination");
    }
}

/// `--max-blobs 50`: 10,000 files in 131 directories, with xattrs, symlinks, empty
/// directories, odd modes and owners.
fn big_tree(t: &Tree) {
    for g in 0..5 {
        for d in 0..25 {
            for i in 0..80 {
                let rel = format!("g{g}/d{d:02}/f{i:02}");
                // Every 7th file shares its content with a file of another directory.
                let data = if i % 7 == 0 {
                    format!("shared {i}\n")
                } else {
                    format!("file {rel}\n")
                };
                t.write(&rel, data.as_bytes());
            }
        }
        t.write(&format!("g{g}/README"), format!("group {g}\n").as_bytes());
        t.symlink("d00/f00", &format!("g{g}/first"));
        t.mkdir(&format!("g{g}/empty"));
    }
    for (i, rel) in ["g0/d00/f01", "g1/d05/f02", "g2/d10/f03", "g4/d24/f79"]
        .iter()
        .enumerate()
    {
        t.setfattr(rel, "user.n", &format!("0x0{i}"));
        t.chmod(rel, [0o600, 0o4711, 0o2755, 0o1644][i]);
    }
    t.chown("g3/d03/f03", 1234, 5678);
    t.setfattr("g3", "user.group", "0xff");
    t.chmod("g2/empty", 0o1777);
    t.setfattr("g2/empty", "user.e", "0x00");
    t.mkdir("top-empty");
}

/// A `Label: value` line of `encapsulate --format file-tree` output, as the first number.
fn number(r: &Run, label: &str) -> u64 {
    r.field(label)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn ten_thousand_files_through_a_registry_then_only_the_changed_blobs() {
    let start = std::time::Instant::now();
    let t = Tree::new();
    big_tree(&t);
    let v1 = t.commit("main");
    println!("tree and commit: {:?}", start.elapsed());
    let reg = Registry::start();
    let dest1 = format!("{}:v1", reg.url("tree"));
    let push1 = t.ocitree(&[
        "encapsulate",
        "--format=file-tree",
        "--max-blobs=50",
        "--tls-verify=false",
        "main",
        &dest1,
    ]);
    println!("v1 push ({:?}): {}", start.elapsed(), push1.stdout);
    assert_eq!(
        push1.field("Files").split_whitespace().next(),
        Some("10005")
    );
    let distinct = number(&push1, "Files");
    assert!(distinct > 9000, "{distinct}");
    // Every distinct blob once, plus the empty config.
    let blobs1: u64 = push1
        .field("Files")
        .split(['(', ' '])
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(number(&push1, "Pushed"), blobs1 + 1, "{}", push1.stdout);

    let fresh = Repo::new();
    let r1 = fresh.ok(&["import", "--tls-verify=false", &dest1, "tree"]);
    println!("v1 pull ({:?}): {}", start.elapsed(), r1.stdout);
    assert_eq!(number(&r1, "Blobs"), blobs1);
    assert_same_tree(&fresh.path, &r1.commit(), &t.repo, &v1, true);
    println!("v1 compared: {:?}", start.elapsed());

    // Version 2: ten files changed.
    let mut new_bytes = 0u64;
    for i in 0..10 {
        let rel = format!("g{}/d{:02}/f{:02}", i % 5, i * 2, 10 + i);
        let data = format!("changed in v2: {rel}\n");
        new_bytes += data.len() as u64;
        t.write(&rel, data.as_bytes());
    }
    let v2 = t.commit("main");
    let dest2 = format!("{}:v2", reg.url("tree"));
    let push2 = t.ocitree(&[
        "encapsulate",
        "--format=file-tree",
        "--max-blobs=50",
        "--tls-verify=false",
        "main",
        &dest2,
    ]);
    println!("v2 push ({:?}): {}", start.elapsed(), push2.stdout);
    // Only the ten new blobs go up; unchanged subtrees are skipped by one HEAD each, the
    // other blobs of the ten changed manifests are found by HEAD.
    assert!(
        push2
            .field("Pushed")
            .starts_with(&format!("10 blobs uploaded ({new_bytes} bytes),")),
        "{}",
        push2.stdout
    );
    let r2 = fresh.ok(&["import", "--tls-verify=false", &dest2, "tree"]);
    println!("v2 pull ({:?}): {}", start.elapsed(), r2.stdout);
    assert_eq!(
        r2.field("Blobs"),
        format!("10 fetched ({new_bytes} bytes), 490 from local objects"),
        "the other 49 files of each changed manifest come from local objects"
    );
    assert_eq!(r2.layers().0, 10, "ten manifests changed: {}", r2.stdout);
    assert_same_tree(&fresh.path, &r2.commit(), &t.repo, &v2, false);
}

#[test]
fn skopeo_reads_the_root_and_copies_a_one_level_tree() {
    tools::require("skopeo");
    let reg = Registry::start();
    // Nested: skopeo inspect --raw serves our root index byte for byte.
    let t = Tree::new();
    rich_tree(&t);
    t.commit("main");
    let dest = format!("{}:v1", reg.url("rich"));
    let r = t.ocitree(&[
        "encapsulate",
        "--format=file-tree",
        "--max-blobs=2",
        "--tls-verify=false",
        "main",
        &dest,
    ]);
    let raw =
        tools::run(Command::new("skopeo").args(["inspect", "--raw", "--tls-verify=false", &dest]))
            .stdout;
    assert_eq!(
        format!("sha256:{:x}", Sha256::digest(&raw)),
        r.field("Root")
    );
    // One level (an index of file manifests): skopeo copy --all copies it whole, and the
    // copy imports as the same tree. (containers/image refuses indexes nested in indexes.)
    let flat = Tree::new();
    for i in 0..5 {
        flat.write(&format!("f{i}"), format!("{i}\n").as_bytes());
    }
    flat.chmod("f3", 0o750);
    flat.symlink("f0", "link");
    let commit = flat.commit("main");
    let dest = format!("{}:v1", reg.url("flat"));
    let r = flat.ocitree(&[
        "encapsulate",
        "--format=file-tree",
        "--max-blobs=2",
        "--tls-verify=false",
        "main",
        &dest,
    ]);
    let copy = flat.work("copy");
    tools::run(Command::new("skopeo").args([
        "copy",
        "-q",
        "--all",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:v1", copy.display()),
    ]));
    // skopeo 1.9 rewrites the root index without its artifactType (it predates OCI 1.1);
    // the manifests it lists are ours, byte for byte, and import still recognises the tree
    // by its first entry.
    let entries = |layout: &Path, root: &str| -> Vec<Value> {
        json_file(&blob(layout, root))["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["digest"].clone())
            .collect()
    };
    let ours = flat.work("ours");
    flat.ocitree(&[
        "encapsulate",
        "--format=file-tree",
        "--max-blobs=2",
        "main",
        &format!("oci:{}:v1", ours.display()),
    ]);
    assert_eq!(root_digest(&ours), r.field("Root"));
    assert_eq!(
        entries(&copy, &root_digest(&copy)),
        entries(&ours, &root_digest(&ours))
    );
    let fresh = Repo::new();
    let imported = fresh.import(&Repo::oci(&copy, "v1"), "flat");
    assert_same_tree(&fresh.path, &imported.commit(), &flat.repo, &commit, true);
}

/// A hand-built layout: raw blobs and documents.
struct Layout {
    dir: PathBuf,
}

const FT: &str = "application/vnd.ocitree.file-tree.v1";

impl Layout {
    fn new(dir: PathBuf) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout { dir }
    }

    fn put(&self, bytes: &[u8]) -> String {
        let d = format!("{:x}", Sha256::digest(bytes));
        std::fs::write(self.dir.join("blobs/sha256").join(&d), bytes).unwrap();
        format!("sha256:{d}")
    }

    fn file(&self, title: &str, data: &[u8], extra: Value) -> Value {
        let mut a = json!({"org.opencontainers.image.title": title});
        if let Value::Object(m) = extra {
            a.as_object_mut().unwrap().extend(m);
        }
        json!({"mediaType": "application/octet-stream", "digest": self.put(data),
               "size": data.len(), "annotations": a})
    }

    fn doc(&self, doc: &Value, title: Option<&str>) -> Value {
        let bytes = serde_json::to_vec(doc).unwrap();
        let mut d = json!({"mediaType": doc["mediaType"], "digest": self.put(&bytes),
                           "size": bytes.len(), "artifactType": FT});
        if let Some(t) = title {
            d["annotations"] = json!({"org.opencontainers.image.title": t});
        }
        d
    }

    fn manifest(&self, layers: Vec<Value>, annotations: Value) -> Value {
        let config = self.put(b"{}");
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
               "artifactType": FT,
               "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
               "layers": layers, "annotations": annotations})
    }

    fn index(&self, entries: Vec<Value>, annotations: Value) -> Value {
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
               "artifactType": FT, "manifests": entries, "annotations": annotations})
    }

    /// Tags `root` as `v1`; returns the source string.
    fn finish(&self, root: &Value) -> String {
        let mut desc = self.doc(root, None);
        desc["annotations"] = json!({"org.opencontainers.image.ref.name": "v1"});
        let index = json!({"schemaVersion": 2, "manifests": [desc]});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&index).unwrap(),
        )
        .unwrap();
        Repo::oci(&self.dir, "v1")
    }
}

#[test]
fn hostile_file_trees_are_refused_and_change_nothing() {
    let repo = Repo::new();
    let work = tempdir();
    let mut n = 0;
    let mut case = |build: &dyn Fn(&Layout) -> Value, expect: &str| {
        n += 1;
        let l = Layout::new(work.path().join(format!("case{n}")));
        let root = build(&l);
        let src = l.finish(&root);
        let before = repo.snapshot();
        let err = repo.fails(&["import", &src, "hostile"]);
        assert!(
            err.contains(expect),
            "case {n}: expected {expect:?} in {err}"
        );
        before.assert_unchanged(&repo.path);
    };
    let one = |title: &str| {
        let title = title.to_string();
        move |l: &Layout| l.manifest(vec![l.file(&title, b"x", json!({}))], json!({}))
    };
    // One file "a", with these annotations on its layer and on its manifest.
    let annotated = |on_file: Value, on_manifest: Value| {
        move |l: &Layout| {
            l.manifest(
                vec![l.file("a", b"1", on_file.clone())],
                on_manifest.clone(),
            )
        }
    };
    case(&one("../x"), "title \"../x\" is a name holding /");
    case(&one("/etc/passwd"), "holding /");
    case(&one("a/b"), "holding /");
    case(&one(""), "an empty name");
    case(&one(".."), "title \"..\" is not a name");
    case(
        &|l: &Layout| {
            l.manifest(
                vec![l.file("a", b"1", json!({})), l.file("a", b"2", json!({}))],
                json!({}),
            )
        },
        "\"a\" appears twice",
    );
    case(
        &|l: &Layout| {
            let sub = l.manifest(vec![l.file("f", b"1", json!({}))], json!({}));
            let files = l.manifest(vec![l.file("a", b"1", json!({}))], json!({}));
            l.index(vec![l.doc(&files, None), l.doc(&sub, Some("a"))], json!({}))
        },
        "\"a\" appears twice",
    );
    case(
        &annotated(
            json!({}),
            json!({"org.ocitree.file-tree.entries": r#"[{"name":"a","type":"dir"}]"#}),
        ),
        "\"a\" appears twice",
    );
    case(
        &annotated(json!({"org.ocitree.file-tree.mode": "9755"}), json!({})),
        "is not octal permission bits",
    );
    case(
        &annotated(json!({"org.ocitree.file-tree.owner": "root"}), json!({})),
        "is not UID:GID",
    );
    case(
        &annotated(
            json!({}),
            json!({"org.ocitree.file-tree.entries": r#"[{"name":"l","type":"fifo"}]"#}),
        ),
        "expected \"symlink\"",
    );
    case(
        &annotated(
            json!({}),
            json!({"org.ocitree.file-tree.entries": r#"[{"name":"../l","type":"symlink","target":"x"}]"#}),
        ),
        "title \"../l\" is a name holding /",
    );
    case(
        &|l: &Layout| {
            let inner = l.index(vec![], json!({}));
            l.index(vec![l.doc(&inner, None)], json!({}))
        },
        "has no title",
    );
    case(
        &|l: &Layout| {
            let mut doc = l.manifest(vec![l.file("f", b"deep", json!({}))], json!({}));
            for _ in 0..70 {
                doc = l.index(vec![l.doc(&doc, Some("d"))], json!({}));
            }
            doc
        },
        "nested more than 64 deep",
    );
    // A blob that is not what its descriptor says: found while it streams; nothing lands.
    case(
        &|l: &Layout| {
            let f = l.file("a", b"good", json!({}));
            let path = l
                .dir
                .join("blobs/sha256")
                .join(&f["digest"].as_str().unwrap()[7..]);
            std::fs::write(path, b"evil").unwrap();
            l.manifest(vec![f], json!({}))
        },
        "digest",
    );
}
