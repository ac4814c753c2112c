//! Entry kinds and attributes, compared with `umoci unpack`.

use crate::util::*;
use crate::whiteouts::{check, check_against};

#[test]
fn hardlinks_in_any_order_to_lower_layers_and_chains() {
    let base = vec![dir("a"), file("a/base", b"base")];
    let (repo, commit) = check_against(
        &[
            base.clone(),
            vec![
                hardlink("a/early", "a/late"),
                file("a/late", b"late"),
                hardlink("a/chain", "a/early"),
                hardlink("a/tolower", "a/base"),
                hardlink("a/chain2", "a/tolower"),
            ],
        ],
        // umoci cannot link to a target that comes later: the oracle has the links after it
        &[
            base,
            vec![
                file("a/late", b"late"),
                hardlink("a/early", "a/late"),
                hardlink("a/chain", "a/early"),
                hardlink("a/tolower", "a/base"),
                hardlink("a/chain2", "a/tolower"),
            ],
        ],
    );
    // hardlinks are the same content object
    let ls = tools::ostree(&repo.path, &["ls", "-C", &commit, "/a"]);
    let csum = |name: &str| {
        ls.lines()
            .find(|l| l.ends_with(&format!("/a/{name}")))
            .unwrap()
            .split_whitespace()
            .nth(4)
            .unwrap()
            .to_string()
    };
    assert_eq!(csum("early"), csum("late"));
    assert_eq!(csum("chain"), csum("late"));
    assert_eq!(csum("tolower"), csum("base"));
    assert_eq!(csum("chain2"), csum("base"));
}

#[test]
fn xattrs_modes_and_owners() {
    let cap = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    check(&[vec![
        file_xattrs(
            "bin/ping",
            b"ping",
            &[("security.capability", cap), ("user.bin", b"\x00\xff\x00")],
        ),
        file_mode("bin/suid", b"s", 0o4755, 0, 0),
        file_mode("bin/sgid", b"g", 0o2711, 0, 50),
        dir_meta("tmp", 0o1777, 0, 0, &[]),
        file_mode("home/u/f", b"u", 0o600, 1000, 1000),
        file_mode("big-ids", b"x", 0o644, 65534, 4_000_000),
    ]]);
}

/// PAX values may hold any byte: tar-rs splits PAX records at newlines, so ocitree parses
/// them by length itself (a capability with a 0x0a byte, a value of newlines, and a long
/// path whose `path` record follows them, as Go orders records).
#[test]
fn xattr_values_with_newlines() {
    let cap = b"\x01\x00\x00\x02\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    let long = format!("bin/{}", "n".repeat(150));
    check(&[vec![
        file_xattrs(
            "bin/ping",
            b"ping",
            &[("security.capability", cap), ("user.nl", b"\n\na\nb\n")],
        ),
        file_xattrs(&long, b"long", &[("user.nl", b"x\ny")]),
    ]]);
}

#[test]
fn long_names_and_prefixes() {
    let long_dir = "d".repeat(120);
    let long = format!("{long_dir}/{}", "f".repeat(150));
    let (repo, _) = check(&[vec![
        file("./dot/slash", b"1"),
        file("/abs/olute", b"2"),
        file(&long, b"long"),
        symlink("longlink", &format!("/{long}")),
        hardlink("hl", &long),
        file("a/./b/../c", b"3"),
    ]]);
    assert_eq!(repo.ok(&["cat", "img", &format!("/{long}")]).stdout, "long");
    assert_eq!(repo.ok(&["cat", "img", "/a/c"]).stdout, "3");
}

#[test]
fn devices_and_fifos_are_skipped_with_a_warning() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    Layout::single(
        &dir,
        &[
            Layer::new(&[file("dev/keep", b"k"), file("dev/null", b"lower")]),
            Layer::new(&[
                E::Char {
                    path: "dev/zero".into(),
                    major: 1,
                    minor: 5,
                },
                E::Fifo {
                    path: "run/fifo".into(),
                },
                E::Char {
                    path: "dev/keep".into(),
                    major: 0,
                    minor: 0,
                },
            ]),
        ],
    );
    let repo = Repo::new();
    let r = repo.ok(&["import", &Repo::oci(&dir, "latest"), "img"]);
    assert!(
        r.stderr.contains("warning: image img: layer sha256:")
            && r.stderr.contains("skipped character device 1:5 /dev/zero"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("skipped FIFO /run/fifo"), "{}", r.stderr);
    // an overlay-style char 0:0 device is not a whiteout in an OCI layer, but it owns its
    // path: reported, and the lower file is gone (its layer, not the lower one, has the path)
    assert!(
        r.stderr.contains("skipped character device 0:0 /dev/keep"),
        "{}",
        r.stderr
    );
    assert_eq!(repo.run(&["cat", "img", "/dev/keep"]).code, 2);
    assert_eq!(repo.ok(&["cat", "img", "/dev/null"]).stdout, "lower");

    let strict = Repo::new();
    let snap = strict.snapshot();
    let err = strict.fails(&["import", "--strict", &Repo::oci(&dir, "latest"), "img"]);
    assert!(
        err.contains("dev/zero") && err.contains("character device"),
        "{err}"
    );
    snap.assert_unchanged(&strict.path);

    // Layers stored already are never read again, but what they left out still counts: a
    // re-import under another name or the same one warns again, and --strict refuses it
    // with the repository unchanged, as reading the layer would have.
    for name in ["other", "img"] {
        let r = repo.ok(&["import", &Repo::oci(&dir, "latest"), name]);
        assert!(
            r.stderr.contains("skipped FIFO /run/fifo"),
            "{name}: {}",
            r.stderr
        );
        let snap = repo.snapshot();
        let err = repo.fails(&["import", "--strict", &Repo::oci(&dir, "latest"), "strict"]);
        assert!(err.contains("dev/zero"), "{name}: {err}");
        snap.assert_unchanged(&repo.path);
    }
    // The same manifest under the same name (nothing to write but where it came from).
    let snap = repo.snapshot();
    let err = repo.fails(&["import", "--strict", &Repo::oci(&dir, "latest"), "img"]);
    assert!(err.contains("dev/zero"), "{err}");
    snap.assert_unchanged(&repo.path);
}
