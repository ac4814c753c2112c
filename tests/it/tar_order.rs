//! Entries of one layer apply in tar order (image-spec `layer.md`: a layer is "extracted like a
//! regular tar archive"), compared with `umoci unpack`: a later entry replaces what an earlier
//! one of the same layer made, hardlinks take what their target was when they were written.
//! What would depend on lower layers the layer cannot see, or what tar extraction itself
//! refuses, is an error naming the entry, and the repository is left as it was.

use crate::util::*;
use crate::whiteouts::check;

/// A hardlink written before its target is replaced later in the same layer takes the lower
/// layer's file; a later entry at the link's own path, or above it, replaces the link.
#[test]
fn hardlinks_take_what_their_target_was_when_written() {
    let lower = vec![dir("etc"), file("etc/a", b"old\n")];
    let (repo, _) = check(&[
        lower.clone(),
        vec![hardlink("etc/b", "etc/a"), file("etc/a", b"new\n")],
    ]);
    assert_eq!(repo.ok(&["cat", "img", "/etc/b"]).stdout, "old\n");
    assert_eq!(repo.ok(&["cat", "img", "/etc/a"]).stdout, "new\n");
    // The link's own path written again: the later entry wins, file or directory.
    check(&[
        lower.clone(),
        vec![hardlink("etc/b", "etc/a"), file("etc/b", b"B\n")],
    ]);
    check(&[
        lower.clone(),
        vec![
            hardlink("etc/b", "etc/a"),
            dir("etc/b"),
            file("etc/b/x", b"x"),
        ],
    ]);
    // A file over the link's parent directory removes the link with it.
    check(&[
        lower.clone(),
        vec![hardlink("d/b", "etc/a"), file("d", b"d\n")],
    ]);
    // A directory over the target after the link: the link keeps the lower file.
    let (repo, _) = check(&[
        lower,
        vec![
            hardlink("etc/b", "etc/a"),
            dir("etc/a"),
            file("etc/a/x", b"x"),
        ],
    ]);
    assert_eq!(repo.ok(&["cat", "img", "/etc/b"]).stdout, "old\n");
}

/// A directory that replaces a file or symlink of the same layer starts empty: in tar order
/// the non-directory removed the lower directory first.
#[test]
fn a_directory_over_a_non_directory_of_the_same_layer_hides_the_lower_one() {
    let lower = vec![dir("x"), file("x/foo", b"foo")];
    let (repo, _) = check(&[
        lower.clone(),
        vec![file("x", b"f"), dir("x"), file("x/bar", b"bar")],
    ]);
    assert_eq!(repo.run(&["ls", "img", "/x/foo"]).code, 2);
    check(&[
        lower.clone(),
        vec![symlink("x", "elsewhere"), dir("x"), file("x/bar", b"bar")],
    ]);
    // The same after an explicit directory of the same layer.
    check(&[
        lower,
        vec![
            dir("x"),
            file("x/z", b"z"),
            file("x", b"f"),
            dir("x"),
            file("x/y", b"y"),
        ],
    ]);
    // A directory over a lower directory, with no non-directory in between, merges.
    let (repo, _) = check(&[
        vec![dir("x"), file("x/foo", b"foo")],
        vec![dir("x"), file("x/bar", b"bar")],
    ]);
    assert_eq!(repo.ok(&["cat", "img", "/x/foo"]).stdout, "foo");
}

/// A directory the tar names only after entries below it merges as any other where the lower
/// layers have a directory or nothing there (compared with umoci).
#[test]
fn a_directory_named_after_its_entries_merges_over_a_directory_or_nothing() {
    let upper = vec![file("a/x", b"x"), dir("a"), file("a/y", b"y")];
    let (repo, _) = check(&[vec![dir("a"), file("a/old", b"o")], upper.clone()]);
    assert_eq!(repo.ok(&["cat", "img", "/a/old"]).stdout, "o");
    assert_eq!(repo.ok(&["cat", "img", "/a/x"]).stdout, "x");
    check(&[vec![dir("b")], upper]);
    // Below a directory that first replaced a file of the same layer, the lower symlink was
    // gone before the entries came.
    let (repo, _) = check(&[
        vec![dir("x"), dir("c"), symlink("x/a", "../c")],
        vec![file("x", b"f"), dir("x"), file("x/a/y", b"y"), dir("x/a")],
    ]);
    assert_eq!(repo.ok(&["cat", "img", "/x/a/y"]).stdout, "y");
}

/// `..` in a symlink of the layer, out of a directory the layer made, is resolved there.
#[test]
fn dotdot_out_of_a_directory_of_the_layer_resolves() {
    let (repo, _) = check(&[
        vec![dir("x"), file("x/keep", b"k")],
        vec![dir("d"), symlink("a", "d/../x"), file("a/z", b"z")],
    ]);
    assert_eq!(repo.ok(&["cat", "img", "/x/z"]).stdout, "z");
}

/// Each layer is refused with an error naming the entry; the repository keeps only what it
/// had.
#[test]
fn what_tar_extraction_refuses_or_the_layer_cannot_place_is_an_error() {
    let tmp = tempdir();
    type Case = (&'static str, Vec<Vec<E>>, &'static [&'static str]);
    let cases: Vec<Case> = vec![
        (
            "parent-file-same-layer",
            vec![vec![file("x", b"f"), file("x/bar", b"b")]],
            &["x/bar", "not a directory"],
        ),
        (
            "parent-file-lower-layer",
            vec![vec![file("a", b"f")], vec![file("a/b", b"b")]],
            &["\"a\"", "lower layer has a file"],
        ),
        (
            "replaced-after-writing-below",
            vec![
                vec![dir("b"), symlink("a", "b")],
                vec![file("a/x", b"x"), symlink("a", "c")],
            ],
            &["\"a\"", "depends on the lower layers"],
        ),
        (
            // The marker acted on wherever the lower `x` led (through a symlink, elsewhere).
            "marker-then-replaced",
            vec![
                vec![dir("x"), file("x/foo", b"foo")],
                vec![opaque("x"), file("x", b"f"), dir("x"), file("x/y", b"y")],
            ],
            &["\"x\"", "depends on the lower layers"],
        ),
        (
            // `s/..` is `x` if the lower `s` is a symlink to `x/y`, the root if not.
            "dotdot-after-lower-symlink",
            vec![
                vec![dir("x"), dir("x/y"), symlink("s", "x/y")],
                vec![symlink("a", "s/.."), file("a/z", b"z")],
            ],
            &["a/z", "depends on the lower layers"],
        ),
        (
            // In tar order `a/x` went through the lower symlink, then `a/` replaced it.
            "directory-named-late-over-lower-symlink",
            vec![
                vec![dir("b"), symlink("a", "b")],
                vec![file("a/x", b"x"), dir("a")],
            ],
            &["\"a\"", "only after entries below it", "symlink"],
        ),
        (
            // The marker may come after `p/a/x`, which then went through the symlink.
            "directory-named-late-over-lower-symlink-an-opaque-marker-removes",
            vec![
                vec![dir("c"), dir("p"), symlink("p/a", "../c")],
                vec![file("p/a/x", b"x"), opaque("p"), dir("p/a")],
            ],
            &["p/.wh..wh..opq", "markers must come first"],
        ),
        (
            "directory-named-late-over-lower-symlink-a-whiteout-removes",
            vec![
                vec![dir("c"), dir("p"), symlink("p/a", "../c")],
                vec![file("p/a/x", b"x"), whiteout("p/a"), dir("p/a")],
            ],
            &["p/.wh.a", "markers must come first"],
        ),
        (
            "directory-named-late-over-lower-file",
            vec![vec![file("a", b"f")], vec![file("a/x", b"x"), dir("a")]],
            &["\"a\"", "only after entries below it", "file"],
        ),
        (
            // The link went through the lower symlink (to `c/h`) before `a` replaced it.
            "file-over-implicit-dir-holding-a-link",
            vec![
                vec![dir("c"), symlink("a", "c"), file("t", b"t")],
                vec![hardlink("a/h", "t"), file("a", b"f")],
            ],
            &["\"a\"", "only after entries below it", "symlink"],
        ),
        (
            // As above, with an entry OSTree cannot store below `a`.
            "file-over-implicit-dir-holding-a-fifo",
            vec![
                vec![dir("c"), symlink("a", "c")],
                vec![E::Fifo { path: "a/f".into() }, symlink("a", "elsewhere")],
            ],
            &["\"a\"", "only after entries below it", "symlink"],
        ),
        (
            // The link took what the layers below have at `a`: nothing.
            "early-link-to-nothing",
            vec![
                vec![dir("etc")],
                vec![hardlink("etc/b", "etc/a"), dir("etc/a")],
            ],
            &["etc/b", "etc/a", "layers below have no file there"],
        ),
        (
            "symlink-loop",
            vec![vec![
                symlink("a", "b"),
                symlink("b", "a"),
                file("a/x", b"x"),
            ]],
            &["a/x", "too many levels of symbolic links"],
        ),
        (
            "link-to-whiteout",
            vec![
                vec![file("a", b"a")],
                vec![whiteout("a"), hardlink("b", ".wh.a")],
            ],
            &["\"b\"", "whiteout marker"],
        ),
        (
            "file-at-root",
            vec![vec![file("etc", b"e")], vec![file(".", b"root")]],
            &["\".\"", "root directory"],
        ),
        (
            "symlink-at-root",
            vec![vec![symlink("./", "/etc")]],
            &["root directory"],
        ),
    ];
    let repo = Repo::new();
    repo.import(
        &crate::serve::small_image(&tmp.path().join("good"), b"ok\n"),
        "good",
    );
    for (name, layers, expect) in cases {
        let dir = tmp.path().join(name);
        Layout::single(
            &dir,
            &layers.iter().map(|l| Layer::new(l)).collect::<Vec<_>>(),
        );
        let snap = repo.snapshot();
        let err = repo.fails(&["import", &Repo::oci(&dir, "latest"), name]);
        for e in expect {
            assert!(err.contains(e), "{name}: {e:?} not in {err}");
        }
        snap.assert_unchanged(&repo.path);
    }
    tools::fsck(&repo.path);
}
