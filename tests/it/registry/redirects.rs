//! Blob downloads redirected to a storage host, as registries with their blobs in S3 or
//! behind a CDN answer them: followed hop by hop, the registry's token kept from the storage
//! host (which refuses requests carrying one, as S3 does), resumed through the redirect,
//! and a redirect loop refused. The routes each hop takes are in `proxies`.

use super::*;
use crate::util::storage::Storage;

/// The `sha256:…` digests in `requests` (request lines or heads) of blob downloads.
fn blob_digests(requests: &[String]) -> std::collections::BTreeSet<String> {
    requests
        .iter()
        .filter_map(|r| r.split("/blobs/").nth(1))
        .map(|rest| rest.split(['?', ' ']).next().unwrap().to_string())
        .collect()
}

/// Imports `test/small:latest` from `gw` with its credentials; asserts umoci's tree.
fn pull_redirected(gw: &TokenGateway) -> Repo {
    let repo = Repo::new();
    let src = format!("{}:latest", gw.url("test/small"));
    let creds = ["--creds", "carol:tok-pw"];
    let r = repo.ok(&[
        "import",
        "--tls-verify=false",
        creds[0],
        creds[1],
        &src,
        "s",
    ]);
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    repo
}

#[test]
fn redirected_blobs_come_from_storage_without_the_registry_token() {
    let reg = registry_with_small();
    let storage = Storage::start(reg.port);
    let gw = TokenGateway::redirecting(reg.port, "carol", "tok-pw", &storage.base());
    pull_redirected(&gw);
    let stored = storage.requests();
    // the three layers and the config, each from the storage host
    let digests = blob_digests(&stored);
    assert_eq!(digests.len(), 4, "{stored:#?}");
    assert_eq!(digests, blob_digests(&gw.requests()));
    assert!(
        stored
            .iter()
            .all(|h| h.starts_with("GET /v2/test/small/blobs/sha256:")
                && h.contains("?sig=1 HTTP/1.1")
                && !h.to_ascii_lowercase().contains("authorization:")),
        "{stored:#?}"
    );
}

#[test]
fn a_download_cut_at_the_storage_host_resumes_through_the_redirect() {
    let reg = registry_with_small();
    let (big, size, _) = big_layer();
    let cut = Proxy::start(reg.port, Fault::CutOnce(1 << 20));
    let storage = Storage::start(cut.port);
    let gw = TokenGateway::redirecting(reg.port, "carol", "tok-pw", &storage.base());
    pull_redirected(&gw);
    let asked = gw.requests();
    let again = asked.iter().filter(|r| r.contains(&big)).count();
    assert!(again >= 2, "the registry was asked once: {asked:#?}");
    let stored = storage.requests();
    let from = stored
        .iter()
        .filter(|h| h.contains(&big))
        .find_map(|h| resumed_from(h))
        .unwrap_or_else(|| panic!("no Range request at the storage host: {stored:#?}"));
    assert!(from > 0 && from < size, "{stored:#?}");
}

#[test]
fn a_redirect_loop_fails_naming_it_and_changes_nothing() {
    let reg = registry_with_small();
    let gw = TokenGateway::redirecting(reg.port, "carol", "tok-pw", "http://127.0.0.1:{port}");
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = gateway_import_fails(&repo, &gw, "carol:tok-pw");
    assert!(
        err.contains("too many redirects") && err.contains("redirected to http://127.0.0.1:"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
    // ten redirects followed, then given up, once (not retried)
    let config_gets = gw
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET /v2/test/small/blobs/"))
        .count();
    assert!((11..=11 * 4).contains(&config_gets), "{config_gets}");
}

/// A storage host that answers the redirected download with its own 401 challenge, naming a
/// token realm elsewhere: the challenge is not the registry's, so the registry's credentials
/// never go to that realm; the pull fails naming the storage host, the repository unchanged.
#[test]
fn a_challenge_from_the_storage_host_gets_no_credentials() {
    use crate::util::registry::{read_head, reply};
    let realm = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let realm_port = realm.local_addr().unwrap().port();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&asked);
    std::thread::spawn(move || {
        for conn in realm.incoming() {
            let Ok(mut c) = conn else { continue };
            log.lock()
                .unwrap()
                .push(read_head(&mut c).unwrap_or_default());
            reply(&mut c, "200 OK", "", r#"{"token":"stolen"}"#);
        }
    });
    let storage = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let storage_port = storage.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in storage.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = read_head(&mut c);
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{realm_port}/token\"\r\n"
            );
            reply(&mut c, "401 Unauthorized", &challenge, "{}");
        }
    });
    let reg = registry_with_small();
    let to = format!("http://0.0.0.0:{storage_port}");
    let gw = TokenGateway::redirecting(reg.port, "carol", "tok-pw", &to);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = gateway_import_fails(&repo, &gw, "carol:tok-pw");
    assert!(
        err.contains(&format!("redirected to http://0.0.0.0:{storage_port}/"))
            && err.contains("401"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
    assert!(
        asked.lock().unwrap().is_empty(),
        "{:?}",
        asked.lock().unwrap()
    );
}
