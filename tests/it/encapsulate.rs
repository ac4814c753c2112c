//! `ocitree encapsulate`: commits made by the real `ostree` CLI → OCI image → `ocitree import`
//! into a fresh repo → the identical commit checksum; images checked with skopeo, umoci and
//! oci-image-tool; reproducibility; stable layers across versions.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// A tree with what must survive: owners, setuid/sticky modes, `user.*` and
/// `security.capability` xattrs (files and directories), hardlinks, symlinks (one with a
/// denormal target), empty directories, a path longer than 100 bytes, a file streamed in
/// several MiB.
fn rich_tree(s: &Source) {
    s.write("etc/os-release", b"ID=test\n");
    s.write("etc/shared", b"same object\n");
    std::fs::hard_link(s.path("etc/shared"), s.path("etc/shared-link")).unwrap();
    s.setfattr("etc/os-release", "user.note", "0x00ff0a3d0a");
    s.write("usr/bin/ping", b"\x7fELF ping");
    // chown clears setuid and file capabilities: owner first.
    std::os::unix::fs::chown(s.path("usr/bin/ping"), Some(1000), Some(50)).unwrap();
    s.chmod("usr/bin/ping", 0o4755);
    s.setfattr(
        "usr/bin/ping",
        "security.capability",
        "0x0100000200200000000000000000000000000000",
    );
    std::os::unix::fs::symlink("../etc/os-release", s.path("usr/os-release")).unwrap();
    std::os::unix::fs::symlink("a//b/./c/", s.path("usr/denormal")).unwrap();
    std::fs::create_dir_all(s.path("tmp")).unwrap();
    s.chmod("tmp", 0o1777);
    std::fs::create_dir_all(s.path("var/empty")).unwrap();
    s.setfattr("var/empty", "user.dir", "0x01");
    std::os::unix::fs::chown(s.path("var/empty"), Some(7), Some(8)).unwrap();
    let long = format!("usr/share/{}/{}", "d".repeat(60), "f".repeat(60));
    s.write(&long, b"long path\n");
    // ids beyond the 7 octal digits of a ustar header travel as PAX uid/gid records
    s.write("etc/big-ids", b"ids");
    std::os::unix::fs::chown(s.path("etc/big-ids"), Some(4_000_000), Some(3_000_000)).unwrap();
    let big: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    s.write("usr/lib/big.bin", &big);
}

/// The layer tar of a one-layer encapsulation: root first as `./`, paths sorted, every entry
/// with the commit's mtime, the second path of a file object a hardlink, xattrs as sorted
/// PAX records.
fn check_layer_tar(layout: &Path, mtime: u64) {
    let digest = layer_digests(layout).remove(0);
    let blob = std::fs::read(blob_path(layout, &digest)).unwrap();
    let mut archive = tar::Archive::new(ocitree::decompress::decompress(&blob[..]).unwrap());
    let mut paths = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        assert_eq!(e.header().mtime().unwrap(), mtime, "{path}");
        if path == "etc/shared-link" {
            assert_eq!(e.header().entry_type(), tar::EntryType::Link);
            assert_eq!(&*e.link_name_bytes().unwrap(), b"etc/shared");
        }
        if path == "usr/bin/ping" {
            let keys: Vec<String> = e
                .pax_extensions()
                .unwrap()
                .unwrap()
                .map(|r| r.unwrap().key().unwrap().to_string())
                .collect();
            assert_eq!(keys, ["SCHILY.xattr.security.capability"]);
            assert_eq!(e.header().mode().unwrap(), 0o4755);
            assert_eq!(e.header().uid().unwrap(), 1000);
        }
        paths.push(path);
    }
    assert_eq!(paths[0], "./");
    // depth first, each directory's children by name: sorted by path components
    let comps: Vec<Vec<&str>> = paths
        .iter()
        .map(|p| p.trim_end_matches('/').split('/').collect())
        .collect();
    let mut sorted = comps.clone();
    sorted.sort();
    assert_eq!(comps, sorted, "entries in path order");
    assert!(paths.contains(&"var/empty/".to_string()), "{paths:?}");
}

#[test]
fn commit_roundtrips_to_identical_checksum() {
    let s = Source::new();
    rich_tree(&s);
    let parent = s.commit("main", &["-s", "first"]);
    s.write("etc/motd", b"second commit\n");
    let c = s.commit(
        "main",
        &[
            "-s",
            "a subject",
            "--body",
            "a body\nof two lines",
            "--add-metadata-string=version=2.0",
            "--add-detached-metadata-string=signature=SIGNED-BYTES",
            "--timestamp=2024-02-29T12:34:56Z",
        ],
    );
    assert_ne!(parent, c);
    let out = s.encapsulate("main", "img", &[]);
    let (_, manifest, config) = image_of(&out);
    assert_eq!(config["created"], "2024-02-29T12:34:56Z");
    assert_eq!(config["config"]["Labels"]["ocitree.commit"], c.as_str());
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);

    check_layer_tar(&out, 1_709_210_096);

    let fresh = assert_identical_import(&s, &out, &c);
    let detached = |repo: &Path| {
        tools::ostree(
            repo,
            &["show", "--print-detached-metadata-key=signature", &c],
        )
    };
    assert_eq!(detached(&fresh.path), detached(&s.repo));
    assert!(detached(&fresh.path).contains("SIGNED-BYTES"));
    let show = tools::ostree(&fresh.path, &["show", &c]);
    assert!(show.contains(&format!("Parent:  {parent}")), "{show}");
    assert!(show.contains("a subject"), "{show}");

    // The image is an ordinary image to every command.
    let images = fresh.ok(&["images"]).stdout;
    assert!(images.contains(&c), "{images}");
    let inspect: Value = serde_json::from_str(&fresh.ok(&["inspect", "img"]).stdout).unwrap();
    assert_eq!(inspect["commit"], c.as_str());
    assert_eq!(
        fresh.ok(&["cat", "img", "/etc/motd"]).stdout,
        "second commit\n"
    );
    // Re-export rebuilds the same layer bytes, so even the manifest digest stays.
    let again = fresh.tmp.path().join("again");
    let r = fresh.ok(&["export", "img", &Repo::oci(&again, "latest")]);
    assert_eq!(r.field("Manifest"), image_of(&out).0);

    // The exported image is valid for skopeo and oci-image-tool, and umoci unpacks it to the
    // tree of the source commit.
    tools::require("skopeo");
    tools::run(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:latest", out.display())),
    );
    tools::require("oci-image-tool");
    let v = tools::run(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image", "--ref", "name=latest"])
            .arg(&out),
    );
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("Validation succeeded"),
        "{v:?}"
    );
    let work = tempdir();
    let checkout = work.path().join("checkout");
    tools::ostree_checkout(&s.repo, &c, &checkout);
    let rootfs = tools::umoci_unpack(&out, "latest", &work.path().join("bundle"));
    tree::assert_same(&rootfs, &checkout);

    // A plain image imported under the same name replaces it, record included.
    let plain = fresh.tmp.path().join("plain");
    Layout::single(&plain, &[Layer::new(&[file("x", b"y")])]);
    let p = fresh.import(&Repo::oci(&plain, "latest"), "plain-then-encap");
    let e = fresh.import(&Repo::oci(&out, "latest"), "plain-then-encap");
    assert_eq!(e.commit(), c);
    assert!(
        fresh
            .refs()
            .contains(&"ocitree/encapsulated/plain-then-encap".to_string())
    );
    let back = fresh.import(&Repo::oci(&plain, "latest"), "plain-then-encap");
    assert_eq!(back.commit(), p.commit());
    assert!(
        !fresh
            .refs()
            .contains(&"ocitree/encapsulated/plain-then-encap".to_string())
    );
    let v: Value =
        serde_json::from_str(&fresh.ok(&["inspect", "plain-then-encap"]).stdout).unwrap();
    assert_eq!(v["commit"], p.commit().as_str());
    assert!(v["record"].is_null());
    fresh.ok(&["rm", "plain-then-encap"]);
    // rm drops the image and its record; prune then frees the layer.
    fresh.ok(&["rm", "img"]);
    fresh.ok(&["prune"]);
    assert!(
        fresh.refs().is_empty(),
        "refs left after rm + prune: {:?}",
        fresh.refs()
    );
}

#[test]
fn encapsulation_is_reproducible() {
    let s = Source::new();
    rich_tree(&s);
    let c = s.commit("main", &["-s", "x"]);
    let a = s.encapsulate(&c, "a", &[]);
    let b = s.encapsulate("main", "b", &[]);
    assert_eq!(image_of(&a).0, image_of(&b).0);
    for (name, extra) in [("x.tar", &[][..]), ("y.tar", &[][..])] {
        let f = s.work.join(name);
        let mut args = vec!["encapsulate", "main"];
        let dest = format!("oci-archive:{}:v1", f.display());
        args.push(&dest);
        args.extend_from_slice(extra);
        s.ocitree(&args);
    }
    assert_eq!(
        std::fs::read(s.work.join("x.tar")).unwrap(),
        std::fs::read(s.work.join("y.tar")).unwrap(),
        "oci-archive output must be byte-identical"
    );
    // standard output carries the same archive, the summary going to stderr
    let piped = Command::new(bin())
        .arg("--repo")
        .arg(&s.repo)
        .args(["encapsulate", "main", "oci-archive:-"])
        .output()
        .unwrap();
    assert!(piped.status.success(), "{piped:?}");
    assert!(String::from_utf8_lossy(&piped.stderr).contains("Manifest:"));
    let piped_file = s.work.join("piped.tar");
    std::fs::write(&piped_file, &piped.stdout).unwrap();
    // and an oci-archive and a docker-archive import to the identical commit too
    let fresh = Repo::new();
    let x = fresh.import(
        &format!("oci-archive:{}:v1", s.work.join("x.tar").display()),
        "x",
    );
    assert_eq!(x.commit(), c);
    let d = s.work.join("d.tar");
    let out = s.ocitree(&[
        "encapsulate",
        "main",
        &format!("docker-archive:{}:d", d.display()),
    ]);
    let y = fresh.import(&format!("docker-archive:{}", d.display()), "d");
    assert_eq!(y.commit(), c);
    // a docker archive has no manifest: it is named by its config, as `docker load` names it
    let listed = tools::run(Command::new("tar").arg("-xOf").arg(&d).arg("manifest.json"));
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let config = listed[0]["Config"].as_str().unwrap();
    let id = format!("sha256:{}", config.trim_end_matches(".json"));
    assert_eq!(out.field("Image ID"), id, "{out:?}");
    let z = fresh.import(&format!("oci-archive:{}", piped_file.display()), "z");
    assert_eq!(z.commit(), c);
    tools::fsck(&fresh.path);

    // Pushed to a registry: the manifest the layout has, read back by skopeo, and an import
    // from the registry gives the identical commit.
    let reg = crate::util::registry::Registry::start();
    let dest = format!("{}:v1", reg.url("os/main"));
    let r = s.ocitree(&["encapsulate", "--tls-verify=false", "main", &dest]);
    assert_eq!(r.field("Pushed"), image_of(&a).0, "{r:?}");
    let out = tools::run(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(&dest),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), image_of(&a).0);
    let pulled = fresh.ok(&["import", "--tls-verify=false", &dest, "pulled"]);
    assert_eq!(pulled.commit(), c);
    tools::fsck(&fresh.path);
}

#[test]
fn labels_annotations_and_exec_config() {
    let s = Source::new();
    s.write("bin/app", b"app");
    let c = s.commit("main", &["--timestamp=2020-01-01T00:00:00Z"]);
    let config_json = s.work.join("config.json");
    std::fs::write(
        &config_json,
        r#"{"ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGTERM", "User": "nobody", "Labels": {"from.file": "yes"}}"#,
    )
    .unwrap();
    let out = s.encapsulate(
        "main",
        "img",
        &[
            "--config-json",
            config_json.to_str().unwrap(),
            "--label",
            "org.example.a=1",
            "--annotation",
            "org.example.b=2",
            "--cmd",
            r#"["/bin/app","--serve"]"#,
            "--entrypoint",
            "exec app",
            "--env",
            "A=1",
            "--env",
            "PATH=/bin",
            "--workingdir",
            "/srv",
            "--user",
            "1000:1000",
            "--platform",
            "linux/arm64/v8",
        ],
    );
    let (_, manifest, config) = image_of(&out);
    assert_eq!(manifest["annotations"]["org.example.b"], "2");
    let exec = &config["config"];
    assert_eq!(exec["Labels"]["org.example.a"], "1");
    assert_eq!(exec["Cmd"], serde_json::json!(["/bin/app", "--serve"]));
    assert_eq!(
        exec["Entrypoint"],
        serde_json::json!(["/bin/sh", "-c", "exec app"])
    );
    assert_eq!(exec["Env"], serde_json::json!(["A=1", "PATH=/bin"]));
    assert_eq!(exec["WorkingDir"], "/srv");
    assert_eq!(exec["User"], "1000:1000", "options win over --config-json");
    assert_eq!(exec["StopSignal"], "SIGTERM");
    assert_eq!(exec["ExposedPorts"]["80/tcp"], serde_json::json!({}));
    assert_eq!(exec["Labels"]["from.file"], "yes");
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["variant"], "v8");
    assert_eq!(config["created"], "2020-01-01T00:00:00Z");
    let fresh = Repo::new();
    let r = fresh.ok(&[
        "import",
        "--platform",
        "linux/arm64",
        &Repo::oci(&out, "latest"),
        "img",
    ]);
    assert_eq!(r.commit(), c);
}

/// Builds a tree of 60 files in 6 directories, of varied sizes.
fn many_files(s: &Source) {
    for d in 0..6 {
        for f in 0..10 {
            let size = 1000 * (1 + (d * 10 + f) % 7);
            let data: Vec<u8> = (0..size).map(|i| ((i + d * 31 + f) % 256) as u8).collect();
            s.write(&format!("usr/d{d}/f{f}"), &data);
        }
    }
}

#[test]
fn max_layers_with_prior_changes_at_most_two_layers() {
    let s = Source::new();
    many_files(&s);
    let v1 = s.commit("main", &["-s", "v1", "--timestamp=2024-01-01T00:00:00Z"]);
    let out1 = s.encapsulate("main", "v1", &["--max-layers", "5"]);
    let l1 = layer_digests(&out1);
    assert_eq!(l1.len(), 5, "60 files fill 5 layers");
    assert_identical_import(&s, &out1, &v1);
    // Every layer names the directories above its files again, identically: umoci applies
    // the five layers to the tree of the commit.
    let work = tempdir();
    tools::ostree_checkout(&s.repo, &v1, &work.path().join("checkout"));
    let rootfs = tools::umoci_unpack(&out1, "latest", &work.path().join("bundle"));
    tree::assert_same(&rootfs, &work.path().join("checkout"));
    tools::require("oci-image-tool");
    tools::run(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image", "--ref", "name=latest"])
            .arg(&out1),
    );
    // The prior must be an image of the repository: import v1 into the source repo itself
    // (it gives the identical commit, so nothing else changes there).
    let r = s.ocitree(&["import", &Repo::oci(&out1, "latest"), "app:v1"]);
    assert_eq!(r.commit(), v1);

    // v2: one file changes content.
    s.write("usr/d3/f4", b"changed in v2");
    let v2 = s.commit("main", &["-s", "v2", "--timestamp=2024-02-01T00:00:00Z"]);
    let out2 = s.encapsulate("main", "v2", &["--prior", "app:v1"]);
    let l2 = layer_digests(&out2);
    let changed = |a: &[String], b: &[String]| {
        let old: BTreeSet<&String> = a.iter().collect();
        b.iter().filter(|d| !old.contains(d)).count()
    };
    assert_eq!(l2.len(), 5);
    assert!(changed(&l1, &l2) <= 2, "{l1:#?} → {l2:#?}");
    assert_eq!(
        changed(&l1, &l2),
        1,
        "a changed file changes its own layer only"
    );
    assert_identical_import(&s, &out2, &v2);
    // The prior may also be the layout itself, outside the repository.
    let from_layout = s.encapsulate(
        "main",
        "v2-from-layout",
        &["--prior", &Repo::oci(&out1, "latest")],
    );
    assert_eq!(layer_digests(&from_layout), l2);

    // v3: a new file in a new directory, from v2 as prior.
    s.ocitree(&["import", &Repo::oci(&out2, "latest"), "app:v2"]);
    s.write("usr/d2/new/file", b"new in v3");
    let v3 = s.commit("main", &["-s", "v3"]);
    let out3 = s.encapsulate("main", "v3", &["--prior", "app:v2"]);
    let l3 = layer_digests(&out3);
    assert!(changed(&l2, &l3) <= 2, "{l2:#?} → {l3:#?}");
    assert_identical_import(&s, &out3, &v3);

    // Without a prior the split is deterministic too.
    let again = s.encapsulate(&v1, "v1-again", &["--max-layers", "5"]);
    assert_eq!(layer_digests(&again), l1);
}

/// Trees no image can carry back, and unknown revisions, fail with exit 2, naming the path
/// and the reason.
#[test]
fn untransportable_trees_are_refused() {
    let fails = |s: &Source, rev: &str| {
        let dest = format!("oci:{}", s.work.join(rev).display());
        let out = Command::new(bin())
            .arg("--repo")
            .arg(&s.repo)
            .args(["encapsulate", rev, &dest])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let s = Source::new();
    s.write("etc/.wh.passwd", b"");
    s.commit("wh", &[]);
    let err = fails(&s, "wh");
    assert!(
        err.contains("/etc/.wh.passwd") && err.contains("whiteout"),
        "{err}"
    );
    // libostree commits a symlink target that is not UTF-8 (with a warning) but no import
    // stores it: refused here, not written as an image its own import refuses.
    let t = Source::new();
    std::os::unix::fs::symlink(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"caf\xe9"),
        t.path("l"),
    )
    .unwrap();
    t.commit("bad-target", &[]);
    let err = fails(&t, "bad-target");
    assert!(
        err.contains("/l: its symlink target is not UTF-8") && err.contains("caf\\xe9"),
        "{err}"
    );
    let err = fails(&s, "no-such-ref");
    assert!(
        err.contains("no-such-ref") && err.contains("not found"),
        "{err}"
    );
}

/// An image whose labels carry another commit than its layers: the import fails naming both
/// checksums, and leaves the repository as it was.
#[test]
fn mismatched_commit_is_refused_and_nothing_committed() {
    let s = Source::new();
    s.write("a", b"a");
    s.commit("one", &[]);
    s.write("a", b"b");
    let two = s.commit("two", &[]);
    let one_img = s.encapsulate("one", "one", &[]);
    let two_img = s.encapsulate("two", "two", &[]);
    // Put commit two's labels on commit one's image.
    let (_, mut manifest, mut config) = image_of(&one_img);
    let (_, _, two_config) = image_of(&two_img);
    config["config"]["Labels"] = two_config["config"]["Labels"].clone();
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = sha256(&config_bytes);
    std::fs::write(blob_path(&one_img, &config_digest), &config_bytes).unwrap();
    manifest["config"]["digest"] = config_digest.into();
    manifest["config"]["size"] = config_bytes.len().into();
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = sha256(&manifest_bytes);
    std::fs::write(blob_path(&one_img, &manifest_digest), &manifest_bytes).unwrap();
    let mut index = json(&one_img.join("index.json"));
    index["manifests"][0]["digest"] = manifest_digest.into();
    index["manifests"][0]["size"] = manifest_bytes.len().into();
    std::fs::write(
        one_img.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();

    let fresh = Repo::new();
    let before = fresh.snapshot();
    let err = fresh.fails(&["import", &Repo::oci(&one_img, "latest"), "img"]);
    assert!(
        err.contains(&two) && err.contains("root dirtree"),
        "error must name the commit and what differs: {err}"
    );
    before.assert_unchanged(&fresh.path);
}

/// `flatpak build-import-bundle --oci` of `layout` into a new archive repo; returns the repo.
fn flatpak_import(layout: &Path) -> PathBuf {
    let repo = layout.with_extension("flatpak-repo");
    tools::ostree(&repo, &["init", "--mode=archive"]);
    tools::run(
        Command::new("flatpak")
            .args(["build-import-bundle", "--oci"])
            .arg(&repo)
            .arg(layout),
    );
    repo
}

/// A flatpak app commit made by the real `flatpak build-export` (from a hand-made build
/// directory: `build-init` would need an installed SDK, which this offline machine lacks).
/// Our encapsulation is accepted by `flatpak build-import-bundle --oci` and gives flatpak the
/// same tree (flatpak writes its own commit, adding `xa.alt-id`, so only the tree can match),
/// and `ocitree import` gives the identical commit. Conversely, `ocitree import` of `flatpak
/// build-bundle --oci` output gives flatpak's tree.
#[test]
fn flatpak_app_commits_both_ways() {
    tools::require("flatpak");
    let tmp = tempdir();
    let app = tmp.path().join("app");
    std::fs::create_dir_all(app.join("files/bin")).unwrap();
    std::fs::create_dir_all(app.join("export/share")).unwrap();
    std::fs::write(app.join("files/bin/hello"), "#!/bin/sh\necho hello\n").unwrap();
    std::fs::set_permissions(
        app.join("files/bin/hello"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        app.join("metadata"),
        "[Application]\nname=org.example.Hello\nruntime=org.example.Platform/x86_64/1\nsdk=org.example.Sdk/x86_64/1\ncommand=hello\n",
    )
    .unwrap();
    for i in 0..6 {
        let data: Vec<u8> = (0..20_000u32).map(|b| (b * (i + 3) % 251) as u8).collect();
        std::fs::write(app.join(format!("files/data{i}")), data).unwrap();
    }
    let repo = tmp.path().join("flatpak-repo");
    tools::ostree(&repo, &["init", "--mode=archive"]);
    tools::run(
        Command::new("flatpak")
            .arg("build-export")
            .arg(&repo)
            .arg(&app),
    );
    let fref = "app/org.example.Hello/x86_64/master";
    let commit = tools::ostree(&repo, &["rev-parse", fref])
        .trim()
        .to_string();
    let tree = content_checksum(&repo, &commit);

    // ocitree → flatpak
    // `ocitree encapsulate` of the flatpak ref into oci:DIR:REF, with `extra` options
    let encapsulate = |dir: &Path, extra: &[&str]| {
        let out = Command::new(bin())
            .arg("--repo")
            .arg(&repo)
            .args([
                "encapsulate",
                fref,
                &format!("oci:{}:{fref}", dir.display()),
            ])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    let ours = tmp.path().join("ours");
    encapsulate(&ours, &[]);
    let (_, _, config) = image_of(&ours);
    let labels = &config["config"]["Labels"];
    assert_eq!(labels["org.flatpak.ref"], fref);
    assert!(
        labels["org.flatpak.metadata"]
            .as_str()
            .unwrap()
            .contains("name=org.example.Hello")
    );
    assert_eq!(content_checksum(&flatpak_import(&ours), fref), tree);
    let fresh = Repo::new();
    let r = fresh.import(&Repo::oci(&ours, fref), "hello");
    assert_eq!(
        r.commit(),
        commit,
        "ocitree import gives the identical commit"
    );
    // flatpak takes a split image too
    let split = tmp.path().join("split");
    encapsulate(&split, &["--max-layers", "3"]);
    assert_eq!(layer_digests(&split).len(), 3);
    assert_eq!(content_checksum(&flatpak_import(&split), fref), tree);

    // flatpak → ocitree
    let theirs = tmp.path().join("theirs");
    tools::run(
        Command::new("flatpak")
            .args(["build-bundle", "--oci"])
            .arg(&repo)
            .arg(&theirs)
            .arg("org.example.Hello"),
    );
    let r = fresh.import(&format!("oci:{}", theirs.display()), "from-flatpak");
    assert_eq!(content_checksum(&fresh.path, &r.commit()), tree);
    tools::fsck(&fresh.path);
}

/// Detached metadata has no checksum: an image carrying a commit the repository already has
/// must not replace that commit's signatures.
#[test]
fn existing_detached_metadata_is_kept() {
    let (a, b) = (Source::new(), Source::new());
    let args = |sig: &'static str| ["-s", "same commit", "--timestamp=2024-01-01T00:00:00Z", sig];
    for s in [&a, &b] {
        s.write("f", b"same tree");
    }
    let ca = a.commit("main", &args("--add-detached-metadata-string=sig=ONE"));
    let cb = b.commit("main", &args("--add-detached-metadata-string=sig=TWO"));
    assert_eq!(ca, cb, "detached metadata is not part of the checksum");
    let from_b = b.encapsulate("main", "img", &[]);
    let r = a.ocitree(&["import", &Repo::oci(&from_b, "latest"), "img"]);
    assert_eq!(r.commit(), ca);
    let sig = tools::ostree(&a.repo, &["show", "--print-detached-metadata-key=sig", &ca]);
    assert!(sig.contains("ONE"), "{sig}");
    // where the commit is new, the image's detached metadata is written
    let fresh = Repo::new();
    fresh.import(&Repo::oci(&from_b, "latest"), "img");
    let sig = tools::ostree(
        &fresh.path,
        &["show", "--print-detached-metadata-key=sig", &ca],
    );
    assert!(sig.contains("TWO"), "{sig}");
}

/// --compression zstd (and none) gives other blobs and media types, the same diff_ids, and
/// the identical commit back; twice the same digests.
#[test]
fn compression_choice_keeps_the_identical_commit() {
    let s = Source::new();
    rich_tree(&s);
    let c = s.commit("main", &["-s", "x"]);
    let gz = s.encapsulate(&c, "gz", &[]);
    for (name, format, media) in [
        ("zs", "zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("none", "none", "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let layout = s.encapsulate(&c, name, &["--compression", format]);
        let again = s.encapsulate(&c, &format!("{name}2"), &["--compression", format]);
        assert_eq!(
            image_of(&layout).0,
            image_of(&again).0,
            "{format}: reproducible"
        );
        let (_, m, config) = image_of(&layout);
        assert_eq!(m["layers"][0]["mediaType"], media);
        assert_eq!(
            config["rootfs"],
            image_of(&gz).2["rootfs"],
            "{format}: same diff_ids"
        );
        assert_ne!(layer_digests(&layout), layer_digests(&gz));
        assert_identical_import(&s, &layout, &c);
    }
}
