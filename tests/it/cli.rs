//! The management commands, checked against the ostree CLI.

use std::process::Command;

use crate::util::*;

fn two_images() -> (Repo, tempfile::TempDir, String, String) {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    let mut l = Layout::new(&img);
    let base = Layer::new(&[
        dir_meta("etc", 0o755, 0, 0, &[]),
        file("etc/os", b"base\n"),
        symlink("etc/link", "os"),
        dir("empty"),
    ]);
    let a = l.image(&[base.clone(), Layer::new(&[file("app", b"a")])], false);
    let b = l.image(
        &[base, Layer::new(&[file("app", b"b"), whiteout("empty")])],
        false,
    );
    l.add(a, Some("a"), None).add(b, Some("b"), None);
    let repo = Repo::new();
    let ca = repo
        .import(&format!("oci:{}:a", img.display()), "app:a")
        .commit();
    let cb = repo
        .import(&format!("oci:{}:b", img.display()), "app:b")
        .commit();
    (repo, tmp, ca, cb)
}

#[test]
fn images_and_inspect() {
    let (repo, _t, ca, cb) = two_images();
    let out = repo.ok(&["images"]).stdout;
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "MANIFEST", "COMMIT", "SIZE", "FORMAT"]);
    assert_eq!((rows[1][4], rows[2][4]), ("plain", "plain"));
    assert_eq!(rows.len(), 3, "{out}");
    assert_eq!((rows[1][0], rows[1][2]), ("app:a", ca.as_str()));
    assert_eq!((rows[2][0], rows[2][2]), ("app:b", cb.as_str()));
    let v: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "app:b"]).stdout).unwrap();
    assert_eq!(v["commit"], cb.as_str());
    assert_eq!(v["ref"], "ocitree/image/app_3Ab");
    assert_eq!(v["manifest_digest"].as_str().unwrap(), rows[2][1]);
    let size: u64 = v["manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    assert_eq!(rows[2][3], size.to_string());
    let refs = repo.refs();
    for l in v["layers"].as_array().unwrap() {
        let r = l["ref"].as_str().unwrap();
        assert!(refs.contains(&r.to_string()), "{r} not in {refs:?}");
        assert_eq!(
            l["commit"].as_str().unwrap().trim(),
            tools::ostree(&repo.path, &["rev-parse", r]).trim()
        );
        assert!(l["diff_id"].as_str().unwrap().starts_with("sha256:"));
        // gzip layers: their blob comes back bit for bit only with exact-gzip records
        assert!(l["media_type"].as_str().unwrap().ends_with("gzip"), "{l}");
        assert_eq!(l["export_keeps_blob"], cfg!(feature = "exact-gzip"), "{l}");
        if !cfg!(feature = "exact-gzip") {
            assert!(
                l["export_note"].as_str().unwrap().contains("exact-gzip"),
                "{l}"
            );
        }
    }
    assert_eq!(
        v["config"]["rootfs"]["diff_ids"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn ls_matches_ostree_ls() {
    let (repo, _t, _ca, cb) = two_images();
    let ours = repo.ok(&["ls", "-R", "app:b", "/"]).stdout;
    let theirs = tools::ostree(&repo.path, &["ls", "-R", &cb, "/"]);
    assert_eq!(ours, theirs);
    let ours = repo.ok(&["ls", "app:b", "/etc"]).stdout;
    let theirs = tools::ostree(&repo.path, &["ls", &cb, "/etc"]);
    assert_eq!(ours, theirs);
    assert_eq!(repo.ok(&["cat", "app:b", "/etc/os"]).stdout, "base\n");
    assert!(
        repo.fails(&["cat", "app:b", "/etc"])
            .contains("not a regular file")
    );
    assert!(repo.fails(&["cat", "app:b", "/nope"]).contains("not found"));
    assert!(repo.fails(&["ls", "nosuch", "/"]).contains("not found"));
}

#[test]
fn checkout_matches_ostree_user_checkout() {
    let (repo, t, _ca, cb) = two_images();
    let ours = t.path().join("ours");
    let theirs = t.path().join("theirs");
    repo.ok(&["checkout", "app:b", ours.to_str().unwrap()]);
    tools::ostree(
        &repo.path,
        &[
            "checkout",
            "-U",
            "--force-copy",
            &cb,
            theirs.to_str().unwrap(),
        ],
    );
    tree::assert_same(&ours, &theirs);
    assert!(
        repo.fails(&["checkout", "app:b", ours.to_str().unwrap()])
            .contains("exists")
    );
    // Copies by default: editing a checked-out file in place leaves the repository intact.
    // --hardlink shares the objects' inodes (one more link each).
    use std::io::Write as _;
    use std::os::unix::fs::MetadataExt;
    let file = walk_files(&ours).into_iter().next().expect("a file");
    let rel = file.strip_prefix(&ours).unwrap().to_path_buf();
    let before = repo
        .ok(&["cat", "app:b", &format!("/{}", rel.display())])
        .stdout;
    assert_eq!(std::fs::metadata(&file).unwrap().nlink(), 1);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap()
        .write_all(b"edited")
        .unwrap();
    tools::fsck(&repo.path);
    let after = repo
        .ok(&["cat", "app:b", &format!("/{}", rel.display())])
        .stdout;
    assert_eq!(before, after);
    let linked = t.path().join("linked");
    repo.ok(&["checkout", "--hardlink", "app:b", linked.to_str().unwrap()]);
    assert!(std::fs::metadata(linked.join(&rel)).unwrap().nlink() > 1);
    let their_links = t.path().join("their-links");
    tools::ostree(
        &repo.path,
        &["checkout", "-U", &cb, their_links.to_str().unwrap()],
    );
    tree::assert_same(&linked, &their_links);
}

/// Every regular file below `dir`.
fn walk_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            out.extend(walk_files(&p));
        } else if m.is_file() {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// `rm` of several names: all or none.
#[test]
fn rm_takes_several_names_all_or_none() {
    let (repo, _t, _ca, _cb) = two_images();
    let snap = repo.snapshot();
    let err = repo.fails(&["rm", "app:a", "nosuch", "app:b"]);
    assert!(
        err.contains("nosuch") && err.contains("nothing was removed"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
    let r = repo.ok(&["rm", "app:a", "app:b"]);
    assert!(
        r.stdout.contains("Removed app:a") && r.stdout.contains("Removed app:b"),
        "{r:?}"
    );
    assert!(
        repo.ok(&["images"]).stdout.trim().lines().count() <= 1,
        "{r:?}"
    );
    assert!(!repo.refs().iter().any(|r| r.starts_with("ocitree/image/")));
}

#[test]
fn rm_and_prune() {
    let (repo, _t, _ca, _cb) = two_images();
    let before = repo.snapshot().objects();
    assert_eq!(
        repo.refs()
            .iter()
            .filter(|r| r.starts_with("ocitree/blob/"))
            .count(),
        3
    );
    repo.ok(&["rm", "app:a"]);
    assert!(repo.fails(&["rm", "app:a"]).contains("not found"));
    let out = repo.ok(&["prune"]).stdout;
    // app:a's own top layer goes (blob + diffid refs); the shared base stays
    assert!(out.starts_with("Pruned: 2 layer refs,"), "{out}");
    let refs = repo.refs();
    assert_eq!(
        refs.iter()
            .filter(|r| r.starts_with("ocitree/blob/"))
            .count(),
        2,
        "{refs:?}"
    );
    assert!(!refs.iter().any(|r| r == "ocitree/image/app_3Aa"));
    assert!(repo.snapshot().objects() < before);
    tools::fsck(&repo.path);
    assert_eq!(repo.ok(&["cat", "app:b", "/app"]).stdout, "b");
    repo.ok(&["rm", "app:b"]);
    repo.ok(&["prune"]);
    assert_eq!(repo.refs(), Vec::<String>::new());
    tools::fsck(&repo.path);
}

#[test]
fn repo_from_environment_and_default_creation() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    Layout::single(&dir, &[Layer::new(&[file("x", b"x")])]);
    let path = tmp.path().join("envrepo");
    let out = Command::new(bin())
        .env("OCITREE_REPO", &path)
        .args(["import", &Repo::oci(&dir, "latest"), "x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mode = tools::ostree(&path, &["config", "get", "core.mode"]);
    assert_eq!(mode.trim(), "bare-user");
    assert!(tools::ostree(&path, &["refs"]).contains("ocitree/image/x"));
    // init refuses to change the mode of an existing repo
    let out = Command::new(bin())
        .arg("--repo")
        .arg(&path)
        .args(["init", "--mode", "archive"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// man/ is generated from the clap definition and must be current.
#[test]
fn man_pages_are_current() {
    let tmp = tempdir();
    tools::run(Command::new(bin()).arg("generate-man").arg(tmp.path()));
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let names = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(tmp.path()),
        names(&committed),
        "man pages: run `cargo run -- generate-man man`"
    );
    for n in names(tmp.path()) {
        assert_eq!(
            std::fs::read_to_string(tmp.path().join(&n)).unwrap(),
            std::fs::read_to_string(committed.join(&n)).unwrap(),
            "man/{n} is stale: run `cargo run -- generate-man man`"
        );
    }
}

/// Every command works on an archive repo too.
#[test]
fn commands_on_an_archive_repo() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    Layout::single(
        &img,
        &[
            Layer::new(&[file("etc/os", b"x\n"), file("big", &big)]),
            Layer::new(&[whiteout("etc/os")]),
        ],
    );
    let repo = Repo::with_mode("archive");
    let c = repo.import(&Repo::oci(&img, "latest"), "a").commit();
    assert_eq!(
        repo.ok(&["ls", "-R", "a", "/"]).stdout,
        tools::ostree(&repo.path, &["ls", "-R", &c, "/"])
    );
    let cat = repo.cmd().args(["cat", "a", "/big"]).output().unwrap();
    assert!(
        cat.status.success() && cat.stdout == big,
        "cat of a spooled archive object"
    );
    let out = tmp.path().join("co");
    repo.ok(&["checkout", "a", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out.join("big")).unwrap(), big);
    assert!(!out.join("etc/os").exists());
    repo.ok(&["rm", "a"]);
    repo.ok(&["prune"]);
    assert!(repo.refs().is_empty());
    tools::fsck(&repo.path);
}

/// An import killed midway leaves nothing the next run trips on.
#[test]
fn interrupted_import_then_retry() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    let files: Vec<E> = (0..3000)
        .map(|i| file(&format!("d{}/f{i}", i % 30), format!("{i}").as_bytes()))
        .collect();
    let big: Vec<u8> = (0..64_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut entries = files;
    entries.push(file("big", &big));
    Layout::single(&img, &[Layer::new(&entries)]);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let mut child = repo
        .cmd()
        .args(["import", &Repo::oci(&img, "latest"), "x"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the import finished before it could be interrupted: make the image bigger"
    );
    snap.assert_unchanged(&repo.path);
    let r = repo.import(&Repo::oci(&img, "latest"), "x");
    assert_eq!(r.layers(), (1, 0));
    assert_eq!(repo.ok(&["cat", "x", "/d7/f7"]).stdout, "7");
    tools::fsck(&repo.path);
}

/// An archive repo written by ocitree, served by a static HTTP server on loopback, lets
/// `ostree pull` fetch an image into a fresh repo with the identical commit.
#[test]
fn ostree_pull_from_an_archive_repo() {
    tools::require("python3");
    let tmp = tempdir();
    let img = tmp.path().join("img");
    Layout::single(
        &img,
        &[
            Layer::new(&[file("etc/os", b"served\n"), symlink("l", "etc/os")]),
            Layer::new(&[file("app", b"1")]),
        ],
    );
    let repo = Repo::with_mode("archive");
    let commit = repo.import(&Repo::oci(&img, "latest"), "served:1").commit();
    // a free loopback port, then python's static file server on it (killed on drop)
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(&repo.path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let client = tmp.path().join("client");
    tools::run(
        Command::new("ostree")
            .arg(format!("--repo={}", client.display()))
            .args(["init", "--mode=archive"]),
    );
    tools::ostree(
        &client,
        &[
            "remote",
            "add",
            "--no-gpg-verify",
            "origin",
            &format!("http://127.0.0.1:{port}"),
        ],
    );
    // the summary is current: the remote lists the image ref
    let mut refs = String::new();
    for _ in 0..50 {
        let out = Command::new("ostree")
            .arg(format!("--repo={}", client.display()))
            .args(["remote", "refs", "origin"])
            .output()
            .unwrap();
        refs = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(refs.contains("origin:ocitree/image/served_3A1"), "{refs}");
    tools::ostree(&client, &["pull", "origin", "ocitree/image/served_3A1"]);
    assert_eq!(
        tools::ostree(&client, &["rev-parse", "origin:ocitree/image/served_3A1"]).trim(),
        commit
    );
    tools::fsck(&client);
    // removing the image updates the summary too
    repo.ok(&["rm", "served:1"]);
    let refs = tools::ostree(&client, &["remote", "refs", "origin"]);
    assert!(!refs.contains("served"), "{refs}");
}

/// `check` reads the manifest and config only (the layer blobs can be gone) and writes nothing.
#[test]
fn check_lists_what_an_import_would_fetch() {
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    let repo = Repo::new();
    repo.import(&Repo::oci(&sample, "v1"), "s");
    let tmp = tempdir();
    let copy = tmp.path().join("sample");
    tools::run(Command::new("cp").arg("-a").arg(&sample).arg(&copy));
    let v2: serde_json::Value = {
        let idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(copy.join("index.json")).unwrap()).unwrap();
        let d = idx["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == "v2")
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string();
        serde_json::from_slice(&std::fs::read(copy.join("blobs/sha256").join(d)).unwrap()).unwrap()
    };
    let layers = v2["layers"].as_array().unwrap();
    for l in layers {
        std::fs::remove_file(
            copy.join("blobs/sha256")
                .join(l["digest"].as_str().unwrap().trim_start_matches("sha256:")),
        )
        .unwrap();
    }
    let snap = repo.snapshot();
    let out = repo.ok(&["check", &Repo::oci(&copy, "v2"), "s"]).stdout;
    let last = layers.last().unwrap();
    assert!(out.contains("Status:   update available"), "{out}");
    assert!(
        out.contains(&format!(
            "Layers:   3 (2 present, 1 to fetch, {} bytes)",
            last["size"]
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("fetch   {}", last["digest"].as_str().unwrap())),
        "{out}"
    );
    let same = repo.ok(&["check", &Repo::oci(&sample, "v1"), "s"]).stdout;
    assert!(same.contains("Status:   up to date"), "{same}");
    let new = repo.ok(&["check", &Repo::oci(&sample, "v1"), "nosuchname"]);
    assert_eq!(new.field("Status"), "not imported");
    snap.assert_unchanged(&repo.path);
    // A read-only command: a mistyped repository path is an error, not a new repository.
    let typo = repo.path.with_file_name("typo");
    let r = output(
        Command::new(bin())
            .arg("--repo")
            .arg(&typo)
            .args(["check", &Repo::oci(&sample, "v1")])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(!typo.exists(), "check created {}", typo.display());
}

/// `--json`: one bounded JSON object per line, keys in snake_case, events in order with sizes
/// that add up, and a final result; `--quiet`: the commit checksum alone.
#[test]
fn import_json_events_and_quiet() {
    let imgs = wild_images();
    let small = imgs.join("small");
    let repo = Repo::new();
    let r = repo.ok(&["import", &Repo::oci(&small, "latest"), "a", "--json"]);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| {
            assert!(l.len() < 4096, "unbounded line {l}");
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))
        })
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"resolved"), "{kinds:?}");
    assert_eq!(&kinds[kinds.len() - 2..], ["done", "imported"], "{kinds:?}");
    let resolved = &events[0];
    let starts: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "layer-start")
        .collect();
    assert_eq!(starts.len() as u64, resolved["to_read"].as_u64().unwrap());
    let total: u64 = starts.iter().map(|e| e["size"].as_u64().unwrap()).sum();
    assert_eq!(total, resolved["bytes"].as_u64().unwrap());
    for s in &starts {
        // the last byte count of each layer is its size, and it ends with a layer-done
        let index = &s["index"];
        let last = events
            .iter()
            .rfind(|e| e["event"] == "layer-bytes" && &e["index"] == index)
            .unwrap();
        assert_eq!(last["read"], s["size"]);
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "layer-done" && &e["index"] == index)
        );
    }
    let imported = events.last().unwrap();
    let commit = tools::ostree(&repo.path, &["rev-parse", "ocitree/image/a"]);
    assert_eq!(imported["commit"], commit.trim());
    assert_eq!(imported["layers_imported"], resolved["to_read"]);
    assert_eq!(imported["layers_reused"], 0, "{imported}");
    // one spelling for every key, as `inspect --json` writes them: snake_case
    for e in &events {
        for k in e.as_object().unwrap().keys() {
            let snake = k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            assert!(snake, "key {k:?} is not snake_case: {e}");
        }
    }

    // the same image under another name: every layer reported as reused, none read
    let r = repo.ok(&["import", &Repo::oci(&small, "latest"), "b", "--json"]);
    assert!(!r.stdout.contains("layer-start"), "{}", r.stdout);
    assert!(
        r.stdout.contains("\"event\":\"layer-reused\""),
        "{}",
        r.stdout
    );

    // the same image under the same name (nothing to do): the same events, every layer reused
    let r = repo.ok(&["import", &Repo::oci(&small, "latest"), "b", "--json"]);
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let reused = kinds.iter().filter(|k| **k == "layer-reused").count();
    assert_eq!(kinds.first(), Some(&"resolved"), "{kinds:?}");
    assert_eq!(
        reused as u64,
        events[0]["layers"].as_u64().unwrap(),
        "{kinds:?}"
    );
    assert_eq!(events[0]["to_read"], 0);

    let q = repo.ok(&["import", &Repo::oci(&small, "latest"), "c", "--quiet"]);
    let c = tools::ostree(&repo.path, &["rev-parse", "ocitree/image/c"]);
    assert_eq!(q.stdout, c, "--quiet prints the commit alone");
}

/// A reader that goes away (`ocitree inspect x | head -c 1`) ends the command cleanly: exit 0,
/// no panic message (println! used to panic on the broken pipe).
#[test]
fn closed_stdout_is_a_clean_exit() {
    let (repo, _t, _, _) = two_images();
    for args in [
        &["inspect", "app:a"][..],
        &["images"],
        &["ls", "-R", "app:a"],
    ] {
        let mut child = repo
            .cmd()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // close our end before the command writes
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

/// `--repo` on a directory holding other files, or on a file, is refused and leaves it as it
/// was; a path whose parent is missing (a typo) creates nothing; an empty or new directory
/// under an existing parent becomes a repository.
#[test]
fn repo_option_refuses_non_repositories_and_missing_parents() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    Layout::single(&img, &[Layer::new(&[file("x", b"x")])]);
    let src = Repo::oci(&img, "latest");
    let at = |path: &std::path::Path, args: &[&str]| {
        let out = Command::new(bin())
            .arg("--repo")
            .arg(path)
            .env_remove("OCITREE_REPO")
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let listing = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    // A directory with the user's files.
    let docs = tmp.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(docs.join("notes.txt"), b"mine").unwrap();
    for args in [&["import", &src, "x"][..], &["init"][..]] {
        let (code, err) = at(&docs, args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(
            err.contains("is not an OSTree repository") && err.contains("not empty"),
            "{err}"
        );
        assert_eq!(listing(&docs), vec!["notes.txt".to_string()]);
    }
    // A file.
    let (code, err) = at(&docs.join("notes.txt"), &["init"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a directory"), "{err}");
    assert_eq!(std::fs::read(docs.join("notes.txt")).unwrap(), b"mine");
    // A mistyped path: nothing is created.
    let typo = tmp.path().join("rpeos/nested/repo");
    let (code, err) = at(&typo, &["import", &src, "x"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("parent directory") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!tmp.path().join("rpeos").exists());
    // An empty directory and a new leaf directory are fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for path in [&empty, &tmp.path().join("new")] {
        let (code, err) = at(path, &["import", &src, "x"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(tools::ostree(path, &["refs"]).contains("ocitree/image/x"));
        tools::fsck(path);
    }
}

/// A bare-user-only repository keeps no owners, xattrs or setuid/setgid bits, so libostree
/// would store the sample's files (one has an xattr) unlike their checksums, `fsck` failing.
/// An import into one that `ostree init` made is refused before anything is written, and
/// `init` does not make one.
#[test]
fn bare_user_only_repositories_are_refused() {
    let tmp = tempdir();
    let path = tmp.path().join("repo");
    tools::ostree(&path, &["init", "--mode=bare-user-only"]);
    let repo = Repo {
        tmp,
        path: path.clone(),
    };
    let snap = repo.snapshot();
    let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample");
    let err = repo.fails(&["import", &Repo::oci(&sample, "v1"), "s"]);
    assert!(
        err.contains("bare-user-only") && err.contains("owners") && err.contains("bare-user,"),
        "{err}"
    );
    snap.assert_unchanged(&path);
    tools::fsck(&path);

    let fresh = repo.tmp.path().join("fresh");
    let out = Command::new(bin())
        .arg("--repo")
        .arg(&fresh)
        .args(["init", "--mode", "bare-user-only"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("bare-user-only"), "{err}");
    assert!(!fresh.exists());
}

/// Mistakes in options and arguments are named as what they are, not as image references.
#[test]
fn option_errors_name_the_option() {
    let (repo, t, _ca, _cb) = two_images();
    let out = format!("oci:{}", t.path().join("o").display());
    for (args, expect) in [
        (
            vec![
                "export",
                "--compression",
                "gzip",
                "--compression-level",
                "42",
                "app:b",
                &out,
            ],
            "--compression gzip: level 42 is out of range",
        ),
        (
            vec![
                "export",
                "--creds",
                "nocolon",
                "app:b",
                "docker://127.0.0.1:1/x:1",
            ],
            "--creds: credentials are USER:PASSWORD",
        ),
        (
            vec!["cat", "app:b", "/etc"],
            "path /etc of image app:b: not a regular file",
        ),
    ] {
        let err = repo.fails(&args);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("invalid image reference"), "{args:?}: {err}");
    }
    let err = repo.fails(&["init", "--mode", "archive"]);
    assert!(err.contains("in mode bare-user, not archive"), "{err}");
}
