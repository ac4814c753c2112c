//! Registry authentication: htpasswd basic auth with --creds and auth files, and the
//! bearer-token flow.

use super::*;

#[test]
fn basic_auth_with_creds_and_auth_files() {
    let reg = Registry::small_behind_htpasswd();
    let repo = Repo::new();
    let src = format!("{}:latest", reg.url("test/small"));
    let snap = repo.snapshot();
    let env_free = |args: &[&str]| {
        let out = repo
            .cmd()
            .args(args)
            .env_remove("REGISTRY_AUTH_FILE")
            .env("XDG_RUNTIME_DIR", repo.tmp.path().join("no-runtime"))
            .env("HOME", repo.tmp.path().join("no-home"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // no credentials, and a wrong password: exit 2, a clear message, repo unchanged
    let (code, _, err) = env_free(&["import", "--tls-verify=false", &src]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("authentication failed") && err.contains("--creds"),
        "{err}"
    );
    let (code, _, err) = env_free(&[
        "import",
        "--tls-verify=false",
        "--creds",
        "alice:wrong",
        &src,
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("wrong"), "the password leaked: {err}");
    snap.assert_unchanged(&repo.path);

    let (code, out, err) = env_free(&[
        "import",
        "--tls-verify=false",
        "--creds",
        "alice:s3cret",
        &src,
        "a",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("3 imported"), "{out}");
    // a push refused: the URLs named are the plain-HTTP ones the requests went to
    let dest = format!("{}:v1", reg.url("pushed/small"));
    let args = [
        "export",
        "--tls-verify=false",
        "--creds",
        "alice:wrong",
        "a",
    ];
    let (code, _, err) = env_free(&[&args[..], &[dest.as_str()]].concat());
    assert_eq!(code, Some(2), "{err}");
    let plain = format!("http://{}/", reg.host());
    assert!(err.contains(&plain) && !err.contains("https://"), "{err}");

    // an auth file, by --authfile, by $REGISTRY_AUTH_FILE and as ~/.docker/config.json
    let auth = serde_json::json!({"auths": {reg.host(): {"auth": base64("alice:s3cret")}}});
    let file = repo.tmp.path().join("auth.json");
    std::fs::write(&file, auth.to_string()).unwrap();
    let (code, _, err) = env_free(&[
        "check",
        "--tls-verify=false",
        "--authfile",
        file.to_str().unwrap(),
        &src,
        "b",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let out = repo
        .cmd()
        .args(["check", "--tls-verify=false", &src, "b"])
        .env("REGISTRY_AUTH_FILE", &file)
        .env("HOME", repo.tmp.path().join("no-home"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let home = repo.tmp.path().join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::copy(&file, home.join(".docker/config.json")).unwrap();
    let out = repo
        .cmd()
        .args(["import", "--tls-verify=false", &src, "c"])
        .env_remove("REGISTRY_AUTH_FILE")
        .env("XDG_RUNTIME_DIR", repo.tmp.path().join("no-runtime"))
        .env("HOME", &home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    tools::fsck(&repo.path);
}

fn base64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
#[test]
fn bearer_token_flow_with_creds() {
    let reg = registry_with_small();
    let gw = TokenGateway::start(reg.port, "carol", "tok-pw");
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = gateway_import_fails(&repo, &gw, "carol:nope");
    let src = format!("{}:latest", gw.url("test/small"));
    assert!(
        err.contains("authentication failed") && err.contains("/token"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
    let r = repo.ok(&[
        "import",
        "--tls-verify=false",
        "--creds",
        "carol:tok-pw",
        &src,
        "s",
    ]);
    assert_eq!(r.layers(), (3, 0));
    let token_requests: Vec<String> = gw
        .requests()
        .into_iter()
        .filter(|r| r.contains("/token?"))
        .collect();
    assert!(
        token_requests
            .iter()
            .all(|r| r.contains("scope=repository%3Atest%2Fsmall%3Apull")
                && r.contains("service=test-registry")),
        "{token_requests:?}"
    );
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
}
