//! Export of imported images: same config, byte-identical layer tars (diff_ids), checked
//! with skopeo, umoci and oci-image-tool.

use std::process::Command;

use serde_json::Value;

use crate::util::*;

/// Imports LAYOUT:TAG, exports it, and checks config, diff_ids and the unpacked tree.
fn roundtrip(layout: &std::path::Path, tag: &str) -> (Repo, std::path::PathBuf, tempfile::TempDir) {
    roundtrip_with(layout, tag, &[])
}

/// [`roundtrip`] with extra `export` options.
fn roundtrip_with(
    layout: &std::path::Path,
    tag: &str,
    options: &[&str],
) -> (Repo, std::path::PathBuf, tempfile::TempDir) {
    let repo = Repo::new();
    repo.import(&Repo::oci(layout, tag), "img");
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let dest = format!("oci:{}:exported", out.display());
    let mut args = vec!["export", "img", dest.as_str()];
    args.extend(options);
    let r = repo.ok(&args);
    assert!(r.stdout.contains("diff_ids identical"), "{r:?}");
    // a build without exact-gzip says so when it re-compresses a gzip layer for want of it
    if !cfg!(feature = "exact-gzip") {
        for line in r
            .stdout
            .lines()
            .filter(|l| l.contains("no exact-gzip data"))
        {
            assert!(
                line.contains("built without the exact-gzip feature"),
                "{r:?}"
            );
        }
    }
    let (orig, _) = manifest_of(layout, tag);
    let (new, _) = manifest_of(&out, "exported");
    assert_eq!(
        new["config"]["digest"], orig["config"]["digest"],
        "config must be byte-identical"
    );
    let config: Value =
        serde_json::from_slice(&blob(&out, new["config"]["digest"].as_str().unwrap())).unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    for (l, diff_id) in new["layers"].as_array().unwrap().iter().zip(diff_ids) {
        let tar = layer_tar(&out, l["digest"].as_str().unwrap());
        assert_eq!(
            sha256(&tar),
            diff_id.as_str().unwrap(),
            "layer tar is not byte-identical"
        );
    }
    tools::require("skopeo");
    tools::run(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:exported", out.display())),
    );
    // oci-image-tool (Debian 12: 1.0.0-rc) predates image-spec 1.1, which added tar+zstd.
    let zstd = options.contains(&"zstd");
    tools::require("oci-image-tool");
    if !zstd {
        let v = tools::run(
            Command::new("oci-image-tool")
                .args(["validate", "--type", "image", "--ref", "name=exported"])
                .arg(&out),
        );
        assert!(
            String::from_utf8_lossy(&v.stdout).contains("Validation succeeded"),
            "{v:?}"
        );
    }
    // the export imports into a fresh repo as the same tree, file objects and all
    let fresh = Repo::new();
    fresh.import(&dest, "back");
    let ls = |r: &Repo, rev: &str| tools::ostree(&r.path, &["ls", "-R", "-C", rev]);
    assert_eq!(
        ls(&fresh, "ocitree/image/back"),
        ls(&repo, "ocitree/image/img")
    );
    // umoci (0.4.7: no zstd) unpacks the export to the same tree as the original
    if !zstd {
        let a = tools::umoci_unpack(layout, tag, &tmp.path().join("a"));
        let b = tools::umoci_unpack(&out, "exported", &tmp.path().join("b"));
        tree::assert_same(&b, &a);
    }
    (repo, out, tmp)
}

#[test]
fn small_and_quirks_export_with_identical_diff_ids() {
    let imgs = wild_images();
    roundtrip(&imgs.join("small"), "latest");
    roundtrip(&imgs.join("quirks"), "latest");
}

/// Uncompressed layers are rebuilt bit for bit, so every digest, manifest included, stays.
#[test]
fn uncompressed_image_keeps_its_manifest_digest() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let entries = vec![
        dir_meta("etc", 0o750, 0, 0, &[("user.x", b"1")]),
        file("etc/a", b"a"),
        hardlink("etc/b", "etc/a"),
        symlink("l", "etc/a"),
    ];
    let mut l = Layout::new(&dir);
    let m = l.image(
        &[
            Layer::with(tar_of(&entries), Comp::None, false),
            Layer::with(tar_of(&[whiteout("etc/a")]), Comp::None, false),
        ],
        false,
    );
    l.add(m.clone(), Some("latest"), None);
    let (repo, out, _t) = roundtrip(&dir, "latest");
    let (_, digest) = manifest_of(&out, "exported");
    assert_eq!(digest, m["digest"].as_str().unwrap());
    // inspect said so beforehand
    let v: Value = serde_json::from_str(&repo.ok(&["inspect", "img"]).stdout).unwrap();
    for l in v["layers"].as_array().unwrap() {
        assert_eq!(l["export_keeps_blob"], true, "{l}");
        assert!(l["export_note"].is_null(), "{l}");
    }
    // and the export imports back to the same tree, reusing every layer
    let again = repo.import(&format!("oci:{}:exported", out.display()), "again");
    assert_eq!(again.layers(), (0, 2));
}

/// Entries OSTree cannot hold (device nodes, FIFOs) come back from the tar-split.
#[test]
fn device_nodes_survive_export() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    Layout::single(
        &dir,
        &[Layer::new(&[
            file("dev/keep", b"k"),
            E::Char {
                path: "dev/null".into(),
                major: 1,
                minor: 3,
            },
            E::Fifo {
                path: "run/fifo".into(),
            },
        ])],
    );
    roundtrip(&dir, "latest");
}

#[test]
fn export_to_archives() {
    let imgs = wild_images();
    let repo = Repo::new();
    repo.import(&Repo::oci(&imgs.join("small"), "latest"), "small");
    let tmp = tempdir();
    let file = tmp.path().join("small.tar");
    repo.ok(&[
        "export",
        "small",
        &format!("oci-archive:{}:v1", file.display()),
    ]);
    tools::run(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci-archive:{}:v1", file.display())),
    );
    let out = repo
        .cmd()
        .args(["export", "small", "oci-archive:-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Manifest:"),
        "summary goes to stderr"
    );
    let piped = tmp.path().join("piped.tar");
    std::fs::write(&piped, &out.stdout).unwrap();
    // the archive re-imports to the same tree
    let fresh = Repo::new();
    let a = fresh
        .import(&format!("oci-archive:{}:v1", file.display()), "a")
        .commit();
    let b = fresh
        .import(&format!("oci-archive:{}", piped.display()), "b")
        .commit();
    let ls = |c: &str| tools::ostree(&fresh.path, &["ls", "-R", "-C", c]);
    assert_eq!(ls(&a), ls(&b));
    assert_eq!(
        ls(&a),
        tools::ostree(&repo.path, &["ls", "-R", "-C", "ocitree/image/small"])
    );
}

/// `--compression` recompresses every layer (media types follow), keeps the diff_ids, and is
/// reproducible: the same export twice gives the same manifest digest.
#[test]
fn chosen_compression_is_applied_and_reproducible() {
    let imgs = wild_images();
    let small = imgs.join("small");
    for (format, magic, media) in [
        (
            "zstd",
            &[0x28u8, 0xb5, 0x2f, 0xfd][..],
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
        (
            "gzip",
            &[0x1f, 0x8b][..],
            "application/vnd.oci.image.layer.v1.tar+gzip",
        ),
        ("none", &[][..], "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let (repo, out, tmp) = roundtrip_with(&small, "latest", &["--compression", format]);
        let (m, digest) = manifest_of(&out, "exported");
        for l in m["layers"].as_array().unwrap() {
            assert_eq!(l["mediaType"], media, "{format}");
            let data = blob(&out, l["digest"].as_str().unwrap());
            assert!(data.starts_with(magic), "{format}: not {format} data");
        }
        let again = tmp.path().join("again");
        repo.ok(&[
            "export",
            "img",
            &format!("oci:{}:exported", again.display()),
            "--compression",
            format,
        ]);
        assert_eq!(
            manifest_of(&again, "exported").1,
            digest,
            "{format} export is not reproducible"
        );
    }
    // levels change the bytes, not the tars
    let (repo, _, tmp) = roundtrip_with(
        &small,
        "latest",
        &["--compression", "gzip", "--compression-level", "1"],
    );
    // docker archives hold plain tars: asking for compression is an error, not a silent no-op
    let r = repo.fails(&[
        "export",
        "img",
        &format!("docker-archive:{}", tmp.path().join("d.tar").display()),
        "--compression",
        "zstd",
    ]);
    assert!(r.contains("docker-archive"), "{r}");
}

/// A zstd:chunked layer (as skopeo writes it) is re-compressed on export: the annotations that
/// locate its table of contents in the original bytes go, every other annotation stays, and
/// the manifest is otherwise the one imported.
#[test]
fn annotations_locating_data_in_the_original_blob_are_dropped_with_it() {
    tools::require("skopeo");
    let tmp = tempdir();
    let src = tmp.path().join("chunked");
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    tools::run(
        Command::new("skopeo")
            .args(["copy", "--dest-compress-format", "zstd:chunked"])
            // (not the umoci-made images: skopeo 1.9.3's zstd:chunked writer drops their tars'
            // trailing zero records, and the config's diff_ids with them)
            .arg(Repo::oci(&sample, "v2"))
            .arg(Repo::oci(&src, "skopeo")),
    );
    // an annotation of another kind on the first layer, kept by the export
    let (mut manifest, _) = manifest_of(&src, "skopeo");
    manifest["layers"][0]["annotations"]["org.example.note"] = "kept".into();
    let mut layout = Layout::new(&src);
    let (digest, size) = layout.put(&serde_json::to_vec(&manifest).unwrap());
    let desc = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest, "size": size,
    });
    layout.add(desc, Some("chunked"), None).write_index();
    let chunked = |m: &Value| {
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| {
                l["annotations"].as_object().is_some_and(|a| {
                    a.keys()
                        .any(|k| k.starts_with("io.containers.zstd-chunked."))
                })
            })
            .count()
    };
    assert_eq!(
        chunked(&manifest),
        manifest["layers"].as_array().unwrap().len()
    );

    let repo = Repo::new();
    repo.import(&Repo::oci(&src, "chunked"), "img");
    let out = tmp.path().join("out");
    let r = repo.ok(&["export", "img", &Repo::oci(&out, "exported")]);
    assert!(
        r.stdout
            .contains("dropped annotations io.containers.zstd-chunked."),
        "{r:?}"
    );
    let (exported, _) = manifest_of(&out, "exported");
    // the manifest imported, with the new blobs and without the zstd:chunked annotations
    let mut expected = manifest.clone();
    for (want, got) in expected["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(exported["layers"].as_array().unwrap())
    {
        assert_ne!(
            want["digest"], got["digest"],
            "zstd layers are re-compressed"
        );
        want["digest"] = got["digest"].clone();
        want["size"] = got["size"].clone();
        let a = want["annotations"].as_object_mut().unwrap();
        a.retain(|k, _| !k.starts_with("io.containers.zstd-chunked."));
        if a.is_empty() {
            want.as_object_mut().unwrap().remove("annotations");
        }
    }
    assert_eq!(exported, expected);
    assert_eq!(
        exported["layers"][0]["annotations"]["org.example.note"],
        "kept"
    );
    // the export reads back as the same tree
    let fresh = Repo::new();
    fresh.import(&Repo::oci(&out, "exported"), "back");
    let ls = |r: &Repo, rev: &str| tools::ostree(&r.path, &["ls", "-R", "-C", rev]);
    assert_eq!(
        ls(&fresh, "ocitree/image/back"),
        ls(&repo, "ocitree/image/img")
    );
}
