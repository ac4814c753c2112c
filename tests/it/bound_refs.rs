//! Refs an image's commit is bound to (`ostree commit -b` binds the commit to its branch):
//! import makes them for clients, but ocitree owns only those it made (marked under
//! `ocitree/bound/`). A user's branch of the same name is never moved or deleted, and prune
//! never loses the commits it points at.

use std::path::Path;

use crate::util::*;

const BRANCH: &str = "exampleos/x86_64/stable";

fn write_tree(tree: &Path, release: &str) {
    std::fs::create_dir_all(tree.join("usr")).unwrap();
    std::fs::write(tree.join("usr/os-release"), release).unwrap();
}

fn rev(repo: &Path, r: &str) -> String {
    tools::ostree(repo, &["rev-parse", r]).trim().to_string()
}

fn has_commit(repo: &Path, c: &str) -> bool {
    std::process::Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["show", c])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// The refs under `ocitree/bound/` (the markers of the bound refs ocitree made).
fn markers(repo: &Repo) -> Vec<String> {
    repo.refs()
        .into_iter()
        .filter(|r| r.starts_with("ocitree/bound/"))
        .collect()
}

fn marker() -> String {
    "ocitree/bound/exampleos_2Fx86_5F64_2Fstable".to_string()
}

/// Reproducer: the user's branch moved on to v2 after v1 was encapsulated; importing the v1
/// image leaves the branch at v2 (and says so), and prune keeps v2.
#[test]
fn import_leaves_a_users_branch_where_it_is() {
    let repo = Repo::new();
    let tree = repo.tmp.path().join("tree");
    write_tree(&tree, "VERSION=1\n");
    let v1 = tools::ostree_commit(&repo.path, BRANCH, &tree);
    let img = repo.tmp.path().join("img");
    repo.ok(&["encapsulate", BRANCH, &Repo::oci(&img, "v1")]);
    write_tree(&tree, "VERSION=2\n");
    let v2 = tools::ostree_commit(&repo.path, BRANCH, &tree);
    assert_ne!(v1, v2);

    let r = repo.import(&Repo::oci(&img, "v1"), "old");
    assert_eq!(r.commit(), v1);
    assert_eq!(rev(&repo.path, BRANCH), v2, "the user's branch was moved");
    let line = r.field("Ref");
    assert!(
        line.starts_with(&format!(
            "{BRANCH} exists and was not made by ocitree: left at {v2}"
        )),
        "{r:?}"
    );
    assert!(markers(&repo).is_empty(), "{:?}", repo.refs());

    repo.ok(&["prune"]);
    assert_eq!(rev(&repo.path, BRANCH), v2);
    tools::ostree(&repo.path, &["show", &v2]);
    tools::ostree(&repo.path, &["show", &v1]);
    tools::fsck(&repo.path);

    // and rm leaves it too
    let r = repo.ok(&["rm", "old"]);
    assert!(!r.stdout.contains("Removed ref"), "{r:?}");
    repo.ok(&["prune"]);
    assert_eq!(rev(&repo.path, BRANCH), v2);
    tools::ostree(&repo.path, &["show", &v2]);
    tools::fsck(&repo.path);
}

/// Reproducer: a branch the user made before the import, at the image's own commit, is not
/// deleted by `rm` of that image (nor by prune).
#[test]
fn rm_leaves_a_users_branch_at_the_image_commit() {
    let repo = Repo::new();
    let tree = repo.tmp.path().join("tree");
    write_tree(&tree, "VERSION=1\n");
    let commit = tools::ostree_commit(&repo.path, "X", &tree);
    let img = repo.tmp.path().join("img");
    repo.ok(&["encapsulate", "X", &Repo::oci(&img, "1")]);
    let r = repo.import(&Repo::oci(&img, "1"), "os:v1");
    assert_eq!(r.commit(), commit);
    // already where clients need it: reported as bound, but not ocitree's
    assert!(
        r.field("Ref").starts_with("X (the commit is bound"),
        "{r:?}"
    );
    assert!(markers(&repo).is_empty(), "{:?}", repo.refs());

    let r = repo.ok(&["rm", "os:v1"]);
    assert!(!r.stdout.contains("Removed ref"), "{r:?}");
    assert_eq!(rev(&repo.path, "X"), commit);
    let r = repo.ok(&["prune"]);
    assert!(!r.stdout.contains("Removed ref"), "{r:?}");
    assert_eq!(rev(&repo.path, "X"), commit);
    tools::ostree(&repo.path, &["show", &commit]);
    tools::fsck(&repo.path);
}

/// Two encapsulated versions of a branch made in another repository.
fn two_versions(dir: &Path) -> (String, String, std::path::PathBuf) {
    let src = dir.join("src");
    tools::ostree(&src, &["init", "--mode=bare-user"]);
    let tree = dir.join("tree");
    let img = dir.join("img");
    write_tree(&tree, "VERSION=1\n");
    let v1 = tools::ostree_commit(&src, BRANCH, &tree);
    let enc = |tag: &str| {
        let r = output(
            std::process::Command::new(bin())
                .arg("--repo")
                .arg(&src)
                .args(["encapsulate", BRANCH, &Repo::oci(&img, tag)])
                .output()
                .unwrap(),
        );
        assert_eq!(r.code, 0, "{r:?}");
    };
    enc("v1");
    write_tree(&tree, "VERSION=2\n");
    let v2 = tools::ostree_commit(&src, BRANCH, &tree);
    enc("v2");
    (v1, v2, img)
}

/// The refs ocitree makes are still made, follow the image to its next version, and go with
/// it: on rm, and on prune once no image has their commit.
#[test]
fn refs_ocitree_made_follow_the_image() {
    let tmp = tempdir();
    let (v1, v2, img) = two_versions(tmp.path());
    let repo = Repo::new();

    let r = repo.import(&Repo::oci(&img, "v1"), "os");
    assert!(r.field("Ref").starts_with(BRANCH), "{r:?}");
    assert_eq!(rev(&repo.path, BRANCH), v1);
    assert_eq!(markers(&repo), [marker()]);
    assert_eq!(rev(&repo.path, &marker()), v1);

    // the next version moves it (v1 stays: it is v2's parent)
    let r = repo.import(&Repo::oci(&img, "v2"), "os");
    assert!(r.field("Ref").starts_with(BRANCH), "{r:?}");
    assert_eq!(rev(&repo.path, BRANCH), v2);
    assert_eq!(rev(&repo.path, &marker()), v2);
    repo.ok(&["prune"]);
    assert_eq!(rev(&repo.path, BRANCH), v2);
    tools::fsck(&repo.path);

    // rm deletes it with its marker
    let r = repo.ok(&["rm", "os"]);
    assert!(r.stdout.contains(&format!("Removed ref {BRANCH}")), "{r:?}");
    assert_branch_and_marker_gone(&repo);
    repo.ok(&["prune"]);
    tools::fsck(&repo.path);

    // an image re-imported as another commit: prune deletes the ref made for the old one,
    // and with it the commit no image has
    repo.import(&Repo::oci(&img, "v1"), "os");
    assert_eq!(rev(&repo.path, BRANCH), v1);
    repo.import(
        &crate::serve::small_image(&tmp.path().join("plain"), b"p\n"),
        "os",
    );
    assert_eq!(rev(&repo.path, BRANCH), v1);
    let r = repo.ok(&["prune"]);
    assert!(r.stdout.contains(&format!("Removed ref {BRANCH}")), "{r:?}");
    assert_branch_and_marker_gone(&repo);
    assert!(
        !has_commit(&repo.path, &v1),
        "v1 is still there after prune"
    );
    tools::fsck(&repo.path);
}

/// A ref ocitree made stops being its own once someone else moves it: import and rm then
/// leave it, and its marker goes (keeping nothing alive).
#[test]
fn a_ref_moved_by_someone_else_is_no_longer_ocitrees() {
    let tmp = tempdir();
    let (v1, v2, img) = two_versions(tmp.path());
    let repo = Repo::new();
    repo.import(&Repo::oci(&img, "v1"), "os");
    assert_eq!(rev(&repo.path, BRANCH), v1);
    // the user commits on the branch ocitree made
    let tree = repo.tmp.path().join("tree");
    write_tree(&tree, "VERSION=mine\n");
    let mine = tools::ostree_commit(&repo.path, BRANCH, &tree);

    let r = repo.import(&Repo::oci(&img, "v2"), "os");
    assert_eq!(r.commit(), v2);
    assert!(
        r.field("Ref").starts_with(&format!(
            "{BRANCH} exists and was not made by ocitree: left at {mine}"
        )),
        "{r:?}"
    );
    assert_eq!(rev(&repo.path, BRANCH), mine);
    assert!(markers(&repo).is_empty(), "{:?}", repo.refs());

    let r = repo.ok(&["rm", "os"]);
    assert!(!r.stdout.contains("Removed ref"), "{r:?}");
    repo.ok(&["prune"]);
    assert_eq!(rev(&repo.path, BRANCH), mine);
    tools::ostree(&repo.path, &["show", &mine]);
    tools::fsck(&repo.path);

    // rm drops a marker whose ref was moved, and leaves the ref
    tools::ostree(&repo.path, &["refs", "--delete", BRANCH]);
    let r = repo.import(&Repo::oci(&img, "v1"), "again");
    assert!(r.field("Ref").starts_with(BRANCH), "{r:?}");
    assert_eq!(markers(&repo), [marker()]);
    tools::ostree(&repo.path, &["refs", "--delete", BRANCH]);
    tools::ostree(&repo.path, &["refs", &format!("--create={BRANCH}"), &mine]);
    let r = repo.ok(&["rm", "again"]);
    assert!(!r.stdout.contains("Removed ref"), "{r:?}");
    assert!(markers(&repo).is_empty(), "{:?}", repo.refs());
    assert_eq!(rev(&repo.path, BRANCH), mine);
}

/// Neither the bound ref nor any marker is left.
fn assert_branch_and_marker_gone(repo: &Repo) {
    assert!(
        !repo.refs().iter().any(|r| r == BRANCH),
        "{:?}",
        repo.refs()
    );
    assert!(markers(repo).is_empty(), "{:?}", repo.refs());
}
