//! A flatpak remote served from an ocitree archive repository: a runtime built and bundled by
//! the real flatpak (`build-export`, `build-bundle --oci`), imported by ocitree, installed and
//! updated by the real `flatpak install`/`update` over HTTP after `flatpak build-update-repo`;
//! later ocitree imports, `rm` and `prune` keep flatpak's summary index current.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::serve::Server;
use crate::util::*;

const REF: &str = "runtime/org.test.Rt/x86_64/1";

/// flatpak confined to `tmp`: its own HOME and user installation, nothing global touched.
struct Flatpak {
    home: PathBuf,
}

impl Flatpak {
    fn new(tmp: &Path) -> Flatpak {
        tools::require("flatpak");
        let home = tmp.join("home");
        std::fs::create_dir_all(&home).unwrap();
        Flatpak { home }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("flatpak");
        c.env("HOME", &self.home)
            .env("FLATPAK_USER_DIR", self.home.join("flatpak"))
            .env("XDG_DATA_HOME", self.home.join("data"))
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env("XDG_CACHE_HOME", self.home.join("cache"));
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = tools::run(self.cmd().args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The installed runtime's `files/` directory.
    fn installed(&self) -> PathBuf {
        self.home.join("flatpak").join(REF).join("active/files")
    }

    /// Builds version `files` of the runtime `org.test.Rt` (`build-export` into `build_repo`)
    /// and bundles it as an OCI image at `out`.
    fn bundle(&self, tmp: &Path, files: &[(&str, &str)], out: &Path) {
        let dir = tmp.join("build");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("files")).unwrap();
        std::fs::create_dir_all(dir.join("usr")).unwrap();
        std::fs::write(
            dir.join("metadata"),
            "[Runtime]\nname=org.test.Rt\nruntime=org.test.Rt/x86_64/1\nsdk=org.test.Rt/x86_64/1\n",
        )
        .unwrap();
        for (name, data) in files {
            std::fs::write(dir.join("usr").join(name), data).unwrap();
        }
        let build_repo = tmp.join("build-repo");
        let (b, d) = (build_repo.to_str().unwrap(), dir.to_str().unwrap());
        self.run(&["build-export", "--runtime", b, d, "1"]);
        let o = out.to_str().unwrap();
        self.run(&[
            "build-bundle",
            "--oci",
            "--runtime",
            b,
            o,
            "org.test.Rt",
            "1",
        ]);
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn flatpak_installs_and_updates_from_an_ocitree_repo() {
    let repo = Repo::with_mode("archive");
    let tmp = repo.tmp.path();
    let fp = Flatpak::new(tmp);
    let (v1, v2) = (tmp.join("v1.oci"), tmp.join("v2.oci"));
    fp.bundle(tmp, &[("hello.txt", "hello\n")], &v1);
    fp.bundle(tmp, &[("hello.txt", "hello\n"), ("new.txt", "v2\n")], &v2);

    // The flatpak ref names the image commit, which carries what flatpak reads.
    let r = repo.import(&format!("oci:{}", v1.display()), "rt");
    let commit = r.commit();
    assert_eq!(
        tools::ostree(&repo.path, &["rev-parse", REF]).trim(),
        commit
    );
    let info: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "rt"]).stdout).unwrap();
    assert_eq!(info["format"], "flatpak");
    // The same image gives the same commit again (a function of the image).
    let again = repo.import(&format!("oci:{}", v1.display()), "rt");
    assert_eq!(again.commit(), commit);
    let meta = tools::ostree(
        &repo.path,
        &["show", "--print-metadata-key=xa.metadata", REF],
    );
    assert!(meta.contains("name=org.test.Rt"), "{meta}");
    let import = format!("Importing {REF}");
    // flatpak's own import of the same bundle gives the same tree.
    let theirs = tmp.join("theirs");
    tools::ostree(&theirs, &["init", "--mode=archive"]);
    let out = tools::run(
        fp.cmd()
            .args(["build-import-bundle", "--oci"])
            .arg(&theirs)
            .arg(&v1),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&import));
    assert_eq!(
        tools::ostree(&theirs, &["ls", "-R", "-C", REF]),
        tools::ostree(&repo.path, &["ls", "-R", "-C", REF])
    );

    // The one documented step, then a client installs from the served repository.
    fp.run(&["build-update-repo", repo.path.to_str().unwrap()]);
    let server = Server::serve(&repo.path);
    fp.run(&[
        "--user",
        "remote-add",
        "--no-gpg-verify",
        "oci",
        &server.url,
    ]);
    fp.run(&[
        "--user",
        "install",
        "-y",
        "--noninteractive",
        "oci",
        "org.test.Rt",
    ]);
    assert_eq!(read(fp.installed().join("hello.txt")), "hello\n");
    assert!(!fp.installed().join("new.txt").exists());

    // A new version and an unrelated image imported: the index follows, the update works.
    let index = || std::fs::read(repo.path.join("summary.idx")).unwrap();
    let before = index();
    let v2_commit = repo.import(&format!("oci:{}", v2.display()), "rt").commit();
    assert_ne!(index(), before, "summary.idx is stale after an import");
    let layout = tmp.join("plain");
    Layout::single(&layout, &[Layer::new(&[file("etc/x", b"x")])]);
    repo.import(&Repo::oci(&layout, "latest"), "plain");
    fp.run(&["--user", "update", "-y", "--noninteractive"]);
    assert_eq!(read(fp.installed().join("new.txt")), "v2\n");
    let deployed = fp.run(&["--user", "info", "--show-commit", "org.test.Rt"]);
    assert_eq!(deployed.trim(), v2_commit);

    // A fresh install after prune (v1's objects gone) still works.
    repo.ok(&["prune"]);
    tools::fsck(&repo.path);
    fp.run(&[
        "--user",
        "uninstall",
        "-y",
        "--noninteractive",
        "org.test.Rt",
    ]);
    fp.run(&[
        "--user",
        "install",
        "-y",
        "--noninteractive",
        "oci",
        "org.test.Rt",
    ]);
    assert_eq!(read(fp.installed().join("new.txt")), "v2\n");

    // rm takes the flatpak ref away, and the remote stops offering it.
    assert!(
        fp.run(&["--user", "remote-ls", "oci"])
            .contains("org.test.Rt")
    );
    repo.ok(&["rm", "rt"]);
    assert!(!repo.refs().iter().any(|r| r == REF), "{:?}", repo.refs());
    let listed = fp.run(&["--user", "remote-ls", "oci"]);
    assert!(!listed.contains("org.test.Rt"), "{listed}");
    repo.ok(&["prune"]);
    tools::fsck(&repo.path);

    // Without flatpak to run, the user is told exactly what to do.
    let before = index();
    let r = output(
        repo.cmd()
            .args(["import", &format!("oci:{}", v1.display()), "rt"])
            .env("PATH", tmp.join("no-tools"))
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr
            .contains("is stale until you run `flatpak build-update-repo`"),
        "{r:?}"
    );
    assert_eq!(index(), before);
}

#[test]
fn a_gpg_signed_flatpak_remote_stays_signed_after_ocitree_imports() {
    let repo = Repo::with_mode("archive");
    let tmp = repo.tmp.path();
    let fp = Flatpak::new(tmp);
    let (home, key, public) = crate::util::keys::gpg_key(tmp);
    let home_s = home.to_str().unwrap();
    let (v1, v2) = (tmp.join("v1.oci"), tmp.join("v2.oci"));
    fp.bundle(tmp, &[("hello.txt", "hello\n")], &v1);
    fp.bundle(tmp, &[("hello.txt", "hello 2\n")], &v2);
    let sign = ["--sign-by", &key, "--gpg-homedir", home_s];
    let v1_src = format!("oci:{}", v1.display());
    repo.ok(&[&["import", &v1_src, "rt"][..], &sign].concat());
    repo.ok(&[&["summary"][..], &sign].concat());
    fp.run(&[
        "build-update-repo",
        &format!("--gpg-sign={key}"),
        &format!("--gpg-homedir={home_s}"),
        repo.path.to_str().unwrap(),
    ]);
    let server = Server::serve(&repo.path);
    let import = format!("--gpg-import={}", public.display());
    fp.run(&["--user", "remote-add", &import, "oci", &server.url]);
    fp.run(&[
        "--user",
        "install",
        "-y",
        "--noninteractive",
        "oci",
        "org.test.Rt",
    ]);
    assert_eq!(read(fp.installed().join("hello.txt")), "hello\n");

    // ocitree runs build-update-repo with the remembered key: summary and index signed again.
    let v2_src = format!("oci:{}", v2.display());
    let v2_commit = repo
        .ok(&[&["import", &v2_src, "rt"][..], &sign].concat())
        .commit();
    assert!(repo.path.join("summary.idx.sig").exists());
    fp.run(&["--user", "update", "-y", "--noninteractive"]);
    assert_eq!(read(fp.installed().join("hello.txt")), "hello 2\n");
    let deployed = fp.run(&["--user", "info", "--show-commit", "org.test.Rt"]);
    assert_eq!(deployed.trim(), v2_commit);
}
