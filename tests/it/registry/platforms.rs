//! Multi-platform images (issue 12): `import --all-platforms` keeps each platform's image as
//! NAME@OS/ARCH[/VARIANT]; `export --index-of` pushes them back as one index; skopeo reads
//! and copies it.

use super::*;
use serde_json::{Value, json};
use std::process::Command;

const PLATFORMS: [&str; 3] = ["linux/amd64", "linux/arm64", "linux/arm/v7"];

/// A layout tagged `latest` holding an index of one image per platform (each with a file
/// `/arch` naming it, its config naming it too); returns it and the manifest descriptors.
fn multi_layout(dir: &std::path::Path) -> (Layout, Vec<Value>) {
    let mut layout = Layout::new(dir);
    let mut descs = Vec::new();
    for p in PLATFORMS {
        let layer = Layer::with(tar_of(&[file("arch", p.as_bytes())]), Comp::None, false);
        let pj = platform_json(p);
        let mut config = json!({
            "created": "2023-11-14T22:13:20Z",
            "os": pj["os"],
            "architecture": pj["architecture"],
            "rootfs": {"type": "layers", "diff_ids": [sha256(&layer.tar)]},
        });
        if let Some(v) = pj.get("variant") {
            config["variant"] = v.clone();
        }
        let mut d = layout.image_with_config(&[layer], false, config);
        d["platform"] = pj;
        descs.push(d);
    }
    let index = layout.nested_index(descs.clone());
    layout.add(index, Some("latest"), None);
    (layout, descs)
}

fn skopeo_raw(args: &[&str], reference: &str) -> Vec<u8> {
    tools::run(
        Command::new("skopeo")
            .args(["inspect", "--raw"])
            .args(args)
            .arg(reference),
    )
    .stdout
}

#[test]
fn all_platforms_round_trip_through_the_registry_as_one_index() {
    tools::require("skopeo");
    let reg = Registry::start();
    let tmp = tempdir();
    let (layout, descs) = multi_layout(&tmp.path().join("multi"));
    tools::run(
        Command::new("skopeo")
            .args(["copy", "-q", "--all", "--preserve-digests"])
            .arg("--dest-tls-verify=false")
            .arg(format!("oci:{}:latest", layout.dir.display()))
            .arg(format!("{}:1", reg.url("test/multi"))),
    );
    let repo = Repo::new();
    let r = repo.ok(&[
        "import",
        "--tls-verify=false",
        "--all-platforms",
        &format!("{}:1", reg.url("test/multi")),
        "app",
    ]);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{r:?}");
    for ((p, d), line) in PLATFORMS.iter().zip(&descs).zip(&lines) {
        let name = format!("app@{p}");
        let want = format!("Image:    {name} {} ", d["digest"].as_str().unwrap());
        assert!(line.starts_with(&want), "{line:?} vs {want:?}");
        assert_eq!(repo.ok(&["cat", &name, "/arch"]).stdout, *p);
    }
    // back as one index: the manifests are the originals, with their platforms
    let names: Vec<String> = PLATFORMS.iter().map(|p| format!("app@{p}")).collect();
    let mut args = vec!["export", "--tls-verify=false"];
    for n in &names {
        args.extend(["--index-of", n]);
    }
    let dest = format!("{}:back", reg.url("test/back"));
    args.push(&dest);
    let r = repo.ok(&args);
    let index_digest = r.field("Index");
    let raw = skopeo_raw(&["--tls-verify=false"], &dest);
    assert_eq!(sha256(&raw), index_digest);
    let index: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let got: Vec<(Value, Value)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["digest"].clone(), m["platform"].clone()))
        .collect();
    let want: Vec<(Value, Value)> = descs
        .iter()
        .map(|d| (d["digest"].clone(), d["platform"].clone()))
        .collect();
    assert_eq!(got, want);
    // skopeo copies the whole index, unchanged
    let copy = tmp.path().join("copy");
    tools::run(
        Command::new("skopeo")
            .args(["copy", "-q", "--all", "--preserve-digests"])
            .arg("--src-tls-verify=false")
            .arg(&dest)
            .arg(format!("oci:{}:c", copy.display())),
    );
    let copied = skopeo_raw(&[], &format!("oci:{}:c", copy.display()));
    assert_eq!(sha256(&copied), index_digest);
    for (p, d) in PLATFORMS.iter().zip(&descs) {
        let child = skopeo_raw(
            &["--tls-verify=false"],
            &format!("{}@{}", reg.url("test/back"), d["digest"].as_str().unwrap()),
        );
        assert_eq!(sha256(&child), d["digest"].as_str().unwrap(), "{p}");
    }
    // the same index to a new OCI layout
    let out = tmp.path().join("out");
    let r = repo.ok(&[
        "export",
        "--index-of",
        &names[0],
        "--index-of",
        &names[1],
        "--index-of",
        &names[2],
        &format!("oci:{}:v1", out.display()),
    ]);
    assert_eq!(r.field("Index"), index_digest);
    let raw = skopeo_raw(&[], &format!("oci:{}:v1", out.display()));
    assert_eq!(sha256(&raw), index_digest);
}

#[test]
fn index_of_refuses_two_images_of_one_platform_and_all_platforms_needs_a_name() {
    let tmp = tempdir();
    let (layout, _) = multi_layout(&tmp.path().join("multi"));
    let repo = Repo::new();
    let src = Repo::oci(&layout.dir, "latest");
    let err = repo.fails(&["import", "--all-platforms", &src]);
    assert!(err.contains("NAME"), "{err}");
    repo.ok(&["import", "--all-platforms", &src, "app"]);
    // --quiet: the commit checksums alone, one a line.
    let q = repo.ok(&["import", "--all-platforms", "--quiet", &src, "quiet"]);
    let lines: Vec<&str> = q.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{q:?}");
    assert!(lines.iter().all(|l| l.len() == 64), "{q:?}");
    repo.ok(&["import", "--platform", "linux/arm64", &src, "again"]);
    let out = tmp.path().join("out");
    let snap = Snapshot::take(&repo.path);
    let err = repo.fails(&[
        "export",
        "--index-of",
        "app@linux/arm64",
        "--index-of",
        "again",
        &format!("oci:{}", out.display()),
    ]);
    assert!(err.contains("both for platform linux/arm64"), "{err}");
    assert!(!out.exists());
    snap.assert_unchanged(&repo.path);
    // A new layout directory gets the mode `mkdir` gives (the staging directory's 0700 made
    // the layout unreadable to other users and to a web server serving it).
    repo.ok(&[
        "export",
        "--index-of",
        "app@linux/arm64",
        &format!("oci:{}", out.display()),
    ]);
    let made = tmp.path().join("made-by-mkdir");
    std::fs::create_dir(&made).unwrap();
    let mode = |p: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    };
    assert_eq!(mode(&out), mode(&made));
}

/// The platform parts come from the index and become part of image names: one that is not a
/// plain word (a `/` that would make `arm/v7` the name of `arm` + `v7`, control characters
/// that would rewrite the terminal) is refused before anything is imported.
#[test]
fn all_platforms_refuses_platforms_that_are_not_plain_names() {
    let tmp = tempdir();
    let cases = [
        json!({"os": "linux", "architecture": "arm/v7"}),
        json!({"os": "linux", "architecture": "arm", "variant": "v7\n\u{1b}[31mred"}),
        json!({"os": "linux", "architecture": ""}),
    ];
    let repo = Repo::new();
    for (i, odd) in cases.iter().enumerate() {
        let mut layout = Layout::new(&tmp.path().join(format!("l{i}")));
        let mut descs = Vec::new();
        for (n, p) in [platform_json("linux/arm/v7"), odd.clone()]
            .into_iter()
            .enumerate()
        {
            let layer = Layer::with(tar_of(&[file("n", &[n as u8])]), Comp::None, false);
            let mut d = layout.image(&[layer], false);
            d["platform"] = p;
            descs.push(d);
        }
        let index = layout.nested_index(descs);
        layout.add(index, Some("latest"), None);
        let snap = Snapshot::take(&repo.path);
        let src = Repo::oci(&layout.dir, "latest");
        let err = repo.fails(&["import", "--all-platforms", &src, "app"]);
        assert!(
            err.contains("cannot be part of an image name"),
            "{odd}: {err}"
        );
        assert!(!err.contains('\u{1b}'), "{err:?}");
        snap.assert_unchanged(&repo.path);
    }
}
