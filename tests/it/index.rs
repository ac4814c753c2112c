//! Index resolution.

use crate::util::*;

fn image(l: &Layout, content: &[u8]) -> serde_json::Value {
    l.image(&[Layer::new(&[file("which", content)])], false)
}

fn which(repo: &Repo, args: &[&str]) -> String {
    let r = repo.ok(args);
    let name = r.field("Image");
    repo.ok(&["cat", &name, "/which"]).stdout
}

#[test]
fn by_tag_digest_nested_and_platform() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let v1 = image(&l, b"v1");
    let v2 = image(&l, b"v2");
    let arm64 = image(&l, b"arm64");
    let armv7 = image(&l, b"armv7");
    let amd64 = image(&l, b"amd64");
    let mut p64 = arm64.clone();
    p64["platform"] = platform_json("linux/arm64/v8");
    let mut p7 = armv7.clone();
    p7["platform"] = platform_json("linux/arm/v7");
    let mut pamd = amd64.clone();
    pamd["platform"] = platform_json("linux/amd64");
    let nested = l.nested_index(vec![p64, p7, pamd]);
    l.add(v1, Some("v1"), None)
        .add(v2.clone(), Some("v2"), None)
        .add(nested, Some("multi"), None);
    let repo = Repo::new();
    let src = |s: &str| format!("oci:{}{s}", dir.display());
    assert_eq!(which(&repo, &["import", &src(":v1"), "a"]), "v1");
    assert_eq!(which(&repo, &["import", &src(":v2"), "b"]), "v2");
    let d = v2["digest"].as_str().unwrap();
    assert_eq!(which(&repo, &["import", &src(&format!("@{d}")), "c"]), "v2");
    assert_eq!(
        which(
            &repo,
            &[
                "import",
                "--platform",
                "linux/arm64/v8",
                &src(":multi"),
                "d"
            ]
        ),
        "arm64"
    );
    assert_eq!(
        which(
            &repo,
            &["import", "--platform", "linux/arm64", &src(":multi"), "e"]
        ),
        "arm64"
    );
    assert_eq!(
        which(
            &repo,
            &["import", "--platform", "linux/arm/v7", &src(":multi"), "f"]
        ),
        "armv7"
    );
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(which(&repo, &["import", &src(":multi"), "g"]), "amd64");
    }
    // a digest inside the nested index
    let d7 = armv7["digest"].as_str().unwrap();
    assert_eq!(
        which(&repo, &["import", &src(&format!("@{d7}")), "h"]),
        "armv7"
    );
    let err = repo.fails(&["import", "--platform", "linux/s390x", &src(":multi"), "i"]);
    assert!(
        err.contains("no manifest for platform linux/s390x"),
        "{err}"
    );
    let err = repo.fails(&["import", &src(":nope"), "j"]);
    assert!(
        err.contains("\"nope\"") && err.contains("not found"),
        "{err}"
    );
}

/// Several entries for one platform: the first is taken (the image-index spec's "first
/// matching entry SHOULD be used"), a note names the others and how to pick them by digest
/// (a JSON event with --json); an explicit @DIGEST still picks another one.
#[test]
fn first_of_several_for_a_platform() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let a = image(&l, b"a");
    let b = image(&l, b"b");
    let c = image(&l, b"c");
    let arm = image(&l, b"arm");
    l.add(arm, None, Some("linux/arm64"))
        .add(a.clone(), None, Some("linux/amd64"))
        .add(b.clone(), None, Some("linux/amd64"))
        .add(c.clone(), None, Some("linux/amd64"));
    let repo = Repo::new();
    let src = format!("oci:{}", dir.display());
    let r = repo.ok(&["import", "--platform", "linux/amd64", &src, "x"]);
    assert_eq!(repo.ok(&["cat", "x", "/which"]).stdout, "a");
    let (da, db, dc) = (
        a["digest"].as_str().unwrap(),
        b["digest"].as_str().unwrap(),
        c["digest"].as_str().unwrap(),
    );
    assert!(
        r.stderr.starts_with("note: ")
            && r.stderr.contains("3 manifests for platform linux/amd64")
            && r.stderr.contains(da)
            && r.stderr.contains(&format!("{src}@{db}"))
            && r.stderr.contains(&format!("{src}@{dc}")),
        "{r:?}"
    );
    // --json: the same as an event, before the result
    let r = repo.ok(&["import", "--json", "--platform", "linux/amd64", &src, "y"]);
    assert!(r.stderr.is_empty(), "{r:?}");
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        events[0],
        serde_json::json!({
            "event": "platform-first-of-several",
            "image": src,
            "platform": "linux/amd64",
            "chosen": da,
            "others": [format!("{src}@{db}"), format!("{src}@{dc}")],
        })
    );
    // the host's platform, when it is amd64, takes the same rule
    if std::env::consts::ARCH == "x86_64" {
        let r = repo.ok(&["import", &src, "z"]);
        assert_eq!(repo.ok(&["cat", "z", "/which"]).stdout, "a");
        assert!(r.stderr.contains(db), "{r:?}");
    }
    // an explicit digest wins, and needs no note
    let r = repo.ok(&["import", &format!("{src}@{db}"), "w"]);
    assert_eq!(repo.ok(&["cat", "w", "/which"]).stdout, "b");
    assert!(r.stderr.is_empty(), "{r:?}");
    // an explicit platform wins over order
    repo.ok(&["import", "--platform", "linux/arm64", &src, "v"]);
    assert_eq!(repo.ok(&["cat", "v", "/which"]).stdout, "arm");
}

/// Several manifests and nothing to choose by (no platform, no tag asked): an error listing
/// them, never a guess; the repository unchanged.
#[test]
fn ambiguous_index_lists_candidates() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let a = image(&l, b"a");
    let b = image(&l, b"b");
    l.add(a.clone(), Some("a"), None)
        .add(b.clone(), Some("b"), None);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &format!("oci:{}", dir.display()), "x"]);
    for d in [&a["digest"], &b["digest"]] {
        assert!(err.contains(d.as_str().unwrap()), "{err}");
    }
    assert!(err.contains("@DIGEST"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// Indexes nested deeper than 8: a clear error (by tag and by digest), not a stack overflow.
#[test]
fn nesting_is_limited() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let chain = |l: &Layout, img: &serde_json::Value, n: usize| {
        let mut desc = img.clone();
        desc["platform"] = platform_json("linux/amd64");
        for _ in 0..n {
            desc = l.nested_index(vec![desc]);
        }
        desc
    };
    // 8 levels of index under index.json: still followed; 9: refused
    let eight = chain(&l, &image(&l, b"deep"), 8);
    let img = image(&l, b"deeper");
    let nine = chain(&l, &img, 9);
    l.add(eight, Some("eight"), None)
        .add(nine, Some("nine"), None);
    let repo = Repo::new();
    let src = |s: &str| format!("oci:{}{s}", dir.display());
    repo.ok(&["import", "--platform", "linux/amd64", &src(":eight"), "a"]);
    assert_eq!(repo.ok(&["cat", "a", "/which"]).stdout, "deep");
    let snap = repo.snapshot();
    let err = repo.fails(&["import", "--platform", "linux/amd64", &src(":nine"), "b"]);
    assert!(err.contains("nested more than 8 deep"), "{err}");
    let d = img["digest"].as_str().unwrap();
    let err = repo.fails(&["import", &src(&format!("@{d}")), "c"]);
    assert!(err.contains("nested more than 8 deep"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// An index entry whose mediaType says index but which points at a manifest: an error saying
/// the entry's mediaType does not match the document (it used to read as an empty index:
/// "0 manifests match; choose one with @DIGEST:" and nothing after), by tag, by default and
/// while looking for a digest. An empty nested index says the index lists no manifest.
#[test]
fn index_entry_media_type_must_match_the_document() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let m = image(&l, b"m");
    let mut lying = m.clone();
    lying["mediaType"] = serde_json::json!("application/vnd.oci.image.index.v1+json");
    l.add(lying, Some("lying"), None);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = format!("oci:{}", dir.display());
    let d = m["digest"].as_str().unwrap();
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    for s in [
        format!("{src}:lying"),
        src.clone(),
        format!("{src}@{other}"),
    ] {
        let err = repo.fails(&["import", &s, "x"]);
        assert!(
            err.contains(&format!(
                "the index entry for {d} says mediaType \"application/vnd.oci.image.index.v1+json\" \
                 but the document is mediaType \"application/vnd.oci.image.manifest.v1+json\""
            )) && err.contains("does not match the document")
                && !err.contains("manifests match"),
            "{s}: {err}"
        );
    }
    // an empty nested index
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let empty = l.nested_index(vec![]);
    l.add(empty, Some("empty"), None);
    let err = repo.fails(&["import", &format!("oci:{}:empty", dir.display()), "y"]);
    assert!(
        err.contains("lists no manifest") && !err.contains("manifests match"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
}

/// An index that lists one manifest twice, untagged and with no platform, names that
/// manifest (it used to be "2 manifests match"); 25 distinct ones are ambiguous, and the
/// error lists 20 of them and says how many more there are (an index listing thousands used
/// to make an error of megabytes).
#[test]
fn identical_entries_count_once_and_listings_are_bounded() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let m = image(&l, b"m");
    l.add(m.clone(), None, None);
    l.add(m, None, None);
    let repo = Repo::new();
    assert_eq!(
        which(&repo, &["import", &format!("oci:{}", dir.display()), "x"]),
        "m"
    );

    let dir = tmp.path().join("many");
    let mut l = Layout::new(&dir);
    let mut unlisted = Vec::new();
    for i in 0..25 {
        let m = image(&l, format!("m{i}").as_bytes());
        if i >= 20 {
            unlisted.push(m["digest"].as_str().unwrap().to_string());
        }
        l.add(m, None, None);
    }
    // the candidates past those listed are not read (their manifests are gone)
    for d in &unlisted {
        let hex = d.trim_start_matches("sha256:");
        std::fs::remove_file(dir.join("blobs/sha256").join(hex)).unwrap();
    }
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &format!("oci:{}", dir.display()), "y"]);
    assert!(
        err.contains("25 manifests match") && err.contains("  … and 5 more"),
        "{err}"
    );
    assert_eq!(err.matches("  sha256:").count(), 20, "{err}");
    snap.assert_unchanged(&repo.path);
}
