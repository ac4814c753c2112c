//! Credential helpers (issue 12): `credHelpers` and `credsStore` in the auth file run
//! `docker-credential-NAME get`, against a registry behind htpasswd. The helpers are small
//! scripts in a directory put first on the child's PATH.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::util::registry::Registry;
use crate::util::*;

/// Writes `docker-credential-NAME` into `bin`: it logs its stdin to `bin/NAME.asked`, then
/// runs `body` (shell).
fn helper(bin: &Path, name: &str, body: &str) {
    let p = bin.join(format!("docker-credential-{name}"));
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 3\ncat > \"$(dirname \"$0\")/{name}.asked\"\n{body}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

struct Setup {
    reg: Registry,
    repo: Repo,
    bin: PathBuf,
    src: String,
}

impl Setup {
    fn new() -> Setup {
        let reg = Registry::small_behind_htpasswd();
        let repo = Repo::new();
        let bin = repo.tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let json = |u: &str, p: &str| {
            format!(
                "echo '{{\"ServerURL\":\"{}\",\"Username\":\"{u}\",\"Secret\":\"{p}\"}}'",
                reg.host()
            )
        };
        helper(&bin, "good", &json("alice", "s3cret"));
        helper(&bin, "wrong", &json("alice", "nope"));
        helper(&bin, "token", &json("<token>", "refresh"));
        helper(
            &bin,
            "broken",
            "echo 'keychain locked' ; echo 'more detail' >&2; exit 1",
        );
        helper(
            &bin,
            "empty",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        let src = format!("{}:latest", reg.url("test/small"));
        Setup {
            reg,
            repo,
            bin,
            src,
        }
    }

    /// Runs `ocitree ARGS` with `auth` as the only auth file and the helpers on PATH.
    fn run(&self, auth: serde_json::Value, args: &[&str]) -> Run {
        let file = self.repo.tmp.path().join("auth.json");
        std::fs::write(&file, auth.to_string()).unwrap();
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        output(
            self.repo
                .cmd()
                .args(args)
                .env("PATH", path)
                .env("REGISTRY_AUTH_FILE", &file)
                .env("XDG_RUNTIME_DIR", self.repo.tmp.path().join("no-runtime"))
                .env("HOME", self.repo.tmp.path().join("no-home"))
                .output()
                .unwrap(),
        )
    }

    fn check(&self, auth: serde_json::Value) -> Run {
        self.run(auth, &["check", "--tls-verify=false", &self.src, "x"])
    }

    fn asked(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.bin.join(format!("{name}.asked"))).ok()
    }
}

fn basic(s: &str) -> serde_json::Value {
    use base64::Engine as _;
    serde_json::json!({ "auth": base64::engine::general_purpose::STANDARD.encode(s) })
}

#[test]
fn cred_helper_gives_credentials_and_failures_name_it() {
    let s = Setup::new();
    let host = s.reg.host();

    // credHelpers: the helper is asked for HOST:PORT, and the pull gives umoci's tree
    let r = s.run(
        serde_json::json!({"credHelpers": {&host: "good"}}),
        &["import", "--tls-verify=false", &s.src, "small"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(s.asked("good").as_deref(), Some(host.as_str()));
    s.repo
        .assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");

    // a failing helper: exit 2 naming it, with its message; repo unchanged
    let snap = s.repo.snapshot();
    let r = s.run(
        serde_json::json!({"credHelpers": {&host: "broken"}}),
        &["import", "--tls-verify=false", &s.src, "other"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("docker-credential-broken get"), "{r:?}");
    assert!(r.stderr.contains("keychain locked"), "{r:?}");
    // a helper that is not installed, and one giving an identity token
    let r = s.check(serde_json::json!({"credHelpers": {&host: "absent"}}));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("docker-credential-absent"), "{r:?}");
    assert!(r.stderr.contains("PATH"), "{r:?}");
    let r = s.check(serde_json::json!({"credHelpers": {&host: "token"}}));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("identity token"), "{r:?}");
    assert!(!r.stderr.contains("refresh\""), "{r:?}");
    // a helper with nothing for the registry: anonymous, so the registry refuses
    let r = s.check(serde_json::json!({"credHelpers": {&host: "empty"}}));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("authentication failed"), "{r:?}");
    snap.assert_unchanged(&s.repo.path);

    // credsStore alone
    let r = s.check(serde_json::json!({"credsStore": "good"}));
    assert_eq!(r.code, 0, "{r:?}");
}

/// --creds > credHelpers entry > auths entry > credsStore: each pair set so that only the
/// higher one gives working credentials.
#[test]
fn credential_precedence() {
    let s = Setup::new();
    let host = s.reg.host();
    // --creds wins over a helper that would fail (and it is not even run)
    let r = s.run(
        serde_json::json!({"credHelpers": {&host: "broken"}}),
        &[
            "check",
            "--tls-verify=false",
            "--creds",
            "alice:s3cret",
            &s.src,
            "x",
        ],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(s.asked("broken").is_none());
    // credHelpers entry over an auths entry
    let r = s.check(serde_json::json!({
        "credHelpers": {&host: "good"},
        "auths": {&host: basic("alice:nope")},
    }));
    assert_eq!(r.code, 0, "{r:?}");
    let r = s.check(serde_json::json!({
        "credHelpers": {&host: "wrong"},
        "auths": {&host: basic("alice:s3cret")},
    }));
    assert_eq!(r.code, 2, "{r:?}");
    // an auths entry over credsStore (which is then not run)
    assert!(
        s.asked("wrong").is_some(),
        "the credHelpers case above ran it"
    );
    std::fs::remove_file(s.bin.join("wrong.asked")).unwrap();
    let r = s.check(serde_json::json!({
        "credsStore": "wrong",
        "auths": {&host: basic("alice:s3cret")},
    }));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(s.asked("wrong").is_none());
    let r = s.check(serde_json::json!({
        "credsStore": "good",
        "auths": {&host: basic("alice:nope")},
    }));
    assert_eq!(r.code, 2, "{r:?}");
    // a credHelpers entry for another registry is not used; credsStore then is
    let r = s.check(serde_json::json!({
        "credHelpers": {"other.example": "broken"},
        "credsStore": "good",
    }));
    assert_eq!(r.code, 0, "{r:?}");
}
