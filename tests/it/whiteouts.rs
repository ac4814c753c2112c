//! Changeset application (image-spec layer.md) compared with `umoci unpack`.

use crate::util::*;

/// Builds an image of `layers`, imports it, and compares with umoci's unpack.
pub fn check(layers: &[Vec<E>]) -> (Repo, String) {
    check_against(layers, layers)
}

/// Imports an image of `layers` and compares it with umoci's unpack of an image of
/// `oracle_layers`: the same content in an order umoci can apply.
pub fn check_against(layers: &[Vec<E>], oracle_layers: &[Vec<E>]) -> (Repo, String) {
    let tmp = tempdir();
    let (dir, oracle) = (tmp.path().join("img"), tmp.path().join("oracle"));
    Layout::single(
        &dir,
        &layers.iter().map(|l| Layer::new(l)).collect::<Vec<_>>(),
    );
    Layout::single(
        &oracle,
        &oracle_layers
            .iter()
            .map(|l| Layer::new(l))
            .collect::<Vec<_>>(),
    );
    let repo = Repo::new();
    let commit = repo.import(&Repo::oci(&dir, "latest"), "img").commit();
    repo.assert_matches_umoci(&commit, &oracle, "latest");
    (repo, commit)
}

fn cat(repo: &Repo, path: &str) -> String {
    repo.ok(&["cat", "img", path]).stdout
}

fn exists(repo: &Repo, path: &str) -> bool {
    repo.run(&["ls", "img", path]).code == 0
}

#[test]
fn whiteout_deletes_files_and_dirs() {
    let (repo, _) = check(&[
        vec![
            dir("a"),
            file("a/f", b"1"),
            file("a/g", b"2"),
            dir("d"),
            dir("d/sub"),
            file("d/sub/x", b"x"),
        ],
        vec![whiteout("a/f"), whiteout("d")],
    ]);
    assert!(!exists(&repo, "/a/f"));
    assert!(exists(&repo, "/a/g"));
    assert!(!exists(&repo, "/d"));
}

/// Entries of the same layer are never hidden by that layer's markers, in any tar order;
/// `.wh.` sorts after a same-layer file named `-x` or `.x` but the file must stay.
#[test]
fn same_layer_entries_survive_markers_in_any_order() {
    let (repo, _) = check(&[
        vec![
            dir("o"),
            file("o/lower", b"l"),
            dir("w"),
            file("w/x", b"old"),
        ],
        vec![
            file("o/before", b"b"),
            opaque("o"),
            file("o/after", b"a"),
            file("w/-x", b"n"),
            file("w/x", b"new"),
            whiteout("w/x"),
        ],
    ]);
    assert!(!exists(&repo, "/o/lower"));
    assert_eq!(cat(&repo, "/o/before"), "b");
    assert_eq!(cat(&repo, "/o/after"), "a");
    assert_eq!(cat(&repo, "/w/x"), "new");
    assert_eq!(cat(&repo, "/w/-x"), "n");
}

#[test]
fn opaque_hides_lower_children_only() {
    let (repo, _) = check(&[
        vec![
            dir("etc"),
            dir("etc/conf"),
            file("etc/conf/a", b"a"),
            dir("etc/conf/d"),
            file("etc/conf/d/x", b"x"),
            file("etc/keep", b"k"),
        ],
        vec![
            dir("etc/conf"),
            opaque("etc/conf"),
            file("etc/conf/c", b"c"),
        ],
    ]);
    assert!(!exists(&repo, "/etc/conf/a"));
    assert!(!exists(&repo, "/etc/conf/d"));
    assert_eq!(cat(&repo, "/etc/keep"), "k");
}

#[test]
fn type_changes_replace() {
    check(&[
        vec![
            file("f2d", b"f"),
            dir("d2f"),
            file("d2f/in", b"i"),
            file("f2l", b"f"),
            symlink("l2f", "f2d"),
            dir("d2l"),
            file("d2l/x", b"x"),
        ],
        vec![
            dir("f2d"),
            file("f2d/in", b"now"),
            whiteout("d2f"),
            file("d2f", b"now a file"),
            symlink("f2l", "d2f"),
            file("l2f", b"plain"),
            whiteout("d2l"),
            symlink("d2l", "f2l"),
        ],
    ]);
}

/// umoci's repack writes `d/.wh.x` after turning `d` into a file: the whiteout is ignored.
#[test]
fn whiteout_below_a_non_directory_is_ignored() {
    let (repo, _) = check(&[
        vec![dir("d"), file("d/x", b"x"), file("plain", b"p")],
        vec![
            whiteout("d"),
            file("d", b"file now"),
            whiteout("d/x"),
            whiteout("plain/y"),
        ],
    ]);
    assert_eq!(cat(&repo, "/d"), "file now");
    assert_eq!(cat(&repo, "/plain"), "p");
}

#[test]
fn later_directory_entry_replaces_mode_owner_xattrs() {
    let (repo, _) = check(&[
        vec![
            dir_meta("srv", 0o755, 0, 0, &[("user.old", b"1")]),
            file("srv/f", b"f"),
        ],
        vec![dir_meta("srv", 0o1777, 12, 34, &[("user.new", b"2")])],
    ]);
    let ls = repo.ok(&["ls", "img", "/srv"]).stdout;
    assert!(ls.starts_with("d01777 12 34"), "{ls}");
}

/// A directory the tar never names keeps the lower directory's metadata.
#[test]
fn implicit_directory_keeps_lower_metadata() {
    let (repo, _) = check(&[
        vec![dir_meta("srv", 0o700, 5, 6, &[]), file("srv/a", b"a")],
        vec![file("srv/b", b"b")],
    ]);
    assert!(
        repo.ok(&["ls", "img", "/srv"])
            .stdout
            .starts_with("d00700 5 6")
    );
}

/// merged-/usr: `lib -> usr/lib`, then a layer writes `lib/x` without a `lib/` entry.
#[test]
fn symlinked_parent_resolves_inside_the_root() {
    let (repo, _) = check(&[
        vec![
            dir("usr"),
            dir("usr/lib"),
            file("usr/lib/a", b"a"),
            symlink("lib", "usr/lib"),
            symlink("abs", "/usr/lib"),
            symlink("esc", "../../../usr"),
        ],
        vec![
            file("lib/x", b"x"),
            file("abs/y", b"y"),
            file("esc/lib/z", b"z"),
        ],
    ]);
    assert_eq!(cat(&repo, "/usr/lib/x"), "x");
    assert_eq!(cat(&repo, "/usr/lib/y"), "y");
    assert_eq!(cat(&repo, "/usr/lib/z"), "z");
    assert!(repo.ok(&["ls", "img", "/lib"]).stdout.starts_with("l"));
}

/// An explicit directory entry over a lower symlink replaces the symlink (as umoci does).
#[test]
fn explicit_directory_replaces_lower_symlink() {
    let (repo, _) = check(&[
        vec![
            dir("usr"),
            dir("usr/lib"),
            file("usr/lib/a", b"a"),
            symlink("lib", "usr/lib"),
        ],
        vec![dir("lib"), file("lib/x", b"x")],
    ]);
    assert!(repo.ok(&["ls", "img", "/lib"]).stdout.starts_with("d"));
    assert!(!exists(&repo, "/usr/lib/x"));
}

/// A symlink and a path through it in the same layer: the path follows the symlink, inside
/// the root, to this layer's and to lower layers' directories.
#[test]
fn same_layer_symlinked_parent() {
    let (repo, _) = check(&[
        vec![dir("usr"), dir("usr/share"), file("usr/share/lower", b"l")],
        vec![
            dir("usr/lib"),
            symlink("lib", "usr/lib"),
            file("lib/x", b"x"),
            symlink("share", "/usr/share"),
            file("share/y", b"y"),
            symlink("up", "../../usr"),
            file("up/lib/z", b"z"),
            hardlink("lib/hl", "share/y"),
        ],
    ]);
    assert_eq!(cat(&repo, "/usr/lib/x"), "x");
    assert_eq!(cat(&repo, "/usr/share/y"), "y");
    assert_eq!(cat(&repo, "/usr/share/lower"), "l");
    assert_eq!(cat(&repo, "/usr/lib/z"), "z");
    assert_eq!(cat(&repo, "/usr/lib/hl"), "y");
    assert!(repo.ok(&["ls", "img", "/lib"]).stdout.starts_with("l"));
}
