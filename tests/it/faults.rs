//! Never a broken repository: `import`, `rm` and `prune` killed (SIGKILL) at random points, a
//! full disk, a layer whose blob ends mid-way, concurrent imports beside `prune` and `rm`.
//! After each, `ostree fsck` is clean, refs name complete commits, and the same command run
//! again completes with the identical commit.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::faults::{self, Campaign, Rng, Tmpfs};
use crate::util::*;

/// Asserts `ostree fsck` finds no error and no commit is left marked partial.
fn assert_whole(repo: &Path, what: &str) {
    let (ok, out) = faults::fsck_output(repo);
    assert!(ok, "{what}: fsck: {out}");
    assert_eq!(faults::partial_marks(repo), Vec::<String>::new(), "{what}");
}

/// `ocitree images` as (name, commit) rows; it must succeed.
fn images(repo: &Repo) -> Vec<(String, String)> {
    repo.ok(&["images"])
        .stdout
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_string(), f[2].to_string())
        })
        .collect()
}

/// `prune` killed at 20 or more points spread over its run: fsck stays clean (libostree's own prune
/// left commits without their dirtrees about half the time), the kept image is untouched, and
/// prune run again leaves exactly what an uninterrupted prune leaves.
#[test]
fn prune_killed_anywhere_leaves_a_whole_repository() {
    let tmp = tempdir();
    let (keep, gone) = (tmp.path().join("keep"), tmp.path().join("gone"));
    faults::multi_layer_image(&keep, 1, 2, 50, 2048);
    // Many small objects, so that deleting them is most of prune's run.
    faults::multi_layer_image(&gone, 2, 3, 100, 256);
    let repo = Repo::new();
    let kept = repo.import(&Repo::oci(&keep, "latest"), "keep").commit();
    let garbage = || {
        repo.import(&Repo::oci(&gone, "latest"), "gone");
        repo.ok(&["rm", "gone"]);
    };
    // The fastest of three runs, so that a load spike does not push most kills past the end.
    let mut span = Duration::MAX;
    for _ in 0..3 {
        garbage();
        span = span.min(faults::timed(repo.cmd().arg("prune")));
    }
    let clean = repo.snapshot();
    let mut kills = Campaign::new("prune", span, 0x9e3779b9, 20, 8);
    while kills.more() {
        garbage();
        let what = kills.kill(repo.cmd().arg("prune"));
        assert_whole(&repo.path, &what);
        assert_eq!(images(&repo), vec![("keep".to_string(), kept.clone())]);
        repo.ok(&["prune"]);
        clean.assert_unchanged(&repo.path);
        assert_whole(&repo.path, &what);
    }
    kills.finish();
}

/// `import` of a 4-layer image of about 3 MB killed at 20 or more points spread over its run: fsck
/// stays clean, the image is either absent or complete, and importing again gives the
/// identical commit and exactly the objects of an uninterrupted import.
#[test]
fn import_killed_anywhere_leaves_a_whole_repository() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    faults::multi_layer_image(&img, 3, 4, 30, 24 * 1024);
    let src = Repo::oci(&img, "latest");
    let repo = Repo::new();
    let empty = repo.snapshot();
    let reset = || {
        repo.ok(&["rm", "m"]);
        repo.ok(&["prune"]);
        empty.assert_unchanged(&repo.path);
    };
    // The fastest of three runs, as for prune.
    let mut span = faults::timed(repo.cmd().args(["import", &src, "m"]));
    let full = repo.snapshot();
    let commit = tools::ostree(&repo.path, &["rev-parse", "ocitree/image/m"])
        .trim()
        .to_string();
    for _ in 0..2 {
        reset();
        span = span.min(faults::timed(repo.cmd().args(["import", &src, "m"])));
    }
    reset();
    let mut kills = Campaign::new("import", span, 0x5eed_0001, 20, 8);
    while kills.more() {
        let what = kills.kill(repo.cmd().args(["import", &src, "m"]));
        let (ok, out) = faults::fsck_output(&repo.path);
        assert!(ok, "{what}: fsck: {out}");
        let listed = images(&repo);
        assert!(
            listed.is_empty() || listed == vec![("m".to_string(), commit.clone())],
            "{what}: {listed:?}"
        );
        assert_eq!(repo.import(&src, "m").commit(), commit, "{what}");
        full.assert_unchanged(&repo.path);
        assert_whole(&repo.path, &what);
        assert_eq!(faults::staging_entries(&repo.path), Vec::<String>::new());
        reset();
    }
    kills.finish();
}

/// `rm` killed at 10 or more points: the image is listed complete or not at all, fsck is clean, and rm
/// run again finishes (or finds it already gone).
#[test]
fn rm_killed_anywhere_leaves_a_whole_repository() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    faults::multi_layer_image(&img, 4, 2, 10, 1024);
    let other = tmp.path().join("other");
    faults::multi_layer_image(&other, 5, 1, 10, 1024);
    let repo = Repo::new();
    let kept = repo.import(&Repo::oci(&other, "latest"), "b").commit();
    let commit = repo.import(&Repo::oci(&img, "latest"), "a").commit();
    // The fastest of five runs (rm is short, mostly process start-up), as for prune.
    let mut span = faults::timed(repo.cmd().args(["rm", "a"]));
    for _ in 0..4 {
        repo.import(&Repo::oci(&img, "latest"), "a");
        span = span.min(faults::timed(repo.cmd().args(["rm", "a"])));
    }
    let mut kills = Campaign::new("rm", span, 0x5eed_0002, 10, 3);
    while kills.more() {
        repo.import(&Repo::oci(&img, "latest"), "a");
        let what = kills.kill(repo.cmd().args(["rm", "a"]));
        assert_whole(&repo.path, &what);
        let listed = images(&repo);
        let b = ("b".to_string(), kept.clone());
        assert!(
            listed == vec![b.clone()] || listed == vec![("a".to_string(), commit.clone()), b],
            "{what}: {listed:?}"
        );
        let again = repo.run(&["rm", "a"]);
        assert!(
            again.code == 0 || (listed.len() == 1 && again.stderr.contains("not found")),
            "{what}: {again:?}"
        );
        assert_eq!(images(&repo), vec![("b".to_string(), kept.clone())]);
    }
    kills.finish();
}

/// An import that fills the disk fails with a clear error (exit 2), leaves the repository as
/// it was and the space it took free again (no staging directory left); once the disk is
/// bigger, the same import succeeds with the expected commit.
#[test]
fn full_disk_import_fails_cleanly_then_succeeds_with_room() {
    let tmp = tempdir();
    let small = tmp.path().join("small");
    faults::multi_layer_image(&small, 6, 1, 4, 1024);
    let big = tmp.path().join("big");
    // About 30 MB: more than the 20 MB mount holds.
    faults::multi_layer_image(&big, 7, 3, 40, 256 * 1024);
    let expected = {
        let r = Repo::new();
        r.import(&Repo::oci(&big, "latest"), "big").commit()
    };
    // libostree refuses a write that would leave less than `core.min-free-space-percent` (3%
    // by default) free; with 0, the write itself fails with ENOSPC.
    for (min_free, message) in [
        (None, "min-free-space-percent"),
        (Some("0"), "No space left on device"),
    ] {
        let mnt = Tmpfs::mount(&tmp.path().join("mnt"), "20m");
        let repo = Repo {
            path: mnt.dir.join("repo"),
            tmp: tempdir(),
        };
        repo.ok(&["init"]);
        if let Some(v) = min_free {
            tools::ostree(
                &repo.path,
                &["config", "set", "core.min-free-space-percent", v],
            );
        }
        repo.import(&Repo::oci(&small, "latest"), "small");
        let before = repo.snapshot();
        let free = mnt.free();
        let tmp_before = faults::tmp_contents(&repo.path);
        let err = repo.fails(&["import", &Repo::oci(&big, "latest"), "big"]);
        assert!(err.contains(message), "{err}");
        assert!(err.contains("big"), "the error names the image: {err}");
        before.assert_unchanged(&repo.path);
        assert_eq!(faults::tmp_contents(&repo.path), tmp_before, "{message}");
        // Every byte the import took is free again (give or take libostree's small files).
        let after = mnt.free();
        assert!(
            after + 64 * 1024 >= free,
            "{message}: free space {after} < {free} before the import"
        );
        mnt.resize("200m");
        let r = repo.import(&Repo::oci(&big, "latest"), "big");
        assert_eq!(r.commit(), expected, "{message}");
        assert_whole(&repo.path, message);
        drop(repo);
        drop(mnt);
    }
}

/// A layer blob that ends part-way (its writer goes away) fails the import and leaves nothing;
/// meanwhile another import, blocked inside its transaction on a blob still being written, keeps
/// its staging directory, holds off a `prune` (which says it waits) and completes with the
/// expected commit.
#[test]
fn failed_import_leaves_nothing_and_spares_a_running_import() {
    tools::require("mkfifo");
    let tmp = tempdir();
    let img = tmp.path().join("img");
    faults::multi_layer_image(&img, 8, 2, 20, 16 * 1024);
    let lone = Repo::new();
    lone.import(&Repo::oci(&img, "latest"), "x");
    let layers = layer_blobs(&img);
    // The second layer's blob comes through a FIFO.
    let fifo_image = |name: &str| {
        let dir = tmp.path().join(name);
        tools::run(Command::new("cp").arg("-a").arg(&img).arg(&dir));
        let blob = dir.join("blobs/sha256").join(&layers[1]);
        std::fs::remove_file(&blob).unwrap();
        tools::run(Command::new("mkfifo").arg(&blob));
        (dir, blob)
    };
    let data = std::fs::read(img.join("blobs/sha256").join(&layers[1])).unwrap();
    let repo = Repo::new();
    let before = repo.snapshot();
    let tmp_before = faults::tmp_contents(&repo.path);

    // The running import: blocked on its FIFO, inside its transaction.
    let (slow, slow_blob) = fifo_image("slow");
    let running = repo
        .cmd()
        .args(["import", &Repo::oci(&slow, "latest"), "slow"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut writer = std::fs::OpenOptions::new()
        .write(true)
        .open(&slow_blob)
        .unwrap();
    wait_for(|| !faults::staging_entries(&repo.path).is_empty());
    let held = faults::staging_entries(&repo.path);

    // The failing import: its blob's writer stops half-way.
    let (cut, cut_blob) = fifo_image("cut");
    let half = data[..data.len() / 2].to_vec();
    let feeder = std::thread::spawn(move || {
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&cut_blob)
            .unwrap();
        let _ = w.write_all(&half);
    });
    let err = repo.fails(&["import", &Repo::oci(&cut, "latest"), "cut"]);
    feeder.join().unwrap();
    assert!(err.contains(&layers[1]), "the error names the layer: {err}");
    // Its staging directory is gone; the running import's is not.
    assert_eq!(faults::staging_entries(&repo.path), held);

    // A prune waits for the running import (which holds the repository lock shared).
    let mut prune = repo
        .cmd()
        .arg("prune")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(prune.try_wait().unwrap().is_none(), "prune did not wait");
    {
        use std::io::Write;
        writer.write_all(&data).unwrap();
    }
    drop(writer);
    let out = running.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let pruned = prune.wait_with_output().unwrap();
    assert!(pruned.status.success(), "{pruned:?}");
    assert!(
        String::from_utf8_lossy(&pruned.stderr).contains("Waiting for other ocitree commands"),
        "{pruned:?}"
    );
    // The image commit records its source and name: compare its tree, and the layer commits.
    assert_eq!(
        tools::ostree(&repo.path, &["ls", "-R", "-C", "ocitree/image/slow", "/"]),
        tools::ostree(&lone.path, &["ls", "-R", "-C", "ocitree/image/x", "/"])
    );
    for l in &layers {
        let r = format!("ocitree/blob/sha256/{l}");
        assert_eq!(
            tools::ostree(&repo.path, &["rev-parse", &r]),
            tools::ostree(&lone.path, &["rev-parse", &r])
        );
    }
    assert_whole(&repo.path, "after both imports");
    assert_eq!(faults::tmp_contents(&repo.path), tmp_before);
    repo.ok(&["rm", "slow"]);
    repo.ok(&["prune"]);
    before.assert_unchanged(&repo.path);
}

/// Commits an interrupted import left marked partial (killed while its transaction
/// committed) are unmarked by the next import of the image and by prune, once whole; a marked
/// commit with an object missing stays marked.
#[test]
fn partial_marks_of_an_interrupted_import_are_healed() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    faults::multi_layer_image(&img, 9, 2, 5, 1024);
    let repo = Repo::new();
    let src = Repo::oci(&img, "latest");
    let commit = repo.import(&src, "x").commit();
    let commits: Vec<String> = tools::ostree(&repo.path, &["refs"])
        .lines()
        .map(|r| {
            tools::ostree(&repo.path, &["rev-parse", r])
                .trim()
                .to_string()
        })
        .collect();
    let mark = || {
        for c in &commits {
            std::fs::write(repo.path.join(format!("state/{c}.commitpartial")), b"").unwrap();
        }
        assert!(!faults::partial_marks(&repo.path).is_empty());
    };
    mark();
    assert_eq!(repo.import(&src, "x").commit(), commit);
    assert_whole(&repo.path, "after the import");
    mark();
    repo.ok(&["prune"]);
    assert_whole(&repo.path, "after prune");
    // A commit that really misses an object keeps its mark.
    let other = tmp.path().join("other");
    Layout::single(&other, &[Layer::new(&[file("only", b"only here")])]);
    let broken = repo.import(&Repo::oci(&other, "latest"), "y").commit();
    let file_obj = tools::ostree(&repo.path, &["ls", "-C", &broken, "/only"]);
    let checksum = file_obj.split_whitespace().nth(4).unwrap().to_string();
    let path = repo.path.join(format!(
        "objects/{}/{}.file",
        &checksum[..2],
        &checksum[2..]
    ));
    std::fs::remove_file(&path).unwrap();
    let marker = format!("{broken}.commitpartial");
    std::fs::write(repo.path.join("state").join(&marker), b"").unwrap();
    repo.ok(&["prune"]);
    assert!(faults::partial_marks(&repo.path).contains(&marker));
}

/// While another program's libostree transaction holds the repository's `.lock` shared (as
/// `ostree commit` does), prune waits before deleting objects, as libostree's own prune does.
#[test]
fn prune_waits_for_another_programs_transaction() {
    tools::require("python3");
    let tmp = tempdir();
    let img = tmp.path().join("img");
    faults::multi_layer_image(&img, 10, 1, 5, 1024);
    let repo = Repo::new();
    repo.import(&Repo::oci(&img, "latest"), "x");
    repo.ok(&["rm", "x"]);
    let ready = tmp.path().join("ready");
    let released = tmp.path().join("released");
    // libostree takes open file description locks; a POSIX record lock from another process
    // conflicts with them the same way. The holder writes the time just before it exits and
    // so lets go of the lock: a prune that waited ends after that time, however loaded the
    // machine is.
    let script = format!(
        "import fcntl, time\nf = open({:?}, 'a+')\nfcntl.lockf(f, fcntl.LOCK_SH)\nopen({:?}, 'w').close()\ntime.sleep(1.5)\nopen({:?}, 'w').write(repr(time.time()))\n",
        repo.path.join(".lock").display().to_string(),
        ready.display().to_string(),
        released.display().to_string()
    );
    let mut holder = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .spawn()
        .unwrap();
    wait_for(|| ready.exists());
    let out = repo.ok(&["prune"]);
    let ended = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(holder.wait().unwrap().success());
    let let_go: f64 = std::fs::read_to_string(&released)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        ended >= let_go,
        "prune did not wait: it ended at {ended}, the lock was let go after {let_go}"
    );
    assert!(out.stdout.contains("layer refs"), "{out:?}");
    assert_eq!(repo.refs(), Vec::<String>::new());
    assert_whole(&repo.path, "after prune");
}

/// The hex digests of the layers of LAYOUT:latest, base first.
fn layer_blobs(layout: &Path) -> Vec<String> {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let hex = |d: &serde_json::Value| {
        d["digest"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string()
    };
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            layout
                .join("blobs/sha256")
                .join(hex(&index["manifests"][0])),
        )
        .unwrap(),
    )
    .unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(hex)
        .collect()
}

fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..2000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out");
}

/// Four imports at once (the same image twice under one name, the same image under another,
/// and images sharing its base layer), while `rm` removes the previous round's images and
/// `prune` runs in a loop: every import gives the commit a lone import gives, and fsck is
/// clean. Three rounds.
#[test]
fn concurrent_imports_beside_prune_and_rm() {
    let tmp = tempdir();
    let mut rng = Rng::new(0x5eed_0003);
    let base = Layer::with(
        tar_of(&faults::random_entries(&mut rng, "base", 60, 8 * 1024)),
        Comp::Gzip,
        false,
    );
    let top = |rng: &mut Rng, tag: &str| {
        Layer::with(
            tar_of(&faults::random_entries(rng, tag, 30, 8 * 1024)),
            Comp::None,
            false,
        )
    };
    let p = tmp.path().join("p");
    let q = tmp.path().join("q");
    Layout::single(&p, &[base.clone(), top(&mut rng, "p")]);
    Layout::single(&q, &[base, top(&mut rng, "q")]);
    let sources = [
        ("p", Repo::oci(&p, "latest")),
        ("p", Repo::oci(&p, "latest")),
        ("pp", Repo::oci(&p, "latest")),
        ("q", Repo::oci(&q, "latest")),
    ];
    // The commit records the image name: a lone import under each name of each round.
    let lone = Repo::new();
    let expected = |round: usize| -> Vec<String> {
        sources
            .iter()
            .map(|(n, s)| lone.import(s, &format!("{n}{round}")).commit())
            .collect()
    };
    let repo = Repo::new();
    let mut runs = 0;
    for round in 0..3 {
        let names: Vec<String> = sources.iter().map(|(n, _)| format!("{n}{round}")).collect();
        let previous: Vec<String> = if round == 0 {
            vec![]
        } else {
            let mut v: Vec<String> = sources
                .iter()
                .map(|(n, _)| format!("{n}{}", round - 1))
                .collect();
            v.dedup();
            v
        };
        let expected = expected(round);
        let done = std::sync::atomic::AtomicBool::new(false);
        let (results, prunes) = std::thread::scope(|s| {
            let imports: Vec<_> = sources
                .iter()
                .zip(&names)
                .map(|((_, src), name)| {
                    let repo = &repo;
                    s.spawn(move || repo.run(&["import", src, name]))
                })
                .collect();
            let side = s.spawn(|| {
                let mut prunes = 0;
                for name in &previous {
                    repo.ok(&["rm", name]);
                    repo.ok(&["prune"]);
                    prunes += 1;
                }
                while !done.load(std::sync::atomic::Ordering::SeqCst) || prunes < 2 {
                    repo.ok(&["prune"]);
                    prunes += 1;
                }
                prunes
            });
            let results: Vec<Run> = imports.into_iter().map(|h| h.join().unwrap()).collect();
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            (results, side.join().unwrap())
        });
        eprintln!("round {round}: 4 imports beside {prunes} prunes");
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.code, 0, "round {round}, import {i}: {r:?}");
            assert_eq!(r.commit(), expected[i], "round {round}, import {i}");
            runs += 1;
        }
        assert_whole(&repo.path, &format!("round {round}"));
        let mut want: Vec<(String, String)> = names
            .iter()
            .zip(&expected)
            .map(|(n, c)| (n.clone(), c.clone()))
            .collect();
        want.sort();
        want.dedup();
        assert_eq!(images(&repo), want, "round {round}");
    }
    assert_eq!(runs, 12);
}
