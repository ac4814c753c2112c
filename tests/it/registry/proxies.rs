//! HTTP proxies from the environment, as skopeo reads them: a real forward proxy (tinyproxy)
//! carries pulls and pushes through `CONNECT` tunnels. Loopback addresses are never proxied (as in Go), so the registries, which listen
//! on 127.0.0.1, are addressed as `0.0.0.0:PORT` where a test wants the proxy used: Linux
//! connects to the local host for that address, and it is not a loopback address.

use super::*;
use crate::util::forward_proxy::{ForwardProxy, Kind};
use crate::util::registry::free_port;

const VARS: [&str; 7] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
];

/// Runs ocitree on `repo` with only the proxy variables `vars` set.
fn run(repo: &Repo, vars: &[(&str, &str)], args: &[&str]) -> Run {
    let mut c = repo.cmd();
    for v in VARS {
        c.env_remove(v);
    }
    c.envs(vars.iter().copied());
    output(
        c.args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap(),
    )
}

/// `docker://0.0.0.0:PORT/REPO` for `reg`: the registry, reached the proxied way.
fn unspecified(reg: &Registry, repo: &str) -> String {
    format!("docker://0.0.0.0:{}/{repo}", reg.port)
}

/// Imports `test/small:latest` from `reg` at 0.0.0.0 into a new repository with the proxy
/// variables `vars`; asserts success and umoci's tree.
fn pull_through(reg: &Registry, vars: &[(&str, &str)]) -> Repo {
    let repo = Repo::new();
    let src = format!("{}:latest", unspecified(reg, "test/small"));
    let r = run(
        &repo,
        vars,
        &["import", "--tls-verify=false", &src, "small"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    repo
}

/// Only `HTTP_PROXY` set: `--tls-verify=false` tries HTTPS straight to the registry, finds
/// plain HTTP, and every request after goes through the proxy (ureq tunnels plain HTTP
/// through `CONNECT` too); a push as well.
#[test]
fn pulls_and_pushes_of_a_plain_http_registry_go_through_http_proxy() {
    let reg = registry_with_small();
    let proxy = ForwardProxy::start();
    let url = proxy.url();
    let vars = [("HTTP_PROXY", url.as_str())];
    let repo = pull_through(&reg, &vars);
    let tunnel = format!("CONNECT 0.0.0.0:{} HTTP/1.1", reg.port);
    let pulled = proxy.requests();
    assert!(!pulled.is_empty(), "the proxy carried nothing");
    assert!(pulled.iter().all(|r| r == &tunnel), "{pulled:#?}");

    // a push, read back by skopeo straight from the registry
    let dest = format!("{}:v1", unspecified(&reg, "pushed/small"));
    let r = run(
        &repo,
        &vars,
        &["export", "--tls-verify=false", "small", &dest],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let pushed = proxy.requests();
    assert!(pushed.len() > pulled.len(), "{pushed:#?}");
    assert!(pushed.iter().all(|r| r == &tunnel), "{pushed:#?}");
    let out = tools::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("{}:v1", reg.url("pushed/small"))),
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        r.field("Pushed")
    );
}

/// Only `https_proxy` set (lower case is read too): an HTTPS registry is reached through a
/// `CONNECT` tunnel.
#[test]
fn an_https_registry_is_reached_through_a_connect_tunnel() {
    let reg = Registry::with_self_signed_tls();
    reg.skopeo_push(&wild_images().join("small"), "latest", "test/small", None);
    let proxy = ForwardProxy::start();
    let url = proxy.url();
    pull_through(&reg, &[("https_proxy", &url)]);
    let carried = proxy.requests();
    let tunnel = format!("CONNECT 0.0.0.0:{} HTTP/1.1", reg.port);
    assert!(carried.contains(&tunnel), "{carried:#?}");
    assert!(carried.iter().all(|r| r == &tunnel), "{carried:#?}");
}

/// A SOCKS5 proxy (microsocks) in both variables carries the pull.
#[test]
fn a_socks5_proxy_carries_the_pull() {
    let reg = registry_with_small();
    let proxy = ForwardProxy::start_kind(Kind::Socks5);
    let url = proxy.url();
    pull_through(&reg, &[("HTTP_PROXY", &url), ("HTTPS_PROXY", &url)]);
    let carried = proxy.requests();
    let to = format!("connected to 0.0.0.0:{}", reg.port);
    assert!(!carried.is_empty(), "the proxy carried nothing");
    assert!(carried.iter().all(|r| r == &to), "{carried:#?}");
}

/// With both variables naming a proxy that is down: 127.0.0.1 is pulled from straight, so is
/// 0.0.0.0 when `NO_PROXY` exempts it (by address and port, CIDR block, or in a list); else
/// the pull fails naming the proxy, and the repository is unchanged.
#[test]
fn loopback_and_no_proxy_hosts_go_direct_and_a_dead_proxy_is_named() {
    let reg = registry_with_small();
    let dead = format!("http://127.0.0.1:{}", free_port());
    let both = [
        ("HTTP_PROXY", dead.as_str()),
        ("HTTPS_PROXY", dead.as_str()),
    ];
    // 127.0.0.1 is never proxied
    let repo = Repo::new();
    let src = format!("{}:latest", reg.url("test/small"));
    let r = run(&repo, &both, &["import", "--tls-verify=false", &src, "a"]);
    assert_eq!(r.code, 0, "{r:?}");
    let commit = r.commit();
    // 0.0.0.0 is, unless NO_PROXY exempts it (with its port, or as a CIDR block)
    let proxied = format!("{}:latest", unspecified(&reg, "test/small"));
    let exact = format!("0.0.0.0:{}", reg.port);
    for exempt in [exact.as_str(), "0.0.0.0/8", "example.org, 0.0.0.0"] {
        let vars = [both[0], both[1], ("no_proxy", exempt)];
        let r = run(
            &repo,
            &vars,
            &["import", "--tls-verify=false", &proxied, "b"],
        );
        assert_eq!(r.code, 0, "NO_PROXY={exempt}: {r:?}");
        assert_eq!(r.commit(), commit, "{r:?}");
    }
    let snap = repo.snapshot();
    let vars = [both[0], both[1], ("NO_PROXY", "0.0.0.0:1")];
    let r = run(
        &repo,
        &vars,
        &[
            "import",
            "--tls-verify=false",
            "--timeout",
            "2",
            &proxied,
            "c",
        ],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains(&format!("through the proxy {dead}")),
        "{r:?}"
    );
    snap.assert_unchanged(&repo.path);
}

/// Each hop of a redirect takes its own route, as in Go: a registry reached directly that
/// sends blobs to a storage host reached through the proxy, and the other way round.
#[test]
fn each_redirect_hop_takes_its_own_route() {
    let reg = registry_with_small();
    let storage = crate::util::storage::Storage::start(reg.port);
    let proxy = ForwardProxy::start();
    let url = proxy.url();
    let import = |vars: &[(&str, &str)], src: String| {
        let repo = Repo::new();
        let args = ["import", "--tls-verify=false", "--creds", "carol:tok-pw"];
        let r = run(&repo, vars, &[&args[..], &[&src, "s"]].concat());
        assert_eq!(r.code, 0, "{r:?}");
        repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    };

    // the registry on loopback, straight; the storage host at 0.0.0.0, through the proxy
    let gw = TokenGateway::redirecting(reg.port, "carol", "tok-pw", &storage.base());
    import(
        &[("HTTP_PROXY", &url)],
        format!("{}:latest", gw.url("test/small")),
    );
    let carried = proxy.requests();
    let to_storage = format!("CONNECT 0.0.0.0:{} HTTP/1.1", storage.port);
    assert!(carried.contains(&to_storage), "{carried:#?}");
    assert!(carried.iter().all(|r| r == &to_storage), "{carried:#?}");

    // the registry at 0.0.0.0, through the proxy; the storage host on loopback, straight
    let looped = format!("http://127.0.0.1:{}", storage.port);
    let gw = TokenGateway::redirecting(reg.port, "carol", "tok-pw", &looped);
    let stored = storage.requests().len();
    import(
        &[("HTTP_PROXY", &url)],
        format!("docker://0.0.0.0:{}/test/small:latest", gw.port),
    );
    let later = &proxy.requests()[carried.len()..];
    let to_registry = format!("CONNECT 0.0.0.0:{} HTTP/1.1", gw.port);
    assert!(later.contains(&to_registry), "{later:#?}");
    assert!(later.iter().all(|r| r == &to_registry), "{later:#?}");
    assert!(
        storage.requests().len() >= stored + 4,
        "{:#?}",
        storage.requests()
    );
}
