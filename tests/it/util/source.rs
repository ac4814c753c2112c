//! Commits made by the real `ostree` CLI, for `ocitree encapsulate`: a source repository, a
//! working tree to commit from, and the check that an encapsulation imports back as the
//! identical commit.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Repo, Run, bin, tempdir, tools};

/// A repository made by `ostree init`, and a working tree to commit from.
pub struct Source {
    _tmp: tempfile::TempDir,
    pub repo: PathBuf,
    pub tree: PathBuf,
    pub work: PathBuf,
}

impl Source {
    /// A bare-user source repository.
    pub fn new() -> Source {
        Source::with_mode("bare-user")
    }

    /// A source repository of `mode` (`bare-user`, `bare`, …).
    pub fn with_mode(mode: &str) -> Source {
        let tmp = tempdir();
        let repo = tmp.path().join("src-repo");
        let tree = tmp.path().join("tree");
        let work = tmp.path().join("work");
        std::fs::create_dir_all(&tree).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        tools::ostree(&repo, &["init", &format!("--mode={mode}")]);
        Source {
            _tmp: tmp,
            repo,
            tree,
            work,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.tree.join(rel)
    }

    pub fn write(&self, rel: &str, data: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }

    pub fn chmod(&self, rel: &str, mode: u32) {
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn setfattr(&self, rel: &str, name: &str, hex_value: &str) {
        tools::require("setfattr");
        tools::run(
            Command::new("setfattr")
                .args(["-h", "-n", name, "-v", hex_value])
                .arg(self.path(rel)),
        );
    }

    /// `ostree commit` of the tree on branch `branch` with extra arguments; returns the checksum.
    pub fn commit(&self, branch: &str, extra: &[&str]) -> String {
        let tree = format!("--tree=dir={}", self.tree.display());
        let mut args = vec!["commit", "-b", branch, &tree];
        args.extend_from_slice(extra);
        tools::ostree(&self.repo, &args).trim().to_string()
    }

    /// ocitree on the source repo, whatever its outcome.
    pub fn run(&self, args: &[&str]) -> Run {
        super::output(
            Command::new(bin())
                .arg("--repo")
                .arg(&self.repo)
                .args(args)
                .env_remove("OCITREE_REPO")
                .stdin(std::process::Stdio::null())
                .output()
                .unwrap(),
        )
    }

    /// ocitree on the source repo; asserts success.
    pub fn ocitree(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "ocitree {args:?} failed: {r:?}");
        r
    }

    /// Encapsulates `rev` into the layout `work/NAME` tagged `latest`; returns the layout.
    pub fn encapsulate(&self, rev: &str, name: &str, extra: &[&str]) -> PathBuf {
        let dir = self.work.join(name);
        let dest = format!("oci:{}:latest", dir.display());
        let mut args = vec!["encapsulate", rev, &dest];
        args.extend_from_slice(extra);
        self.ocitree(&args);
        dir
    }
}

/// Imports `layout` into a fresh bare-user repo and asserts it gives commit `expected`, with
/// the same commit object and detached metadata as in `src`, and a clean fsck.
pub fn assert_identical_import(src: &Source, layout: &Path, expected: &str) -> Repo {
    assert_identical_import_into(Repo::new(), src, layout, expected)
}

/// [`assert_identical_import`] into `fresh`, a new repository of any mode.
pub fn assert_identical_import_into(
    fresh: Repo,
    src: &Source,
    layout: &Path,
    expected: &str,
) -> Repo {
    let r = fresh.import(&Repo::oci(layout, "latest"), "img");
    assert_eq!(
        r.commit(),
        expected,
        "import must give the identical commit"
    );
    assert_eq!(
        tools::ostree(&fresh.path, &["rev-parse", "ocitree/image/img"]).trim(),
        expected
    );
    tools::fsck(&fresh.path);
    assert_eq!(
        tools::ostree(&fresh.path, &["show", "--raw", expected]),
        tools::ostree(&src.repo, &["show", "--raw", expected]),
    );
    let detached = |repo: &Path| {
        std::fs::read(
            repo.join("objects")
                .join(&expected[..2])
                .join(format!("{}.commitmeta", &expected[2..])),
        )
        .ok()
    };
    assert_eq!(
        detached(&fresh.path),
        detached(&src.repo),
        "detached metadata must be carried byte for byte"
    );
    fresh
}

/// The `ContentChecksum:` line of `ostree show` (the root dirtree + dirmeta).
pub fn content_checksum(repo: &Path, rev: &str) -> String {
    tools::ostree(repo, &["show", rev])
        .lines()
        .find_map(|l| l.strip_prefix("ContentChecksum:"))
        .unwrap_or_else(|| panic!("no ContentChecksum for {rev}"))
        .trim()
        .to_string()
}
