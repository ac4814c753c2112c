//! Serving an archive repository to OSTree clients: GPG-signed commits and summaries pulled by
//! the real `ostree` client with verification on (and refused without a signature), ed25519
//! signatures checked by an independent implementation (OpenSSL), signatures that survive
//! re-import and prune.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use ocitree::glib;

use crate::util::keys::{ed25519_key, gpg_key};
use crate::util::*;

/// A static HTTP server (python's http.server) on 127.0.0.1, killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
}

impl Server {
    pub(crate) fn serve(dir: &Path) -> Server {
        tools::require("python3");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Server {
            child,
            url: format!("http://127.0.0.1:{port}/"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client repository with remote `origin` at `url`, GPG verification on with `public`.
fn client_repo(tmp: &Path, url: &str, public: &Path) -> PathBuf {
    let repo = tmp.join("client");
    tools::ostree(&repo, &["init", "--mode=archive"]);
    tools::ostree(
        &repo,
        &[
            "remote",
            "add",
            &format!("--gpg-import={}", public.display()),
            "--set=gpg-verify=true",
            "--set=gpg-verify-summary=true",
            "origin",
            url,
        ],
    );
    repo
}

/// `ostree pull origin REF` on the client: (success, stderr).
fn pull(client: &Path, r: &str) -> (bool, String) {
    let out = Command::new("ostree")
        .arg(format!("--repo={}", client.display()))
        .args(["pull", "origin", r])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(crate) fn small_image(at: &Path, content: &[u8]) -> String {
    Layout::single(at, &[Layer::new(&[file("etc/data", content), dir("usr")])]);
    Repo::oci(at, "latest")
}

#[test]
fn gpg_signed_commits_and_summary_pass_ostree_pull_and_unsigned_ones_do_not() {
    let tmp = tempdir();
    let (home, key, public) = gpg_key(tmp.path());
    let home_s = home.to_str().unwrap();
    let repo = Repo::with_mode("archive");
    let signed_src = small_image(&tmp.path().join("a"), b"signed\n");
    let commit = repo.import(&signed_src, "signed").commit();
    repo.ok(&["sign", "signed", "--sign-by", &key, "--gpg-homedir", home_s]);
    let s = repo.ok(&["summary", "--sign-by", &key, "--gpg-homedir", home_s]);
    assert!(s.stdout.contains("signed"), "{s:?}");
    // An unsigned image lands beside it: the summary is signed again (key remembered).
    repo.import(
        &small_image(&tmp.path().join("b"), b"unsigned\n"),
        "unsigned",
    );

    let server = Server::serve(&repo.path);
    let client = client_repo(tmp.path(), &server.url, &public);
    let (ok, err) = pull(&client, "ocitree/image/signed");
    assert!(ok, "signed image must pull with gpg-verify: {err}");
    assert_eq!(
        tools::ostree(&client, &["rev-parse", "origin:ocitree/image/signed"]).trim(),
        commit
    );
    tools::fsck(&client);
    let (ok, err) = pull(&client, "ocitree/image/unsigned");
    assert!(!ok, "an unsigned commit must be refused");
    assert!(
        err.to_lowercase().contains("gpg") || err.contains("signature"),
        "{err}"
    );

    // Re-import from elsewhere and prune: the signature stays and still verifies.
    let copy = tmp.path().join("copy");
    small_image(&copy, b"signed\n");
    assert_eq!(
        repo.import(&Repo::oci(&copy, "latest"), "signed").commit(),
        commit
    );
    repo.ok(&["rm", "unsigned"]);
    repo.ok(&["prune"]);
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    let client2 = client_repo(&fresh, &server.url, &public);
    let (ok, err) = pull(&client2, "ocitree/image/signed");
    assert!(ok, "after re-import and prune: {err}");
    tools::fsck(&repo.path);
}

#[test]
fn a_signed_summary_is_never_left_stale() {
    let tmp = tempdir();
    let (home, key, public) = gpg_key(tmp.path());
    let repo = Repo::with_mode("archive");
    repo.import(&small_image(&tmp.path().join("a"), b"a\n"), "a");
    repo.ok(&[
        "summary",
        "--sign-by",
        &key,
        "--gpg-homedir",
        home.to_str().unwrap(),
    ]);
    // Forgetting the key: the summary is unsigned from now on.
    repo.ok(&["summary", "--unsigned"]);
    assert!(!repo.path.join("summary.sig").exists());
    // Signed by someone else (ostree's own CLI), no key configured here: the next change
    // cannot sign it again, says so, and leaves no stale signature.
    tools::ostree(
        &repo.path,
        &[
            "summary",
            "-u",
            &format!("--gpg-sign={key}"),
            &format!("--gpg-homedir={}", home.display()),
        ],
    );
    assert!(repo.path.join("summary.sig").exists());
    let r = repo.import(&small_image(&tmp.path().join("c"), b"c\n"), "c");
    assert!(
        r.stderr.contains("summary was signed and is now unsigned"),
        "{r:?}"
    );
    assert!(!repo.path.join("summary.sig").exists());
    let server = Server::serve(&repo.path);
    let client = client_repo(tmp.path(), &server.url, &public);
    let (ok, err) = pull(&client, "ocitree/image/a");
    assert!(!ok, "gpg-verify-summary must refuse an unsigned summary");
    assert!(err.contains("summary") || err.contains("GPG"), "{err}");
    let s = repo.ok(&[
        "summary",
        "--sign-by",
        &key,
        "--gpg-homedir",
        home.to_str().unwrap(),
    ]);
    assert!(s.stdout.contains("signed"), "{s:?}");
    let sig_before = std::fs::read(repo.path.join("summary.sig")).unwrap();
    repo.import(&small_image(&tmp.path().join("b"), b"b\n"), "b");
    let sig_after = std::fs::read(repo.path.join("summary.sig")).unwrap();
    assert_ne!(sig_before, sig_after, "signed again for the new summary");
    let (ok, err) = pull(&client, "ocitree/image/b");
    assert!(!ok, "b is unsigned: {err}");
    let (ok, err) = pull(&client, "ocitree/image/a");
    assert!(!ok, "a is unsigned too (only the summary is): {err}");
    assert!(
        !err.contains("summary"),
        "the summary itself verifies: {err}"
    );

    // The configured key cannot sign any more (its GnuPG home is gone): import, rm and
    // prune refuse before changing anything, so no image is added or removed behind an
    // error and the signed summary stays as it was.
    let config = repo.path.join("config");
    let text = std::fs::read_to_string(&config).unwrap();
    let moved = text.replace(home.to_str().unwrap(), "/nonexistent-gnupg-home");
    assert_ne!(text, moved);
    std::fs::write(&config, moved).unwrap();
    let snap = repo.snapshot();
    let sig = std::fs::read(repo.path.join("summary.sig")).unwrap();
    for args in [
        vec![
            "import".to_string(),
            small_image(&tmp.path().join("d"), b"d\n"),
            "d".into(),
        ],
        vec!["rm".into(), "b".into()],
        vec!["prune".into()],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = repo.fails(&args);
        assert!(
            err.contains("summary's signing key") && err.contains(&key),
            "{args:?}: {err}"
        );
        snap.assert_unchanged(&repo.path);
        assert_eq!(std::fs::read(repo.path.join("summary.sig")).unwrap(), sig);
    }
}

/// The `ostree.sign.ed25519` signatures of an `a{sv}` file (`.commitmeta`, `summary.sig`).
fn ed25519_sigs(file: &Path) -> Vec<Vec<u8>> {
    detached_sigs(file, "ostree.sign.ed25519")
}

/// The signatures under `key` (`ostree.gpgsigs`, `ostree.sign.ed25519`) of an `a{sv}` file.
fn detached_sigs(file: &Path, key: &str) -> Vec<Vec<u8>> {
    let v =
        glib::Variant::from_data_with_type(std::fs::read(file).unwrap(), glib::VariantTy::VARDICT);
    glib::VariantDict::new(Some(&v))
        .lookup::<Vec<Vec<u8>>>(key)
        .unwrap()
        .unwrap_or_default()
}

fn openssl_verifies(public: &Path, data: &Path, sig: &[u8], tmp: &Path) -> bool {
    tools::require("openssl");
    let sig_file = tmp.join("sig.bin");
    std::fs::write(&sig_file, sig).unwrap();
    Command::new("openssl")
        .args(["pkeyutl", "-verify", "-pubin", "-rawin", "-inkey"])
        .arg(public)
        .arg("-in")
        .arg(data)
        .arg("-sigfile")
        .arg(&sig_file)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn ed25519_signatures_verify_with_openssl() {
    let tmp = tempdir();
    let (keys, public) = ed25519_key(tmp.path());
    let repo = Repo::with_mode("archive");
    let commit = repo
        .import(&small_image(&tmp.path().join("a"), b"a\n"), "a")
        .commit();
    repo.ok(&["sign", "a", "--sign-ed25519", keys.to_str().unwrap()]);
    repo.ok(&["summary", "--sign-ed25519", keys.to_str().unwrap()]);
    let object = repo
        .path
        .join(format!("objects/{}/{}.commit", &commit[..2], &commit[2..]));
    let meta = object.with_extension("commitmeta");
    let sigs = ed25519_sigs(&meta);
    assert_eq!(sigs.len(), 1);
    assert!(openssl_verifies(&public, &object, &sigs[0], tmp.path()));
    // signing again adds nothing; a re-import keeps the signature
    repo.ok(&["sign", "a", "--sign-ed25519", keys.to_str().unwrap()]);
    repo.import(&small_image(&tmp.path().join("a2"), b"a\n"), "a");
    assert_eq!(ed25519_sigs(&meta), sigs);
    // the summary, signed again by the import
    let summary_sigs = ed25519_sigs(&repo.path.join("summary.sig"));
    assert_eq!(summary_sigs.len(), 1);
    assert!(openssl_verifies(
        &public,
        &repo.path.join("summary"),
        &summary_sigs[0],
        tmp.path()
    ));
    // a tampered commit object fails the same check
    let tampered = tmp.path().join("tampered");
    let mut bytes = std::fs::read(&object).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&tampered, bytes).unwrap();
    assert!(!openssl_verifies(&public, &tampered, &sigs[0], tmp.path()));
    tools::fsck(&repo.path);
}

/// A client repository in bare-user mode (libostree uses static deltas only for those, not
/// for archive clients), remote `origin` without verification.
fn bare_client(dir: &Path, url: &str) -> PathBuf {
    let repo = dir.join("bare-client");
    tools::ostree(&repo, &["init", "--mode=bare-user"]);
    tools::ostree(&repo, &["remote", "add", "--no-gpg-verify", "origin", url]);
    repo
}

fn pull_ok(client: &Path, r: &str) -> String {
    let (ok, err) = pull(client, r);
    assert!(ok, "pull {r}: {err}");
    // ostree pull reports what it fetched on stdout when not on a terminal
    let out = Command::new("ostree")
        .arg(format!("--repo={}", client.display()))
        .args(["rev-parse", &format!("origin:{r}")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn an_update_travels_as_a_static_delta_and_prune_drops_deltas_with_their_target() {
    let tmp = tempdir();
    let v1 = tmp.path().join("v1");
    let v2 = tmp.path().join("v2");
    Layout::single(
        &v1,
        &[Layer::new(&[
            dir("usr"),
            file("usr/big", &[1u8; 300_000]),
            file("usr/v", b"1"),
        ])],
    );
    let mut big = vec![1u8; 300_000];
    big[1000] = 2;
    Layout::single(
        &v2,
        &[Layer::new(&[
            dir("usr"),
            file("usr/big", &big),
            file("usr/v", b"2"),
        ])],
    );
    let repo = Repo::with_mode("archive");
    let a = repo.import(&Repo::oci(&v1, "latest"), "app").commit();
    let server = Server::serve(&repo.path);
    let client = bare_client(tmp.path(), &server.url);
    assert_eq!(pull_ok(&client, "ocitree/image/app"), a);
    // no previous version yet
    let err = repo.fails(&["delta", "app", "--from-previous"]);
    assert!(err.contains("previous commit"), "{err}");
    // import makes the delta itself when asked (and only when there is a previous version)
    let first = repo.ok(&[
        "import",
        "--delta-from-previous",
        &Repo::oci(&v1, "latest"),
        "other",
    ]);
    assert!(!first.stdout.contains("Delta:"), "{first:?}");
    let old_summary = std::fs::read(repo.path.join("summary")).unwrap();
    let b = repo.import(&Repo::oci(&v2, "latest"), "app").commit();
    // From another image, by its name.
    let d = repo.ok(&["delta", "app", "--from", "other"]);
    assert_eq!(d.field("Delta"), format!("{a}-{b}"));
    let d = repo.ok(&["delta", "app", "--from-previous"]);
    assert_eq!(d.field("Delta"), format!("{a}-{b}"));
    let o = repo.ok(&[
        "import",
        "--delta-from-previous",
        &Repo::oci(&v2, "latest"),
        "other",
    ]);
    assert_eq!(o.field("Delta"), format!("{a}-{b}"));
    // Killed after the image ref moved, before the delta and the summary were written (that
    // state, made by hand): running the same import again, which has nothing to read,
    // finishes both.
    tools::ostree(&repo.path, &["static-delta", "delete", &format!("{a}-{b}")]);
    std::fs::write(repo.path.join("summary"), &old_summary).unwrap();
    let stale = tools::ostree(&repo.path, &["summary", "--view"]);
    assert!(!stale.contains(&b), "{stale}");
    let again = repo.ok(&[
        "import",
        "--delta-from-previous",
        &Repo::oci(&v2, "latest"),
        "other",
    ]);
    assert_eq!(again.layers(), (0, 1), "{again:?}");
    assert_eq!(again.field("Delta"), format!("{a}-{b}"));
    let listed = tools::ostree(&repo.path, &["summary", "--view"]);
    assert!(
        listed.contains(&format!("{a}-{b}")),
        "summary lists the delta: {listed}"
    );
    // the client fetches the update as the delta part, not as loose objects
    let out = Command::new("ostree")
        .arg(format!("--repo={}", client.display()))
        .args(["pull", "origin", "ocitree/image/app"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(said.contains("1 delta parts"), "the delta was used: {said}");
    assert_eq!(
        tools::ostree(&client, &["rev-parse", "origin:ocitree/image/app"]).trim(),
        b
    );
    tools::fsck(&client);
    // the source version gone: the delta stays (clients on it still use it) ...
    repo.ok(&["prune"]);
    assert!(tools::ostree(&repo.path, &["static-delta", "list"]).contains(&format!("{a}-{b}")));
    // ... its target gone: prune drops it, and the summary no longer lists it
    repo.ok(&["rm", "app"]);
    repo.ok(&["rm", "other"]);
    repo.ok(&["prune"]);
    assert!(!tools::ostree(&repo.path, &["static-delta", "list"]).contains(&b));
    assert!(!tools::ostree(&repo.path, &["summary", "--view"]).contains(&b));
    // no empty deltas/XX directory left behind
    let left: Vec<_> = std::fs::read_dir(repo.path.join("deltas"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
    tools::fsck(&repo.path);
    // and a fresh client still pulls what is left
    let c = repo.import(&Repo::oci(&v1, "latest"), "again").commit();
    assert_eq!(c, a);
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    assert_eq!(
        pull_ok(&bare_client(&fresh, &server.url), "ocitree/image/again"),
        a
    );
}

/// A commit bound to its branch (`ostree commit -b` binds by default) is pulled by that
/// branch: import makes the bound ref, rm removes it (unless another image has the commit).
#[test]
fn bound_commits_get_their_refs_for_clients() {
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    std::fs::create_dir_all(tree.join("usr")).unwrap();
    std::fs::write(tree.join("usr/os-release"), b"ID=example\n").unwrap();
    let src = Repo {
        tmp: tempdir(),
        path: tmp.path().join("src"),
    };
    tools::ostree(&src.path, &["init", "--mode=bare-user"]);
    let branch = "exampleos/x86_64/stable";
    let commit = tools::ostree_commit(&src.path, branch, &tree);
    let oci = tmp.path().join("oci");
    src.ok(&["encapsulate", branch, &format!("oci:{}:v1", oci.display())]);

    let repo = Repo::with_mode("archive");
    let r = repo.import(&Repo::oci(&oci, "v1"), "os");
    assert!(r.field("Ref").starts_with(branch), "{r:?}");
    assert_eq!(
        tools::ostree(&repo.path, &["rev-parse", branch]).trim(),
        commit
    );
    let server = Server::serve(&repo.path);
    let client = bare_client(tmp.path(), &server.url);
    assert_eq!(pull_ok(&client, branch), commit);
    tools::fsck(&client);
    // by ocitree's ref, libostree refuses it: the commit names the refs it may be pulled as
    let (ok, err) = pull(&client, "ocitree/image/os");
    assert!(!ok && err.contains("ref binding"), "{err}");

    // two images of one commit: the bound ref stays until the last one goes
    repo.import(&Repo::oci(&oci, "v1"), "os-copy");
    repo.ok(&["rm", "os"]);
    assert!(repo.refs().contains(&branch.to_string()));
    let r = repo.ok(&["rm", "os-copy"]);
    assert!(r.stdout.contains(&format!("Removed ref {branch}")), "{r:?}");
    assert!(!repo.refs().iter().any(|r| r == branch));
    repo.ok(&["prune"]);
    tools::fsck(&repo.path);
    assert!(!tools::ostree(&repo.path, &["summary", "--view"]).contains(branch));
}

/// A client whose remote `origin` names collection `id` (libostree then requires commits
/// bound to it and to the ref pulled).
fn collection_client(dir: &Path, url: &str, id: &str) -> PathBuf {
    let repo = dir.join("collection-client");
    tools::ostree(&repo, &["init", "--mode=archive"]);
    let id = format!("--collection-id={id}");
    tools::ostree(
        &repo,
        &["remote", "add", "--no-gpg-verify", &id, "origin", url],
    );
    repo
}

#[test]
fn commits_of_a_repository_with_a_collection_id_pull_into_collection_remotes() {
    let tmp = tempdir();
    let id = "org.example.Os";
    // Without bindings (a collection ID set behind ocitree's back), libostree refuses.
    let unbound = Repo::with_mode("archive");
    unbound.import(&small_image(&tmp.path().join("u"), b"u\n"), "small");
    tools::ostree(&unbound.path, &["config", "set", "core.collection-id", id]);
    unbound.ok(&["summary"]);
    let server = Server::serve(&unbound.path);
    let dir = tmp.path().join("c1");
    std::fs::create_dir_all(&dir).unwrap();
    let (ok, err) = pull(
        &collection_client(&dir, &server.url, id),
        "ocitree/image/small",
    );
    assert!(!ok && err.contains("binding"), "{err}");
    drop(server);

    let tmp2 = tempdir();
    let path = tmp2.path().join("repo");
    let r = output(
        Command::new(bin())
            .arg("--repo")
            .arg(&path)
            .args(["init", "--mode", "archive", "--collection-id", id])
            .output()
            .unwrap(),
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        tools::ostree(&path, &["config", "get", "core.collection-id"]).trim(),
        id
    );
    let repo = Repo { tmp: tmp2, path };
    let commit = repo
        .import(&small_image(&tmp.path().join("s"), b"s\n"), "small")
        .commit();
    let binding = tools::ostree(
        &repo.path,
        &[
            "show",
            "--print-metadata-key=ostree.collection-binding",
            &commit,
        ],
    );
    assert_eq!(binding.trim(), format!("'{id}'"));
    let server = Server::serve(&repo.path);
    let dir = tmp.path().join("c2");
    std::fs::create_dir_all(&dir).unwrap();
    let client = collection_client(&dir, &server.url, id);
    let (ok, err) = pull(&client, "ocitree/image/small");
    assert!(ok, "{err}");
    let pulled = tools::ostree(&client, &["rev-parse", "origin:ocitree/image/small"]);
    assert_eq!(pulled.trim(), commit);
    tools::fsck(&client);
    // An image carrying its commit unchanged (encapsulated elsewhere, bound to no
    // collection) cannot be bound here: the import says so.
    let carried = tmp.path().join("carried");
    let r = unbound.ok(&[
        "encapsulate",
        "small",
        &format!("oci:{}:v1", carried.display()),
    ]);
    assert!(r.stdout.contains("Commit:"), "{r:?}");
    let src = format!("oci:{}:v1", carried.display());
    let r = repo.ok(&["import", &src, "carried"]);
    assert!(
        r.stderr.contains(
            "warning: image carried: it carries its commit unchanged, bound to \
             no collection"
        ),
        "{r:?}"
    );
    let j = repo.ok(&["import", "--json", &src, "carried"]);
    assert!(
        j.stdout.contains(r#""event":"collection-mismatch""#),
        "{j:?}"
    );
    // A plain image is bound here: no warning.
    let plain = repo.import(&small_image(&tmp.path().join("p"), b"p\n"), "plain");
    assert!(!plain.stderr.contains("warning"), "{plain:?}");
    // Another ID for the same repository is refused: its commits are bound to this one.
    let err = repo.fails(&[
        "init",
        "--mode",
        "archive",
        "--collection-id",
        "org.other.Os",
    ]);
    assert!(err.contains(id), "{err}");
    let err = repo.fails(&["init", "--mode", "archive", "--collection-id", "not valid"]);
    assert!(err.contains("collection ID"), "{err}");
}

/// `summary --sign-ed25519` after `summary --sign-by` adds the ed25519 key to the GPG key
/// (keys given replace only the remembered keys of their kind), prints both, and both sign
/// every later summary: a client verifying the summary with GPG still pulls.
#[test]
fn summary_keys_of_one_kind_keep_the_other_kind() {
    let tmp = tempdir();
    let (home, key, public) = gpg_key(tmp.path());
    let (keys, ed_public) = ed25519_key(tmp.path());
    let repo = Repo::with_mode("archive");
    repo.import(&small_image(&tmp.path().join("a"), b"a\n"), "a");
    let home_s = home.to_str().unwrap();
    repo.ok(&["summary", "--sign-by", &key, "--gpg-homedir", home_s]);
    let r = repo.ok(&["summary", "--sign-ed25519", keys.to_str().unwrap()]);
    let shown = r.field("Keys");
    assert!(
        shown.contains(&format!("GPG {key}")) && shown.contains("ed25519 "),
        "{shown}"
    );
    // an import signs the new summary with both
    repo.import(&small_image(&tmp.path().join("b"), b"b\n"), "b");
    let sig = repo.path.join("summary.sig");
    assert_eq!(detached_sigs(&sig, "ostree.gpgsigs").len(), 1);
    let ed = ed25519_sigs(&sig);
    assert_eq!(ed.len(), 1);
    let summary = repo.path.join("summary");
    assert!(openssl_verifies(&ed_public, &summary, &ed[0], tmp.path()));
    let server = Server::serve(&repo.path);
    let client = client_repo(tmp.path(), &server.url, &public);
    // gpg-verify-summary=true: listing the refs needs the GPG signature of the summary
    let refs = tools::ostree(&client, &["remote", "refs", "origin"]);
    assert!(refs.contains("origin:ocitree/image/b"), "{refs}");
}
