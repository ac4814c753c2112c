use crate::util::*;

#[test]
fn small_image_matches_umoci() {
    let imgs = wild_images();
    let repo = Repo::new();
    let r = repo.import(&Repo::oci(&imgs.join("small"), "latest"), "small");
    assert_eq!(r.layers(), (3, 0));
    repo.assert_matches_umoci(&r.commit(), &imgs.join("small"), "latest");
    let refs = repo.refs();
    assert!(
        refs.contains(&"ocitree/image/small".to_string()),
        "{refs:?}"
    );
    assert_eq!(
        refs.iter()
            .filter(|r| r.starts_with("ocitree/blob/sha256/"))
            .count(),
        3,
        "{refs:?}"
    );
    assert_eq!(
        refs.iter()
            .filter(|r| r.starts_with("ocitree/diffid/sha256/"))
            .count(),
        3,
        "{refs:?}"
    );
}

/// umoci 0.4.7 `insert` layers: tars without the last member's padding and end blocks.
#[test]
fn quirks_image_with_truncated_tars_matches_umoci() {
    let imgs = wild_images();
    let repo = Repo::new();
    let r = repo.import(&Repo::oci(&imgs.join("quirks"), "latest"), "quirks");
    assert_eq!(r.layers(), (5, 0));
    repo.assert_matches_umoci(&r.commit(), &imgs.join("quirks"), "latest");
}

#[test]
fn shared_layers_are_reused_and_reimport_writes_nothing() {
    let imgs = wild_images();
    let repo = Repo::new();
    repo.import(&Repo::oci(&imgs.join("small"), "latest"), "small");
    // quirks shares its first two layers with small
    let q = repo.import(&Repo::oci(&imgs.join("quirks"), "latest"), "quirks");
    assert_eq!(q.layers(), (3, 2));
    let snap = repo.snapshot();
    let again = repo.import(&Repo::oci(&imgs.join("quirks"), "latest"), "quirks");
    assert_eq!(again.layers(), (0, 5));
    assert_eq!(again.commit(), q.commit());
    snap.assert_unchanged(&repo.path);
}

/// An import onto a name that held another image says which commit it replaced (text and
/// JSON); importing the same image again replaces nothing.
#[test]
fn a_name_moved_to_another_image_says_what_it_replaced() {
    let imgs = wild_images();
    let repo = Repo::new();
    let small = repo.import(&Repo::oci(&imgs.join("small"), "latest"), "x");
    assert!(!small.stdout.contains("Replaced:"), "{small:?}");
    let quirks = repo.import(&Repo::oci(&imgs.join("quirks"), "latest"), "x");
    assert!(
        quirks.field("Replaced").starts_with(&small.commit()),
        "{quirks:?}"
    );
    let src = Repo::oci(&imgs.join("quirks"), "latest");
    let again = repo.ok(&["import", "--json", &src, "x"]);
    let last: serde_json::Value =
        serde_json::from_str(again.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "imported", "{again:?}");
    assert_eq!(last["replaced"], serde_json::Value::Null, "{again:?}");
    let src = Repo::oci(&imgs.join("small"), "latest");
    let back = repo.ok(&["import", "--json", &src, "x"]);
    let last: serde_json::Value =
        serde_json::from_str(back.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["replaced"], quirks.commit().as_str(), "{back:?}");
}

/// A layer already in the repo is never read: the blobs can be gone.
#[test]
fn present_layers_are_not_read() {
    let imgs = wild_images();
    let repo = Repo::new();
    let first = repo.import(&Repo::oci(&imgs.join("small"), "latest"), "small");
    let tmp = tempdir();
    let copy = tmp.path().join("small");
    tools::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(imgs.join("small"))
            .arg(&copy),
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "small"]).stdout).unwrap();
    for l in manifest["manifest"]["layers"].as_array().unwrap() {
        let d = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
        std::fs::remove_file(copy.join("blobs/sha256").join(d)).unwrap();
    }
    let other = repo.import(&Repo::oci(&copy, "latest"), "small-copy");
    assert_eq!(other.layers(), (0, 3));
    // the same image: the same commit, whatever its name and where it came from
    assert_eq!(other.commit(), first.commit());
}

/// A layer commit stored under other layer rules (an earlier ocitree's, here one without the
/// `ocitree.layer.rules` version and with a wrong tree) is not reused: it is read again from
/// its blob, on an import under a new name and on a re-import of the same image, and the
/// image and layer commits are those a fresh repository gets.
#[test]
fn layers_stored_under_other_rules_are_read_again() {
    let imgs = wild_images();
    let src = Repo::oci(&imgs.join("small"), "latest");
    let fresh = Repo::new();
    let want = fresh.import(&src, "small").commit();
    let repo = Repo::new();
    repo.import(&src, "small");
    let manifest: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "small"]).stdout).unwrap();
    let digest = manifest["manifest"]["layers"][0]["digest"]
        .as_str()
        .unwrap();
    let diff_id = manifest["config"]["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap();
    let blob_ref = format!("ocitree/blob/sha256/{}", &digest[7..]);
    let good_layer = tools::ostree(&repo.path, &["rev-parse", &blob_ref]);
    // What an older build could have left: same refs and records, another tree, no version.
    let tmp = tempdir();
    std::fs::write(tmp.path().join("stale"), b"merged under other rules\n").unwrap();
    let stale = |repo: &Repo| {
        tools::ostree(
            &repo.path,
            &[
                "commit",
                "--branch",
                &blob_ref,
                "--tree",
                &format!("dir={}", tmp.path().display()),
                "--add-metadata-string",
                &format!("ocitree.layer.digest={digest}"),
                "--add-metadata-string",
                &format!("ocitree.layer.diff-id={diff_id}"),
                "--add-metadata-string",
                "ocitree.layer.media-type=application/vnd.oci.image.layer.v1.tar+gzip",
            ],
        );
    };
    // A re-import of the same name (not "up to date"), then an import under a new name.
    for name in ["small", "other"] {
        stale(&repo);
        // `check` tells what an import would read: that layer again.
        let checked = repo.ok(&["check", &src, name]).stdout;
        assert!(
            checked.contains("(2 present, 1 to fetch"),
            "{name}: {checked}"
        );
        let status = match name {
            "small" => "Status:   same manifest, tree to build again (1 layer(s) to read)\n",
            _ => "Status:   not imported\n",
        };
        assert!(checked.contains(status), "{name}: {checked}");
        let r = repo.import(&src, name);
        assert_eq!(r.layers(), (1, 2), "{name}");
        assert_eq!(r.commit(), want, "{name}");
        let layer = tools::ostree(&repo.path, &["rev-parse", &blob_ref]);
        assert_eq!(layer, good_layer, "{name}");
    }
    tools::fsck(&repo.path);
}

/// "Up to date" means the stored tree is the one this import builds: after an import of the
/// same manifest under the same name with a layer selection or per-dir layers, a plain
/// import builds the merged tree again (every layer reused) and gives the commit a fresh
/// repository gets; `check` says so first. (Other readings: `formats::`.)
#[test]
fn a_tree_built_another_way_is_built_again() {
    let imgs = wild_images();
    let src = Repo::oci(&imgs.join("small"), "latest");
    let want = Repo::new().import(&src, "small").commit();
    let repo = Repo::new();
    // every layer stored: the tree alone is built again
    repo.import(&src, "y");
    for other in [&["--layer-index", "0"][..], &["--layers", "per-dir"]] {
        let args = [&["import"], other, &[src.as_str(), "x"]].concat();
        let r = repo.ok(&args);
        assert_ne!(r.commit(), want, "{other:?}");
        let checked = repo.ok(&["check", &src, "x"]).stdout;
        assert!(
            checked.contains("Status:   same manifest, tree to build again (0 layer(s) to read)\n"),
            "{other:?}: {checked}"
        );
        let r = repo.import(&src, "x");
        assert_eq!(r.commit(), want, "{other:?}");
        assert_eq!(r.layers(), (0, 3), "{other:?}");
        let checked = repo.ok(&["check", &src, "x"]).stdout;
        assert!(
            checked.contains("Status:   up to date\n"),
            "{other:?}: {checked}"
        );
        assert_eq!(repo.import(&src, "x").commit(), want, "{other:?}");
    }
    tools::fsck(&repo.path);
}

/// A tree merged under other merge rules (an earlier ocitree's, whose merge a fix has changed
/// since) is merged again: the record of how the tree was built names the merge rules, so
/// neither `check` nor `import` takes the stored tree for up to date.
#[test]
fn a_tree_merged_under_other_merge_rules_is_merged_again() {
    use ocitree::glib::prelude::*;
    let imgs = wild_images();
    let src = Repo::oci(&imgs.join("small"), "latest");
    let repo = Repo::new();
    let commit = repo.import(&src, "x").commit();
    // What an earlier build recorded: no merge rules.
    let r = ocitree::ostree::Repo::new_for_path(&repo.path);
    r.open(ocitree::gio::Cancellable::NONE).unwrap();
    let detached = r
        .read_commit_detached_metadata(&commit, ocitree::gio::Cancellable::NONE)
        .unwrap()
        .unwrap();
    let dict = ocitree::glib::VariantDict::new(Some(&detached));
    let mut built: std::collections::BTreeMap<String, String> =
        dict.lookup("ocitree.built").unwrap().unwrap();
    let record = built.get_mut("x").unwrap();
    let merge = format!(" merge={}", ocitree::merge::VERSION);
    assert!(record.contains(&merge), "{record}");
    *record = record.replacen(&merge, "", 1);
    dict.insert_value("ocitree.built", &built.to_variant());
    r.write_commit_detached_metadata(&commit, Some(&dict.end()), ocitree::gio::Cancellable::NONE)
        .unwrap();
    let checked = repo.ok(&["check", &src, "x"]).stdout;
    assert!(
        checked.contains("Status:   same manifest, tree to build again (0 layer(s) to read)\n"),
        "{checked}"
    );
    let again = repo.import(&src, "x");
    assert_eq!((again.commit(), again.layers()), (commit, (0, 3)));
    let checked = repo.ok(&["check", &src, "x"]).stdout;
    assert!(checked.contains("Status:   up to date\n"), "{checked}");
    tools::fsck(&repo.path);
}

/// An image commit is a function of the image alone: the same image from a relative and an
/// absolute path, under two names, after `rm` + `prune`, gives one commit; where each name
/// came from is kept beside it (detached metadata) and shown by `inspect`.
#[test]
fn image_commit_does_not_depend_on_name_or_source() {
    let imgs = wild_images();
    let repo = Repo::new();
    let abs = Repo::oci(&imgs.join("small"), "latest");
    let rel = "oci:small:latest".to_string();
    let a = repo.import(&abs, "a");
    let b = output(
        repo.cmd()
            .args(["import", &rel, "b"])
            .current_dir(imgs)
            .output()
            .unwrap(),
    );
    assert_eq!(b.code, 0, "{b:?}");
    assert_eq!(a.commit(), b.commit());
    let source = |name: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&repo.ok(&["inspect", name]).stdout).unwrap();
        v["source"].as_str().unwrap().to_string()
    };
    assert_eq!(source("a"), abs);
    assert_eq!(source("b"), rel);
    // a re-import from elsewhere changes nothing but the source shown
    let tmp = tempdir();
    let copy = tmp.path().join("copy");
    tools::run(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(imgs.join("small"))
            .arg(&copy),
    );
    let moved = Repo::oci(&copy, "latest");
    assert_eq!(repo.import(&moved, "a").commit(), a.commit());
    assert_eq!(source("a"), moved);
    // gone and back: the very same commit, in this repo and in a fresh one
    repo.ok(&["rm", "a"]);
    repo.ok(&["rm", "b"]);
    repo.ok(&["prune"]);
    assert_eq!(repo.import(&abs, "c").commit(), a.commit());
    assert_eq!(source("c"), abs);
    assert_eq!(Repo::new().import(&moved, "d").commit(), a.commit());
    tools::fsck(&repo.path);
}

#[test]
fn archive_repo_gives_the_same_commit() {
    let imgs = wild_images();
    let bare = Repo::new();
    let archive = Repo::with_mode("archive");
    let src = Repo::oci(&imgs.join("small"), "latest");
    let a = bare.import(&src, "small");
    let b = archive.import(&src, "small");
    assert_eq!(a.commit(), b.commit());
    archive.assert_matches_umoci(&b.commit(), &imgs.join("small"), "latest");
}

#[test]
fn oci_archive_file_and_stdin() {
    let imgs = wild_images();
    let tmp = tempdir();
    let tar = tmp.path().join("small.tar");
    archive_of(&imgs.join("small"), &tar);
    let repo = Repo::new();
    let dir = repo.import(&Repo::oci(&imgs.join("small"), "latest"), "from-dir");
    let file = repo.import(
        &format!("oci-archive:{}:latest", tar.display()),
        "from-file",
    );
    let stdin = repo
        .cmd()
        .args(["import", "oci-archive:-", "from-stdin"])
        .stdin(std::fs::File::open(&tar).unwrap())
        .output()
        .unwrap();
    assert!(stdin.status.success(), "{stdin:?}");
    let stdin_commit = String::from_utf8_lossy(&stdin.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Commit:").map(|c| c.trim().to_string()))
        .unwrap();
    let tree = |c: &str| tools::ostree(&repo.path, &["ls", "-R", "-C", c]);
    assert_eq!(tree(&dir.commit()), tree(&file.commit()));
    assert_eq!(tree(&dir.commit()), tree(&stdin_commit));
    assert_eq!(file.layers(), (0, 3));
}

#[test]
fn default_name_comes_from_the_source() {
    let imgs = wild_images();
    let repo = Repo::new();
    let r = repo.ok(&["import", &Repo::oci(&imgs.join("small"), "latest")]);
    assert_eq!(r.field("Image"), "small:latest");
    assert!(
        repo.refs()
            .contains(&"ocitree/image/small_3Alatest".to_string())
    );
}

/// The commit timestamp is the config's `created`.
#[test]
fn commit_time_is_config_created() {
    let tmp = tempdir();
    Layout::single(&tmp.path().join("img"), &[Layer::new(&[file("a", b"1")])]);
    let repo = Repo::new();
    let r = repo.import(&Repo::oci(&tmp.path().join("img"), "latest"), "img");
    let show = tools::ostree(&repo.path, &["show", &r.commit()]);
    assert!(show.contains("Date:  2023-11-14 22:13:20 +0000"), "{show}");
}

/// The README demo's sample: v2 shares two layers with v1.
#[test]
fn sample_images_share_layers() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    let repo = Repo::new();
    let v1 = repo.import(&Repo::oci(&sample, "v1"), "sample:v1");
    assert_eq!(v1.layers(), (2, 0));
    let v2 = repo.import(&Repo::oci(&sample, "v2"), "sample:v2");
    assert_eq!(v2.layers(), (1, 2));
    repo.assert_matches_umoci(&v1.commit(), &sample, "v1");
    repo.assert_matches_umoci(&v2.commit(), &sample, "v2");
}
