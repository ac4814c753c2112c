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

#[test]
fn ambiguous_index_lists_candidates() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let a = image(&l, b"a");
    let b = image(&l, b"b");
    l.add(a.clone(), None, Some("linux/amd64"))
        .add(b.clone(), None, Some("linux/amd64"));
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&[
        "import",
        "--platform",
        "linux/amd64",
        &format!("oci:{}", dir.display()),
        "x",
    ]);
    for d in [&a["digest"], &b["digest"]] {
        assert!(err.contains(d.as_str().unwrap()), "{err}");
    }
    assert!(err.contains("@DIGEST"), "{err}");
    snap.assert_unchanged(&repo.path);
}
