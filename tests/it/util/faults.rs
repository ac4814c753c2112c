//! Fault injection helpers: a seeded random source, multi-layer images of a few MB, killing a
//! command part-way, small tmpfs mounts, and what a repository's `tmp/` and `state/` hold.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::image::{Comp, E, Layer, Layout, file, tar_of};
use super::tools;

/// xorshift64*: a fixed seed gives the same kill points and image bytes on every run.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Incompressible bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// The entries of one layer: `files` incompressible files of `size` bytes in a few directories.
pub fn random_entries(rng: &mut Rng, tag: &str, files: usize, size: usize) -> Vec<E> {
    (0..files)
        .map(|i| file(&format!("{tag}/d{}/f{i}", i % 8), &rng.bytes(size)))
        .collect()
}

/// A layout (tag `latest`) of `layers` layers, each `files` files of `size` bytes; the first
/// layer gzip, the others plain tars (building gzip in a debug build is slow).
pub fn multi_layer_image(dir: &Path, seed: u64, layers: usize, files: usize, size: usize) {
    let mut rng = Rng::new(seed);
    let layers: Vec<Layer> = (0..layers)
        .map(|i| {
            let tar = tar_of(&random_entries(&mut rng, &format!("l{i}"), files, size));
            let comp = if i == 0 { Comp::Gzip } else { Comp::None };
            Layer::with(tar, comp, false)
        })
        .collect();
    Layout::single(dir, &layers);
}

/// How a command run by [`kill_after`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// Killed (SIGKILL) while running.
    Killed,
    /// It had exited before the kill, with this code, after this long.
    Exited(i32, Duration),
}

/// Starts `cmd`, sends it SIGKILL after `after`, and reaps it.
pub fn kill_after(cmd: &mut Command, after: Duration) -> Ended {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Ended::Exited(status.code().unwrap_or(-1), start.elapsed());
        }
        let left = after.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(2)));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    match status.code() {
        Some(code) => Ended::Exited(code, start.elapsed()),
        None => Ended::Killed,
    }
}

/// Kills of one command at seeded random offsets over its run time, until enough landed.
///
/// The run time is measured before the campaign, and the machine's load changes while it
/// runs (the tests run side by side): a run that finishes before its kill shortens the span
/// to its own time, and the campaign goes on past `rounds` (up to three times as many) until
/// `want` kills landed mid-run. Offsets stay uniform over the span, so kills still reach
/// every part of the run, start-up included.
#[derive(Debug)]
pub struct Campaign {
    what: &'static str,
    span: Duration,
    rng: Rng,
    rounds: usize,
    want: usize,
    round: usize,
    killed: usize,
    finished_first: usize,
}

impl Campaign {
    /// A campaign of at least `rounds` kills of `what` over `span`, wanting `want` to land.
    pub fn new(what: &'static str, span: Duration, seed: u64, rounds: usize, want: usize) -> Self {
        Campaign {
            what,
            span,
            rng: Rng::new(seed),
            rounds,
            want,
            round: 0,
            killed: 0,
            finished_first: 0,
        }
    }

    /// Whether another round is due.
    pub fn more(&self) -> bool {
        self.round < self.rounds || (self.killed < self.want && self.round < 3 * self.rounds)
    }

    /// Runs `cmd` and kills it at the next offset; returns a description of the round for
    /// assertion messages. A run that exits non-zero before its kill fails the test.
    pub fn kill(&mut self, cmd: &mut Command) -> String {
        let at = self.span.mul_f64(self.rng.unit());
        let round = self.round;
        self.round += 1;
        match kill_after(cmd, at) {
            Ended::Killed => self.killed += 1,
            Ended::Exited(0, took) => {
                self.finished_first += 1;
                self.span = self.span.min(took);
            }
            Ended::Exited(c, _) => panic!("round {round}: {} exited {c}", self.what),
        }
        format!("round {round}, {} killed after {at:?}", self.what)
    }

    /// Prints the tally (`cargo test -- --nocapture`) and checks that enough kills landed.
    pub fn finish(&self) {
        eprintln!(
            "{}: {} rounds, span {:?}, killed {}, finished first {}",
            self.what, self.round, self.span, self.killed, self.finished_first
        );
        assert!(
            self.killed >= self.want,
            "{}: too few kills landed in {} rounds: {} of {} wanted",
            self.what,
            self.round,
            self.killed,
            self.want
        );
    }
}

/// Wall time of one run of `cmd`, which must succeed.
pub fn timed(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    tools::run(cmd);
    start.elapsed()
}

/// A tmpfs mounted for the life of the value (the tests run as root), unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs {
    pub dir: PathBuf,
}

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        tools::require("mount");
        std::fs::create_dir_all(dir).unwrap();
        tools::run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size}"))
                .arg("tmpfs")
                .arg(dir),
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    pub fn resize(&self, size: &str) {
        tools::run(
            Command::new("mount")
                .args(["-o"])
                .arg(format!("remount,size={size}"))
                .arg(&self.dir),
        );
    }

    /// Bytes free.
    pub fn free(&self) -> u64 {
        let out = tools::run(
            Command::new("stat")
                .args(["-f", "-c", "%a %S"])
                .arg(&self.dir),
        );
        let s = String::from_utf8(out.stdout).unwrap();
        let mut it = s.split_whitespace().map(|v| v.parse::<u64>().unwrap());
        it.next().unwrap() * it.next().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Names in `REPO/tmp` that libostree's transactions left (`staging-*`, their `-lock` files).
pub fn staging_entries(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("staging-"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The names in `REPO/tmp`.
pub fn tmp_contents(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The commits marked partial (`state/*.commitpartial`).
pub fn partial_marks(repo: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(repo.join("state"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".commitpartial"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `ostree fsck` output, with whether it found no errors (the exit status alone is not enough:
/// partial commits are reported but are no error).
pub fn fsck_output(repo: &Path) -> (bool, String) {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .arg("fsck")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && text.contains("no errors found"),
        text,
    )
}
