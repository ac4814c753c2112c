//! docker-archive (`docker save` format): import of archives written by skopeo, export that
//! skopeo reads.

use std::process::Command;

use crate::util::*;

/// skopeo's docker-archive of the umoci-built small image (util/wild.rs), tagged `example.com/small:v1`.
fn small_archive(dir: &std::path::Path) -> std::path::PathBuf {
    tools::require("skopeo");
    let out = dir.join("small-docker.tar");
    tools::run(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!(
                "oci:{}:latest",
                wild_images().join("small").display()
            ))
            .arg(format!(
                "docker-archive:{}:example.com/small:v1",
                out.display()
            )),
    );
    out
}

#[test]
fn skopeo_docker_archive_imports_like_the_oci_image() {
    let tmp = tempdir();
    let archive = small_archive(tmp.path());
    let repo = Repo::new();
    let r = repo.ok(&["import", &format!("docker-archive:{}", archive.display())]);
    assert_eq!(r.field("Image"), "example.com/small:v1");
    assert_eq!(r.layers(), (3, 0));
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    // the same layers, gzip-compressed in the OCI layout, are found by diff_id
    let oci = repo.import(&Repo::oci(&wild_images().join("small"), "latest"), "oci");
    assert_eq!(oci.layers(), (0, 3));
    // by reference, and from standard input
    let tagged = repo.import(
        &format!("docker-archive:{}:example.com/small:v1", archive.display()),
        "tagged",
    );
    assert_eq!(tagged.layers(), (0, 3));
    let err = repo.fails(&[
        "import",
        &format!("docker-archive:{}:other:v2", archive.display()),
        "x",
    ]);
    assert!(err.contains("not found"), "{err}");
    let piped = repo
        .cmd()
        .args(["import", "docker-archive:-", "piped"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert!(piped.status.success(), "{piped:?}");
    tools::fsck(&repo.path);
}

#[test]
fn corrupt_docker_archive_layer_is_rejected() {
    let tmp = tempdir();
    let archive = small_archive(tmp.path());
    // flip one byte inside the first layer member's data (a plain tar: the file data of the
    // 2 MiB file), keeping the archive a valid tar
    let mut bytes = std::fs::read(&archive).unwrap();
    let mut a = tar::Archive::new(&bytes[..]);
    let (offset, size) = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy().ends_with(".tar") && e.size() > 1_000_000)
        .map(|e| (e.raw_file_position() as usize, e.size() as usize))
        .unwrap();
    bytes[offset + size / 2] ^= 0xff;
    std::fs::write(&archive, &bytes).unwrap();
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&[
        "import",
        &format!("docker-archive:{}", archive.display()),
        "x",
    ]);
    assert!(err.contains("digest mismatch"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// Our docker archives: skopeo reads them (and converts them to the same tree umoci unpacks
/// from the original), and they import back with every layer reused by diff_id.
#[test]
fn export_to_docker_archive() {
    let tmp = tempdir();
    let repo = Repo::new();
    repo.import(
        &Repo::oci(&wild_images().join("quirks"), "latest"),
        "quirks",
    );
    let ours = tmp.path().join("ours.tar");
    let r = repo.ok(&[
        "export",
        "quirks",
        &format!("docker-archive:{}:example.com/quirks:v1", ours.display()),
    ]);
    assert!(r.stdout.contains("digest = its diff_id"), "{r:?}");
    let inspect = tools::run(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", ours.display())),
    );
    let layers: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let inspected: Vec<&str> = layers["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let info: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "quirks"]).stdout).unwrap();
    let diff_ids: Vec<&str> = info["config"]["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(inspected, diff_ids);
    let converted = tmp.path().join("converted");
    tools::run(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("docker-archive:{}", ours.display()))
            .arg(format!("oci:{}:x", converted.display())),
    );
    let a = tools::umoci_unpack(&converted, "x", &tmp.path().join("a"));
    let b = tools::umoci_unpack(
        &wild_images().join("quirks"),
        "latest",
        &tmp.path().join("b"),
    );
    tree::assert_same(&a, &b);
    let back = repo.import(&format!("docker-archive:{}", ours.display()), "back");
    assert_eq!(back.layers(), (0, 5));
    assert_eq!(back.field("Image"), "back");
    let fresh = Repo::new();
    let r = fresh.ok(&["import", &format!("docker-archive:{}", ours.display())]);
    assert_eq!(r.field("Image"), "example.com/quirks:v1");
    assert_eq!(
        tools::ostree(&fresh.path, &["ls", "-R", "-C", &r.commit()]),
        tools::ostree(&repo.path, &["ls", "-R", "-C", "ocitree/image/quirks"])
    );
}
