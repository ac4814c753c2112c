//! Layers read at once (`import --jobs N`): the same commits as one at a time, and, when
//! several layers are bad, the error of the earliest one whatever finishes first.

use crate::util::*;

/// Twelve layers that change each other's files: adds, overwrites, whiteouts, an opaque dir.
fn many_layers() -> Vec<Layer> {
    (0..12)
        .map(|i| {
            let mut entries = vec![
                dir("etc"),
                file(&format!("etc/layer{i}"), format!("layer {i}\n").as_bytes()),
                file("etc/shared", format!("written by {i}\n").as_bytes()),
                dir(&format!("d{}", i % 3)),
                file(&format!("d{}/f{i}", i % 3), &vec![i as u8; 4096 * (i + 1)]),
            ];
            if i > 0 {
                entries.push(whiteout(&format!("etc/layer{}", i - 1)));
            }
            if i == 7 {
                entries.push(opaque("d1"));
            }
            Layer::new(&entries)
        })
        .collect()
}

#[test]
fn layers_read_at_once_give_the_commits_of_one_at_a_time() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    Layout::single(&img, &many_layers());
    let src = Repo::oci(&img, "latest");
    let one = Repo::new();
    let four = Repo::new();
    let a = one.ok(&["import", "--jobs", "1", &src, "x"]).commit();
    let b = four.ok(&["import", "--jobs", "4", &src, "x"]).commit();
    assert_eq!(a, b, "the image commit does not depend on --jobs");
    assert_eq!(one.refs(), four.refs(), "the same layer refs");
    four.assert_matches_umoci(&b, &img, "latest");
    tools::fsck(&one.path);
}

#[test]
fn the_earliest_bad_layer_is_named_whatever_fails_first() {
    // Layer 1 fails late (its gzip stream is cut near the end of several MiB); layer 3 fails
    // at once (a bad tar header checksum). Read at once, layer 3 fails first in time.
    let big: Vec<u8> = (0..6u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut late = Layer::new(&[file("big", &big)]);
    let cut = late.blob.len() - 64;
    late.blob.truncate(cut);
    let mut early_tar = tar_of(&[dir("d"), file("d/a", b"a")]);
    early_tar[512 + 148] = b'9';
    let early = Layer::with(early_tar, Comp::Gzip, false);
    let ok = |n: &str| Layer::new(&[file(n, n.as_bytes())]);
    let layers = vec![ok("a"), late.clone(), ok("b"), early, ok("c")];
    let late_digest = sha256(&late.blob);

    let tmp = tempdir();
    let img = tmp.path().join("img");
    Layout::single(&img, &layers);
    let src = Repo::oci(&img, "latest");
    let repo = Repo::new();
    let snap = repo.snapshot();
    for _ in 0..3 {
        let err = repo.fails(&["import", "--jobs", "4", &src, "bad"]);
        assert!(
            err.contains(&format!("layer {late_digest}")),
            "names layer 1, the earliest bad one: {err}"
        );
        snap.assert_unchanged(&repo.path);
    }
}

#[test]
fn jobs_must_be_a_positive_number() {
    let repo = Repo::new();
    let r = repo.run(&["import", "--jobs", "0", "oci:/nonexistent:latest", "x"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--jobs"), "{r:?}");
}
