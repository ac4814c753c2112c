//! docker-archive (`docker save` format) import, with archives written by skopeo.

use std::process::Command;

use crate::util::*;

/// skopeo's docker-archive of make-images.sh's small image, tagged `example.com/small:v1`.
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
