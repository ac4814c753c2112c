//! Layer framings seen in the wild.

use crate::util::*;

fn entries() -> Vec<E> {
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    vec![
        dir("d"),
        file("d/big", &big),
        file("d/small", b"s"),
        symlink("d/l", "small"),
    ]
}

fn import_with(comp: Comp, docker: bool) -> (Repo, String, tempfile::TempDir) {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let m = l.image(&[Layer::with(tar_of(&entries()), comp, docker)], docker);
    l.add(m, Some("latest"), None);
    let repo = Repo::new();
    let commit = repo.import(&Repo::oci(&dir, "latest"), "img").commit();
    if !docker {
        // umoci 0.4.7 reads OCI manifests only; docker ones are compared with the OCI import
        repo.assert_matches_umoci(&commit, &dir, "latest");
    }
    (repo, commit, tmp)
}

#[test]
fn every_framing_gives_the_same_tree() {
    let tree = |r: &Repo, c: &str| tools::ostree(&r.path, &["ls", "-R", "-C", c]);
    let (repo, reference, _t) = import_with(Comp::Gzip, false);
    let expected = tree(&repo, &reference);
    for (comp, docker) in [
        (Comp::GzipMulti, false),
        (Comp::None, false),
        (Comp::Gzip, true),
        (Comp::None, true),
    ] {
        let (r, c, _t) = import_with(comp, docker);
        assert_eq!(tree(&r, &c), expected, "{comp:?} docker={docker}");
    }
}

#[test]
fn zstd_multi_frame_with_skippable_frame() {
    // umoci 0.4.7 cannot read zstd: compare with the gzip import of the same tar instead
    let tar = tar_of(&entries());
    let tmp = tempdir();
    let (gz_dir, zs_dir) = (tmp.path().join("gz"), tmp.path().join("zs"));
    Layout::single(&gz_dir, &[Layer::with(tar.clone(), Comp::Gzip, false)]);
    Layout::single(&zs_dir, &[Layer::with(tar, Comp::ZstdMulti, false)]);
    let repo = Repo::new();
    let a = repo.import(&Repo::oci(&gz_dir, "latest"), "gz").commit();
    let zs = repo.import(&Repo::oci(&zs_dir, "latest"), "zs");
    // same diff_id: the layer is found by diff_id and not stored twice
    assert_eq!(zs.layers(), (0, 1));
    let fresh = Repo::new();
    let b = fresh.import(&Repo::oci(&zs_dir, "latest"), "zs").commit();
    let tree = |r: &Repo, c: &str| tools::ostree(&r.path, &["ls", "-R", "-C", c]);
    assert_eq!(tree(&repo, &a), tree(&fresh, &b));
    tools::fsck(&fresh.path);
}

/// The last member's padding and the end-of-archive blocks are missing (umoci 0.4.7 insert).
#[test]
fn tar_without_end_blocks_and_padding() {
    let mut tar = tar_of(&[file("a", b"abc"), file("b", b"hello")]);
    tar.truncate(512 * 3 + 5); // header a, data a, header b, 5 bytes of b
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    Layout::single(&dir, &[Layer::with(tar, Comp::Gzip, false)]);
    let repo = Repo::new();
    repo.import(&Repo::oci(&dir, "latest"), "img");
    assert_eq!(repo.ok(&["cat", "img", "/b"]).stdout, "hello");
    tools::fsck(&repo.path);
}
