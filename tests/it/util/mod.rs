//! Test helpers: a temporary repo driven through the `ocitree` binary, images built in code,
//! external oracles, whole-tree comparison and repo snapshots.

#![allow(dead_code)]

pub mod faults;
pub mod forward_proxy;
pub mod image;
pub mod keys;
/// Mutations for the fuzz tests: the same module the unit fuzz targets use.
#[path = "../../../src/testing.rs"]
pub mod mutate;
pub mod proxy;
pub mod read;
pub mod registry;
pub mod source;
pub mod storage;
pub mod tools;
pub mod tree;
pub mod wild;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub use image::*;
pub use read::*;
pub use source::*;

/// Scratch space on disk (not tmpfs: checkouts need user xattrs).
pub fn tempdir() -> tempfile::TempDir {
    std::fs::create_dir_all("/var/tmp/ocitree-tests").unwrap();
    tempfile::Builder::new()
        .prefix("t")
        .tempdir_in("/var/tmp/ocitree-tests")
        .unwrap()
}

/// A repository in a temporary directory, with the commands tests need.
pub struct Repo {
    pub tmp: tempfile::TempDir,
    pub path: PathBuf,
}

/// The result of one `ocitree` run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// A `Label:   value` line of `import` output.
    pub fn field(&self, label: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{label}:")))
            .unwrap_or_else(|| panic!("no {label}: line in {self:?}"))
            .trim()
            .to_string()
    }
    pub fn commit(&self) -> String {
        let c = self.field("Commit");
        assert_eq!(c.len(), 64, "{c}");
        c
    }
    /// (imported, reused) from `Layers:   N (I imported, R reused)`.
    pub fn layers(&self) -> (usize, usize) {
        let f = self.field("Layers");
        let nums: Vec<usize> = f
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|s| s.parse().ok())
            .collect();
        (nums[1], nums[2])
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ocitree")
}

pub fn output(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Repo {
    /// A fresh bare-user repo.
    pub fn new() -> Repo {
        Repo::with_mode("bare-user")
    }

    pub fn with_mode(mode: &str) -> Repo {
        let tmp = tempdir();
        let path = tmp.path().join("repo");
        let r = Repo { tmp, path };
        r.ok(&["init", "--mode", mode]);
        r
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.arg("--repo").arg(&self.path).env_remove("OCITREE_REPO");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        output(self.cmd().args(args).stdin(Stdio::null()).output().unwrap())
    }

    /// Runs and asserts success.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "ocitree {args:?} failed: {r:?}");
        r
    }

    /// Runs and asserts exit code 2 with an `error:` line; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 2, "ocitree {args:?} should fail with 2: {r:?}");
        assert!(r.stderr.starts_with("error: "), "{r:?}");
        r.stderr
    }

    pub fn import(&self, src: &str, name: &str) -> Run {
        self.ok(&["import", src, name])
    }

    pub fn oci(dir: &Path, tag: &str) -> String {
        format!("oci:{}:{tag}", dir.display())
    }

    pub fn refs(&self) -> Vec<String> {
        tools::ostree(&self.path, &["refs"])
            .lines()
            .map(String::from)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Checks `rev` out with the real ostree CLI and compares it with `umoci unpack` of the
    /// same image.
    pub fn assert_matches_umoci(&self, rev: &str, layout: &Path, tag: &str) {
        self.compare_with_umoci(rev, layout, tag, tree::assert_same);
    }

    /// [`Repo::assert_matches_umoci`] with `compare(ours, umoci's)` as the comparison.
    pub fn compare_with_umoci(
        &self,
        rev: &str,
        layout: &Path,
        tag: &str,
        compare: impl FnOnce(&Path, &Path),
    ) {
        let work = tempdir();
        let ours = work.path().join("ours");
        tools::ostree_checkout(&self.path, rev, &ours);
        let rootfs = tools::umoci_unpack(layout, tag, &work.path().join("bundle"));
        compare(&ours, &rootfs);
        tools::fsck(&self.path);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot::take(&self.path)
    }
}

/// Refs and object files of a repo, to prove an operation changed nothing.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    refs: String,
    objects: BTreeSet<String>,
}

impl Snapshot {
    pub fn take(repo: &Path) -> Snapshot {
        let mut objects = BTreeSet::new();
        let mut stack = vec![repo.join("objects")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p)
                } else {
                    objects.insert(p.display().to_string());
                }
            }
        }
        Snapshot {
            refs: tools::ostree(repo, &["refs"]),
            objects,
        }
    }

    pub fn objects(&self) -> usize {
        self.objects.len()
    }

    /// The repo has exactly the refs and objects it had, and fsck is clean.
    pub fn assert_unchanged(&self, repo: &Path) {
        let now = Snapshot::take(repo);
        assert_eq!(now.refs, self.refs, "refs changed");
        let added: Vec<_> = now.objects.difference(&self.objects).collect();
        let removed: Vec<_> = self.objects.difference(&now.objects).collect();
        assert!(
            added.is_empty() && removed.is_empty(),
            "objects changed: +{added:?} -{removed:?}"
        );
        tools::fsck(repo);
    }
}

/// The umoci-built `small` and `quirks` layouts (see [`wild`]), built once per test process.
pub fn wild_images() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempdir().keep().join("images");
        wild::build(&dir);
        dir
    })
}
