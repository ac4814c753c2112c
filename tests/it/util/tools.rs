//! External tools the tests use as oracles. A missing tool fails the test: CI installs them
//! (`.ci/deps`), and a test that quietly passed without its oracle would prove nothing.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Panics unless `tool` is on PATH.
pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
    assert!(
        found,
        "required tool `{tool}` is not installed: run `bash .ci/deps` (CI installs it)"
    );
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `ostree` CLI on `repo`, stdout as a string.
pub fn ostree(repo: &Path, args: &[&str]) -> String {
    require("ostree");
    let out = run(Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(args));
    String::from_utf8(out.stdout).unwrap()
}

/// `ostree commit -b BRANCH` of the directory `tree` into `repo`; returns the checksum.
pub fn ostree_commit(repo: &Path, branch: &str, tree: &Path) -> String {
    let tree = format!("--tree=dir={}", tree.display());
    ostree(repo, &["commit", "-b", branch, &tree])
        .trim()
        .to_string()
}

/// `ostree fsck` must report no errors.
pub fn fsck(repo: &Path) {
    let out = ostree(repo, &["fsck"]);
    assert!(out.contains("no errors found"), "fsck: {out}");
}

/// Checks a commit out with the real `ostree` CLI (as root: owners and xattrs applied).
pub fn ostree_checkout(repo: &Path, rev: &str, dest: &Path) {
    ostree(repo, &["checkout", rev, &dest.display().to_string()]);
}

/// `umoci unpack` of LAYOUT:TAG; returns the rootfs path.
pub fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) -> std::path::PathBuf {
    require("umoci");
    run(Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:{tag}", layout.display()))
        .arg(bundle));
    bundle.join("rootfs")
}

/// The Python of the venv holding the `oras` package (PyPI), the ORAS client the artifact
/// tests push and pull with; `.ci/deps` makes it. Panics when it is missing.
pub fn oras_python() -> std::path::PathBuf {
    let home = std::env::var_os("HOME").expect("HOME is set");
    let py = Path::new(&home).join(".cache/ocitree/oras-venv/bin/python");
    let ok = py.is_file()
        && Command::new(&py)
            .args(["-c", "import oras.client"])
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the oras Python client is not installed in {}: run `bash .ci/deps` (CI installs it)",
        py.display()
    );
    py
}
