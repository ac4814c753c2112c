//! Export faults: a destination is complete and valid, or as it was before — whatever kills
//! or starves the export (SIGKILL at random points, a full disk, a reader that goes away).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

/// A small deterministic random generator (xorshift64*), so that a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n.div_ceil(8))
            .flat_map(|_| self.next().to_le_bytes())
            .take(n)
            .collect()
    }
    /// A fraction in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A repository holding image `img`: three uncompressed layers of 2 MiB of incompressible data
/// each (plus a few small files), so that an export (gzip by `--compression`) takes a while.
fn big_image() -> (Repo, tempfile::TempDir) {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let mut rng = Rng(0x0c17_7ee5);
    let layers: Vec<Layer> = (0..3)
        .map(|i| {
            let tar = tar_of(&[
                dir(&format!("l{i}")),
                file(&format!("l{i}/big"), &rng.bytes(2 << 20)),
                file(&format!("l{i}/small"), format!("{i}").as_bytes()),
            ]);
            Layer::with(tar, Comp::None, false)
        })
        .collect();
    Layout::single(&src, &layers);
    let repo = Repo::new();
    repo.import(&Repo::oci(&src, "latest"), "img");
    (repo, tmp)
}

fn json(p: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

/// Checks a blob of layout `dir` against its descriptor: present, right size and digest.
fn check_blob(dir: &Path, desc: &Value) -> Vec<u8> {
    let digest = desc["digest"].as_str().unwrap();
    let data = std::fs::read(dir.join("blobs/sha256").join(&digest[7..]))
        .unwrap_or_else(|e| panic!("{}: blob {digest}: {e}", dir.display()));
    assert_eq!(sha256(&data), digest, "{}: blob content", dir.display());
    assert_eq!(data.len() as u64, desc["size"].as_u64().unwrap());
    data
}

/// Checks that layout `dir` is complete and valid: `index.json` present, every manifest, config
/// and layer blob it names there with the right digest. Returns tag → manifest digest.
fn check_layout(dir: &Path) -> Vec<(String, String)> {
    assert!(dir.join("oci-layout").is_file(), "{}", dir.display());
    let index = json(&dir.join("index.json"));
    let mut tags = Vec::new();
    for m in index["manifests"].as_array().unwrap() {
        let manifest: Value = serde_json::from_slice(&check_blob(dir, m)).unwrap();
        check_blob(dir, &manifest["config"]);
        for l in manifest["layers"].as_array().unwrap() {
            check_blob(dir, l);
        }
        let tag = m["annotations"]["org.opencontainers.image.ref.name"]
            .as_str()
            .unwrap_or_default();
        tags.push((tag.to_string(), m["digest"].as_str().unwrap().to_string()));
    }
    tags
}

/// Staging leftovers in `dir` and in its layout's `blobs/sha256` (if any).
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for d in [dir.to_path_buf(), dir.join("blobs/sha256")] {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(".ocitree-tmp-") || name.starts_with(".tmp") {
                found.push(e.path());
            }
        }
    }
    found
}

/// Where one command writes, and what "as before" and "complete" mean for it.
#[derive(Clone, Copy, Debug)]
enum Dest {
    /// A layout directory that does not exist yet.
    NewDir,
    /// An existing layout (tag `old`) that gets tag `new`.
    Existing,
    /// An oci-archive file.
    OciArchive,
    /// A docker-archive file.
    DockerArchive,
}

impl Dest {
    fn all() -> [Dest; 4] {
        [
            Dest::NewDir,
            Dest::Existing,
            Dest::OciArchive,
            Dest::DockerArchive,
        ]
    }

    fn path(self, root: &Path) -> PathBuf {
        root.join(match self {
            Dest::NewDir | Dest::Existing => "out",
            Dest::OciArchive => "out.tar",
            Dest::DockerArchive => "docker.tar",
        })
    }

    fn spec(self, root: &Path) -> String {
        let p = self.path(root);
        match self {
            Dest::NewDir => format!("oci:{}:latest", p.display()),
            Dest::Existing => format!("oci:{}:new", p.display()),
            Dest::OciArchive => format!("oci-archive:{}:latest", p.display()),
            Dest::DockerArchive => format!("docker-archive:{}:example.com/img:latest", p.display()),
        }
    }

    /// `cmd` with `--compression zstd` where the destination takes it (a docker archive holds
    /// plain tars). (zstd rather than gzip to keep the test short in debug builds; staging does
    /// not depend on the compression, and `full_disk_is_a_clean_error` covers gzip's failure.)
    fn cmd<'a>(self, cmd: &[&'a str]) -> Vec<&'a str> {
        let mut v = cmd.to_vec();
        if !matches!(self, Dest::DockerArchive) {
            v.splice(1..1, ["--compression", "zstd"]);
        }
        v
    }

    /// Sets up the state "before": nothing, or a layout with tag `old`.
    fn prepare(self, repo: &Repo, cmd: &[&str], root: &Path) {
        let _ = std::fs::remove_dir_all(root);
        std::fs::create_dir_all(root).unwrap();
        if let Dest::Existing = self {
            let old = format!("oci:{}:old", self.path(root).display());
            repo.ok(&[cmd, &[old.as_str()]].concat());
        }
    }

    /// Checks the destination is as before or complete: returns the manifest digest written
    /// when complete.
    fn check(self, root: &Path, before: Option<&[(String, String)]>) -> Option<String> {
        let p = self.path(root);
        match self {
            Dest::NewDir if !p.exists() => None,
            Dest::NewDir => Some(check_layout(&p)[0].1.clone()),
            Dest::Existing => {
                let tags = check_layout(&p);
                let before = before.unwrap();
                // the old tag is there, as it was; the new one whole or not at all
                assert!(tags.contains(&before[0]), "{tags:?}");
                match tags.iter().find(|(t, _)| t == "new") {
                    Some((_, d)) => {
                        assert_eq!(tags.len(), 2, "{tags:?}");
                        Some(d.clone())
                    }
                    None => {
                        assert_eq!(tags, before);
                        None
                    }
                }
            }
            Dest::OciArchive | Dest::DockerArchive if !p.exists() => None,
            Dest::OciArchive => {
                let x = root.join("x");
                let _ = std::fs::remove_dir_all(&x);
                std::fs::create_dir_all(&x).unwrap();
                tools::run(Command::new("tar").arg("-xf").arg(&p).arg("-C").arg(&x));
                Some(check_layout(&x)[0].1.clone())
            }
            Dest::DockerArchive => {
                tools::require("skopeo");
                let out = tools::run(
                    Command::new("skopeo")
                        .arg("inspect")
                        .arg("--raw")
                        .arg(format!("docker-archive:{}", p.display())),
                );
                Some(sha256(&out.stdout))
            }
        }
    }
}

/// The label of the digest an export to `dest` prints: a docker archive has no manifest and
/// is named by its image ID.
fn digest_label(dest: &str) -> &'static str {
    if dest.starts_with("docker-archive:") {
        "Image ID"
    } else {
        "Manifest"
    }
}

/// Runs `cmd DEST` to completion; returns its digest line ([`digest_label`]) and how long
/// it took.
fn complete(repo: &Repo, cmd: &[&str], dest: &str) -> (String, Duration) {
    let start = Instant::now();
    let r = repo.ok(&[cmd, &[dest]].concat());
    (r.field(digest_label(dest)), start.elapsed())
}

/// Kills `cmd DEST` (with `--compression zstd` but for docker archives) with SIGKILL at `points` seeded random moments over every kind of
/// destination; each time the destination must be as before or complete and valid, and the
/// next run must succeed with the same manifest digest and leave no staging behind.
fn kill_at_random_points(cmd: &[&str], points: usize, seed: u64) {
    tools::require("tar");
    let (repo, tmp) = big_image();
    let mut rng = Rng(seed);
    let mut reference = std::collections::HashMap::new();
    let mut durations = std::collections::HashMap::new();
    for d in Dest::all() {
        let root = tmp.path().join(format!("{d:?}"));
        let cmd = &d.cmd(cmd);
        d.prepare(&repo, cmd, &root);
        let (digest, took) = complete(&repo, cmd, &d.spec(&root));
        eprintln!("{cmd:?} to {d:?}: {took:?}");
        // the reference digest, as the checker computes it from what was written
        let before = (matches!(d, Dest::Existing)).then(|| {
            vec![(
                "old".to_string(),
                check_layout(&d.path(&root))
                    .into_iter()
                    .find(|(t, _)| t == "old")
                    .unwrap()
                    .1,
            )]
        });
        let written = d.check(&root, before.as_deref()).unwrap();
        if !matches!(d, Dest::DockerArchive) {
            assert_eq!(written, digest);
        }
        reference.insert(format!("{d:?}"), written);
        durations.insert(format!("{d:?}"), took);
    }
    let mut complete_seen = 0;
    for i in 0..points {
        let d = Dest::all()[i % 4];
        let root = tmp.path().join(format!("{d:?}"));
        let cmd = &d.cmd(cmd);
        d.prepare(&repo, cmd, &root);
        let before = matches!(d, Dest::Existing).then(|| check_layout(&d.path(&root)));
        let took = durations[&format!("{d:?}")];
        let after = took.mul_f64(rng.unit() * 1.1);
        let mut child = repo
            .cmd()
            .args(cmd)
            .arg(d.spec(&root))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        let what = format!("{cmd:?} to {d:?} killed after {after:?} (of {took:?})");
        if let Some(digest) = d.check(&root, before.as_deref()) {
            complete_seen += 1;
            assert_eq!(digest, reference[&format!("{d:?}")], "{what}");
        }
        // the next run completes, gives the same result and leaves nothing behind
        let (_, _) = complete(&repo, cmd, &d.spec(&root));
        let digest = d.check(&root, before.as_deref()).unwrap();
        assert_eq!(digest, reference[&format!("{d:?}")], "{what}: re-run");
        let mut left = leftovers(&root);
        left.extend(leftovers(&d.path(&root)));
        assert!(left.is_empty(), "{what}: left {left:?}");
    }
    eprintln!("{cmd:?}: {complete_seen} of {points} killed runs had completed");
}

#[test]
fn export_killed_at_random_points() {
    kill_at_random_points(&["export", "img"], 12, 0x5eed_0001);
}

#[test]
fn encapsulate_killed_at_random_points() {
    kill_at_random_points(&["encapsulate", "img"], 12, 0x5eed_0002);
}

/// A full disk (a file size limit, with SIGXFSZ ignored so that writes fail with EFBIG) is a
/// clear error and exit 2 for every compression — gzip used to panic in gzp — and leaves no
/// half layout, no staging behind.
#[test]
fn full_disk_is_a_clean_error() {
    let (repo, tmp) = big_image();
    for (i, compression) in ["gzip", "zstd", "none"].iter().enumerate() {
        for (j, dest) in ["oci", "oci-archive"].iter().enumerate() {
            let root = tmp.path().join(format!("full{i}{j}"));
            std::fs::create_dir_all(&root).unwrap();
            let out = root.join("out");
            let script = format!(
                "trap '' XFSZ; ulimit -f 1000; exec \"$0\" --repo \"$1\" export --compression {compression} img {dest}:\"$2\""
            );
            let r = Command::new("bash")
                .arg("-c")
                .arg(&script)
                .arg(bin())
                .arg(&repo.path)
                .arg(&out)
                .env_remove("OCITREE_REPO")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&r.stderr);
            let what = format!("{compression} to {dest}");
            assert_eq!(r.status.code(), Some(2), "{what}: {stderr}");
            assert!(
                stderr.starts_with("error: exporting img") && !stderr.contains("panicked"),
                "{what}: {stderr}"
            );
            assert!(
                stderr.contains("File too large") || stderr.contains("os error 27"),
                "{what}: {stderr}"
            );
            assert!(!out.exists(), "{what}: {} was written", out.display());
            let left: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().collect();
            assert!(left.is_empty(), "{what}: left {left:?}");
        }
    }
}

/// An archive written to standard output whose reader goes away is truncated: an error and
/// exit 2 (it used to exit 0 silently), for every format; a listing whose reader goes away is
/// still a clean exit.
#[test]
fn closed_stdout_under_an_archive_is_an_error() {
    let (repo, _tmp) = big_image();
    for args in [
        &["export", "img", "oci-archive:-"][..],
        &["export", "--compression", "zstd", "img", "oci-archive:-"],
        &["export", "img", "docker-archive:-"],
        &["encapsulate", "img", "oci-archive:-"],
    ] {
        let script = "\"$0\" --repo \"$1\" \"${@:2}\" 2>\"$ERR\" | head -c 1000 >/dev/null; exit ${PIPESTATUS[0]}";
        let err = repo.tmp.path().join("stderr");
        let r = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(bin())
            .arg(&repo.path)
            .args(args)
            .env("ERR", &err)
            .env_remove("OCITREE_REPO")
            .output()
            .unwrap();
        let stderr = std::fs::read_to_string(&err).unwrap();
        assert_eq!(r.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: ")
                && stderr.contains("standard output was closed before the end of the archive")
                && !stderr.contains("panicked"),
            "{args:?}: {stderr}"
        );
    }
    // a listing: the reader may stop early
    let script = "\"$0\" --repo \"$1\" ls -R img | head -c 10 >/dev/null; exit ${PIPESTATUS[0]}";
    for _ in 0..3 {
        let r = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(bin())
            .arg(&repo.path)
            .env_remove("OCITREE_REPO")
            .output()
            .unwrap();
        assert_eq!(r.status.code(), Some(0), "{r:?}");
        assert!(r.stderr.is_empty(), "{r:?}");
    }
}

/// `export` and `encapsulate` read commits a `prune` could delete: they take the repository
/// lock shared, so they wait while a prune (here `flock -x` standing in for it) holds it.
#[test]
fn export_and_encapsulate_wait_while_a_prune_holds_the_lock() {
    tools::require("flock");
    let tmp = tempdir();
    let img = tmp.path().join("img");
    Layout::single(&img, &[Layer::new(&[file("a", b"a")])]);
    let repo = Repo::new();
    repo.import(&Repo::oci(&img, "latest"), "x");
    let lock = repo.path.join("ocitree.lock");
    let mut holder = Command::new("flock")
        .arg("-x")
        .arg(&lock)
        .args(["sleep", "3"])
        .spawn()
        .unwrap();
    // wait until it holds the lock
    while Command::new("flock")
        .args(["-n", "-s"])
        .arg(&lock)
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = tmp.path().join("out");
    let dests = [
        (
            vec!["export", "x"],
            format!("oci:{}:e", out.join("e").display()),
        ),
        (
            vec!["encapsulate", "ocitree/image/x"],
            format!("oci:{}:c", out.join("c").display()),
        ),
    ];
    let mut children: Vec<_> = dests
        .iter()
        .map(|(args, dest)| {
            repo.cmd()
                .args(args)
                .arg(dest)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    for c in &mut children {
        assert!(
            c.try_wait().unwrap().is_none(),
            "finished while the lock was held"
        );
    }
    assert!(holder.wait().unwrap().success());
    for (c, name) in children.into_iter().zip(["e", "c"]) {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        check_layout(&out.join(name));
    }
}

/// A repository holding image `x`: two small layers (quick to export, as the destination
/// tests below export many times).
fn small_image() -> (Repo, tempfile::TempDir) {
    let tmp = tempdir();
    let src = tmp.path().join("src");
    let mut rng = Rng(0xde57);
    Layout::single(
        &src,
        &[
            Layer::new(&[dir("a"), file("a/data", &rng.bytes(200 << 10))]),
            Layer::new(&[file("a/more", b"more"), file("b", b"b")]),
        ],
    );
    let repo = Repo::new();
    repo.import(&Repo::oci(&src, "latest"), "x");
    (repo, tmp)
}

/// The commands that write an archive destination, with the archive format: export in both
/// formats, encapsulate.
const ARCHIVE_CMDS: [(&[&str], &str); 3] = [
    (&["export", "x"], "oci-archive"),
    (&["export", "x"], "docker-archive"),
    (&["encapsulate", "x"], "oci-archive"),
];

/// `cmd` to the archive FILE in format `format`; asserts success, returns the archive bytes.
fn archive_to_file(repo: &Repo, cmd: &[&str], format: &str, file: &Path) -> Vec<u8> {
    let dest = format!("{format}:{}", file.display());
    repo.ok(&[cmd, &[dest.as_str()]].concat());
    std::fs::read(file).unwrap()
}

/// The manifest digest skopeo reads from the archive `file` (for a docker archive: of the
/// manifest skopeo makes of it).
fn skopeo_manifest(format: &str, file: &Path) -> String {
    tools::require("skopeo");
    let out = tools::run(
        Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("{format}:{}", file.display())),
    );
    sha256(&out.stdout)
}

fn file_type(p: &Path) -> std::fs::FileType {
    std::fs::symlink_metadata(p).unwrap().file_type()
}

/// An archive to a FIFO is written into it, streaming, for a reader that has it open: the
/// reader gets the very bytes a file export gets, and the FIFO stays a FIFO (it used to be
/// replaced by a regular file, and the reader got nothing). The same through a process
/// substitution (`oci-archive:>(cat > FILE)`, a `/dev/fd/N` path), and when the FIFO is the
/// command's own standard output (the summary then goes to stderr, not into the archive). A
/// reader that goes away early is an error, exit 2.
#[test]
fn archive_to_a_fifo_streams_to_its_reader() {
    use std::os::unix::fs::FileTypeExt;
    tools::require("mkfifo");
    let (repo, tmp) = small_image();
    let fifo = tmp.path().join("fifo");
    tools::run(Command::new("mkfifo").arg(&fifo));
    // a reader of the FIFO; `got` waits for what it read (a minute at most: a FIFO nobody
    // opens for writing would block it for ever)
    let reader = |fifo: PathBuf| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(std::fs::read(fifo).unwrap()));
        rx
    };
    let read_back = |rx: std::sync::mpsc::Receiver<Vec<u8>>, what: &str| {
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{what}: the FIFO's reader got no end of file"))
    };
    for (i, (cmd, format)) in ARCHIVE_CMDS.iter().enumerate() {
        let file = tmp.path().join(format!("file{i}.tar"));
        let expect = archive_to_file(&repo, cmd, format, &file);
        let digest = skopeo_manifest(format, &file);
        let what = format!("{cmd:?} to {format}");

        // a named pipe, its reader started first
        let rx = reader(fifo.clone());
        let dest = format!("{format}:{}", fifo.display());
        repo.ok(&[*cmd, &[dest.as_str()]].concat());
        let got = read_back(rx, &what);
        assert!(got == expect, "{what}: the reader got other bytes");
        assert!(file_type(&fifo).is_fifo(), "{what}: the FIFO was replaced");

        // a process substitution
        let out = tmp.path().join(format!("subst{i}.tar"));
        let script = "\"$0\" --repo \"$1\" \"${@:3}\" \"$FORMAT:\">(cat > \"$2\") >/dev/null; rc=$?; wait $!; exit $rc";
        let r = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg(bin())
            .arg(&repo.path)
            .arg(&out)
            .args(*cmd)
            .env("FORMAT", format)
            .env_remove("OCITREE_REPO")
            .output()
            .unwrap();
        assert!(r.status.success(), "{what} to >(…): {r:?}");
        assert!(std::fs::read(&out).unwrap() == expect, "{what} to >(…)");
        assert_eq!(skopeo_manifest(format, &out), digest, "{what} to >(…)");

        // the FIFO is standard output too: the summary must not go into the archive
        let rx = reader(fifo.clone());
        let stdout = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        let r = repo
            .cmd()
            .args(*cmd)
            .arg(&dest)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let got = read_back(rx, &what);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert!(r.status.success(), "{what} as stdout: {stderr}");
        assert!(
            got == expect,
            "{what} as stdout: the reader got other bytes"
        );
        let label = format!("{}:", digest_label(&dest));
        assert!(stderr.contains(&label), "{what}: {stderr}");
    }

    // a reader that goes away early: a truncated archive, an error
    let script = "head -c 1000 \"$2\" >/dev/null 2>&1 & \"$0\" --repo \"$1\" export x oci-archive:\"$2\"; rc=$?; kill $! 2>/dev/null; exit $rc";
    let r = Command::new("bash")
        .arg("-c")
        .arg(script)
        .arg(bin())
        .arg(&repo.path)
        .arg(&fifo)
        .env_remove("OCITREE_REPO")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} was closed before the end of the archive",
            fifo.display()
        )),
        "{stderr}"
    );
    assert!(file_type(&fifo).is_fifo());
}

/// An archive to a symlink replaces or creates the file it points to (through a chain of
/// relative and absolute links); the links stay (they used to be replaced by the archive).
#[test]
fn archive_to_a_symlink_writes_its_target() {
    let (repo, tmp) = small_image();
    let root = tmp.path().join("links");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    let target = root.join("sub/target.tar");
    // link -> sub/mid (relative), sub/mid -> /…/sub/target.tar (absolute)
    std::os::unix::fs::symlink("sub/mid", root.join("link")).unwrap();
    std::os::unix::fs::symlink(&target, root.join("sub/mid")).unwrap();
    for (i, (cmd, format)) in ARCHIVE_CMDS.iter().enumerate() {
        let what = format!("{cmd:?} to {format}");
        let expect = archive_to_file(&repo, cmd, format, &tmp.path().join(format!("f{i}.tar")));
        // created, then replaced
        let _ = std::fs::remove_file(&target);
        for existing in [false, true] {
            if existing {
                std::fs::write(&target, b"old").unwrap();
            }
            let dest = format!("{format}:{}", root.join("link").display());
            repo.ok(&[*cmd, &[dest.as_str()]].concat());
            assert!(file_type(&root.join("link")).is_symlink(), "{what}");
            assert!(file_type(&root.join("sub/mid")).is_symlink(), "{what}");
            assert!(file_type(&target).is_file(), "{what}");
            assert!(std::fs::read(&target).unwrap() == expect, "{what}");
            let mut left = leftovers(&root);
            left.extend(leftovers(&root.join("sub")));
            assert!(left.is_empty(), "{what}: left {left:?}");
        }
        assert_eq!(
            skopeo_manifest(format, &root.join("link")),
            skopeo_manifest(format, &tmp.path().join(format!("f{i}.tar"))),
            "{what}"
        );
    }
}

/// An archive to a character device (a null device made here: `mknod c 1 3`, root only) is
/// written to it, and the device stays (it used to be replaced by a regular file: as root,
/// `oci-archive:/dev/stdout` replaced the system's /dev/stdout).
#[test]
fn archive_to_a_char_device_writes_the_device() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    tools::require("mknod");
    let (repo, tmp) = small_image();
    let null = tmp.path().join("null");
    tools::run(Command::new("mknod").arg(&null).args(["c", "1", "3"]));
    for (cmd, format) in ARCHIVE_CMDS {
        let what = format!("{cmd:?} to {format}");
        let dest = format!("{format}:{}", null.display());
        let r = repo.ok(&[cmd, &[dest.as_str()]].concat());
        let label = format!("{}:", digest_label(&dest));
        assert!(r.stdout.contains(&label), "{what}: {r:?}");
        let m = std::fs::symlink_metadata(&null).unwrap();
        assert!(
            m.file_type().is_char_device(),
            "{what}: the device was replaced"
        );
        assert_eq!(m.rdev(), rustix::fs::makedev(1, 3), "{what}");
        assert!(leftovers(tmp.path()).is_empty(), "{what}");
    }
}

/// An archive to a directory (or a symlink to one), a socket or a block device is refused
/// before anything is written, exit 2, and nothing is changed (a socket or block device used
/// to be replaced by the archive; a directory failed only once the archive was written).
#[test]
fn archive_to_a_directory_or_socket_is_refused() {
    let (repo, tmp) = small_image();
    let root = tmp.path().join("special");
    std::fs::create_dir_all(root.join("dir")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("dir/keep"), b"keep").unwrap();
    std::os::unix::fs::symlink("dir", root.join("dirlink")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(root.join("socket")).unwrap();
    tools::require("mknod");
    tools::run(
        Command::new("mknod")
            .arg(root.join("block"))
            .args(["b", "7", "200"]),
    );
    let listing = || {
        let mut v: Vec<String> = Vec::new();
        for d in [root.clone(), root.join("dir")] {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                v.push(format!(
                    "{} {:?} {}",
                    e.path().display(),
                    m.file_type(),
                    m.len()
                ));
            }
        }
        v.sort();
        v
    };
    let before = listing();
    for (cmd, format) in ARCHIVE_CMDS {
        for (name, kind) in [
            ("dir", "a directory"),
            ("empty", "a directory"),
            ("dirlink", "a directory"),
            ("socket", "a socket"),
            ("block", "a block device"),
        ] {
            let p = root.join(name);
            let dest = format!("{format}:{}", p.display());
            let stderr = repo.fails(&[cmd, &[dest.as_str()]].concat());
            assert!(
                stderr.contains(&format!("{} is {kind}", p.display())),
                "{cmd:?} to {dest}: {stderr}"
            );
            assert_eq!(listing(), before, "{cmd:?} to {dest}");
        }
    }
}

/// Concurrent exports of different tags into an `oci:DIR` that does not exist yet all succeed
/// and every tag is there (the exports whose rename of the new layout lost the race failed
/// with "Directory not empty", their tag lost); then the same into the existing layout, whose
/// `index.json` each replaces.
#[test]
fn concurrent_exports_into_a_new_layout_keep_every_tag() {
    let (repo, tmp) = small_image();
    for round in 0..10 {
        let out = tmp.path().join(format!("round{round}"));
        let _ = std::fs::remove_dir_all(&out);
        let n = 3 + round % 2;
        for existing in [false, true] {
            let base = if existing { 10 } else { 0 };
            let children: Vec<_> = (0..n)
                .map(|i| {
                    let cmd = if i % 2 == 0 { "export" } else { "encapsulate" };
                    repo.cmd()
                        .args([cmd, "x"])
                        .arg(format!("oci:{}:t{}", out.display(), base + i))
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for c in children {
                let o = c.wait_with_output().unwrap();
                assert!(
                    o.status.success(),
                    "round {round} (existing: {existing}): {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            let mut tags: Vec<String> = check_layout(&out).into_iter().map(|(t, _)| t).collect();
            tags.sort();
            let mut expect: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
            if existing {
                expect.extend((0..n).map(|i| format!("t{}", 10 + i)));
            }
            expect.sort();
            assert_eq!(tags, expect, "round {round} (existing: {existing})");
            let mut left = leftovers(tmp.path());
            left.extend(leftovers(&out));
            assert!(left.is_empty(), "round {round}: left {left:?}");
        }
    }
}

/// Adding a tag to a layout reads, extends and replaces its `index.json` under a lock on the
/// layout directory (`flock`), so that concurrent exports keep each other's tags: an export
/// waits while another holds it (here `flock -x` standing in for it), then adds its tag.
#[test]
fn export_into_a_layout_waits_while_another_holds_it() {
    tools::require("flock");
    let (repo, tmp) = small_image();
    let out = tmp.path().join("locked");
    repo.ok(&["export", "x", &format!("oci:{}:a", out.display())]);
    let mut holder = Command::new("flock")
        .arg("-x")
        .arg(&out)
        .args(["sleep", "3"])
        .spawn()
        .unwrap();
    while Command::new("flock")
        .args(["-n", "-s"])
        .arg(&out)
        .arg("true")
        .status()
        .unwrap()
        .success()
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut child = repo
        .cmd()
        .args(["export", "x"])
        .arg(format!("oci:{}:b", out.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "finished while the layout was locked"
    );
    assert!(holder.wait().unwrap().success());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let tags: Vec<String> = check_layout(&out).into_iter().map(|(t, _)| t).collect();
    assert_eq!(tags, ["a", "b"]);
}

/// Every file of an exported layout is readable by all (0644 under umask 022), layer blobs
/// (written through temporary files, which were 0600) as the manifest and config: in a new
/// layout, an existing one, from export, encapsulate and a file tree.
#[test]
fn layout_blobs_are_readable_by_all() {
    use std::os::unix::fs::PermissionsExt;
    let (repo, tmp) = small_image();
    let out = tmp.path().join("modes");
    let runs: [&[&str]; 4] = [
        &["export", "x", "oci:OUT:a"],
        &["export", "--compression", "zstd", "x", "oci:OUT:b"],
        &["encapsulate", "x", "oci:OUT:c"],
        &["encapsulate", "--format", "file-tree", "x", "oci:OUT:d"],
    ];
    for args in runs {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("OUT", &out.display().to_string()))
            .collect();
        let r = Command::new("bash")
            .arg("-c")
            .arg("umask 022; exec \"$@\"")
            .arg("bash")
            .arg(bin())
            .arg("--repo")
            .arg(&repo.path)
            .args(&args)
            .env_remove("OCITREE_REPO")
            .output()
            .unwrap();
        assert!(r.status.success(), "{args:?}: {r:?}");
        let blobs = out.join("blobs/sha256");
        let mut n = 0;
        for e in std::fs::read_dir(&blobs).unwrap().flatten() {
            let mode = e.metadata().unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o644, "{args:?}: {}", e.path().display());
            n += 1;
        }
        assert!(n >= 4, "{args:?}");
        for f in ["index.json", "oci-layout"] {
            let mode = std::fs::metadata(out.join(f)).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode, 0o644, "{args:?}: {f}");
        }
    }
    // (a file tree's root is an index: check_layout reads image manifests only)
    let index = json(&out.join("index.json"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 4, "{index}");
}
