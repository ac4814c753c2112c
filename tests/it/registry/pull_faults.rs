//! Pulls over a faulty link: cut transfers resumed with Range (or refetched when the
//! registry ignores it), partial blobs of an earlier run, corrupted blobs rejected, leftover
//! partial blobs pruned.

use super::*;

#[test]
fn cut_transfer_resumes_with_range() {
    let reg = registry_with_small();
    let (big, size, _) = big_layer();
    let proxy = Proxy::start(reg.port, Fault::CutOnce(1 << 20));
    let repo = Repo::new();
    let r = pull_small(&repo, &proxy, "small");
    assert_eq!(r.layers(), (3, 0));
    let reqs = proxy.blob_requests(&big);
    assert!(reqs.len() >= 2, "{reqs:?}");
    let from = reqs
        .iter()
        .find_map(|r| resumed_from(r))
        .unwrap_or_else(|| panic!("no Range request: {reqs:?}"));
    assert!(from > 0 && from < size, "{reqs:?}");
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    assert!(spool_files(&repo).is_empty());
}

#[test]
fn a_link_cut_every_256_kib_still_completes_by_resuming() {
    let reg = registry_with_small();
    let (big, size, _) = big_layer();
    let proxy = Proxy::start(reg.port, Fault::CutEvery(256 << 10));
    let repo = Repo::new();
    let r = pull_small(&repo, &proxy, "small");
    let reqs = proxy.blob_requests(&big);
    let ranged = reqs
        .iter()
        .filter(|r| r.to_ascii_lowercase().contains("range: bytes="))
        .count();
    assert!(
        ranged as u64 >= size / (256 << 10),
        "{ranged} resumes of {size} bytes"
    );
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
}
#[test]
fn cut_transfer_completes_when_the_registry_ignores_range() {
    let reg = registry_with_small();
    let (big, _, _) = big_layer();
    let proxy = Proxy::start(reg.port, Fault::CutOnceNoRange(1 << 20));
    let repo = Repo::new();
    let r = pull_small(&repo, &proxy, "small");
    // asked for a range, got the whole blob again, skipped what it had
    assert!(proxy.blob_requests(&big).len() >= 2);
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    assert!(spool_files(&repo).is_empty());
}

#[test]
fn partial_blob_from_an_earlier_run_is_resumed_or_refetched() {
    let reg = registry_with_small();
    let (big, size, bytes) = big_layer();
    let repo = Repo::new();
    std::fs::create_dir_all(spool(&repo)).unwrap();
    let half = (size / 2) as usize;
    std::fs::write(partial_in(&repo, &big), &bytes[..half]).unwrap();
    let proxy = Proxy::start(reg.port, Fault::None);
    let src = format!("{}:latest", proxy.url("test/small"));
    repo.ok(&["import", "--tls-verify=false", &src, "a"]);
    let reqs = proxy.blob_requests(&big);
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert!(
        reqs[0]
            .to_ascii_lowercase()
            .contains(&format!("range: bytes={half}-")),
        "{reqs:?}"
    );
    assert!(spool_files(&repo).is_empty());

    // a kept part that is wrong: the resumed blob does not match, and is fetched again whole
    let repo = Repo::new();
    std::fs::create_dir_all(spool(&repo)).unwrap();
    std::fs::write(partial_in(&repo, &big), vec![0u8; half]).unwrap();
    let proxy = Proxy::start(reg.port, Fault::None);
    let r = pull_small(&repo, &proxy, "b");
    let reqs = proxy.blob_requests(&big);
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert!(!reqs[1].to_ascii_lowercase().contains("range:"), "{reqs:?}");
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
}

fn partial_in(repo: &Repo, digest: &str) -> std::path::PathBuf {
    spool(repo).join(format!("{}.partial", digest.replace(':', "-")))
}

#[test]
fn corrupted_blob_is_rejected_and_nothing_is_committed() {
    let reg = registry_with_small();
    let (big, _, _) = big_layer();
    let proxy = Proxy::start(reg.port, Fault::Flip(1 << 20));
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = format!("{}:latest", proxy.url("test/small"));
    let err = repo.fails(&["import", "--tls-verify=false", &src, "small"]);
    assert!(
        err.contains(&big) && err.contains("digest mismatch"),
        "{err}"
    );
    assert!(err.contains("test/small"), "{err}");
    snap.assert_unchanged(&repo.path);
    // the bad bytes are not kept to be resumed from (verified blobs of other layers may be)
    let name = big.replace(':', "-");
    assert!(
        !spool_files(&repo).iter().any(|f| f.starts_with(&name)),
        "{:?}",
        spool_files(&repo)
    );
}

#[test]
fn prune_removes_leftover_partial_blobs() {
    let repo = Repo::new();
    std::fs::create_dir_all(spool(&repo)).unwrap();
    std::fs::write(
        partial_in(&repo, &format!("sha256:{}", "a".repeat(64))),
        b"junk",
    )
    .unwrap();
    repo.ok(&["prune"]);
    assert!(spool_files(&repo).is_empty());
}

/// A registry whose manifest claims a layer of 1 PiB (and would stream it forever): the pull
/// is refused before a byte is spooled, saying how much room it lacks, instead of filling the
/// disk and keeping what it wrote "for resuming".
#[test]
fn a_blob_bigger_than_the_free_space_is_refused_before_downloading() {
    use crate::util::registry::{read_head, reply};
    use std::io::Write as _;
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{}", "c".repeat(64))]},
    })
    .to_string();
    let layer = format!("sha256:{}", "ab".repeat(32));
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(config.as_bytes()), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer, "size": 1u64 << 50}],
    })
    .to_string();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let asked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&asked);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut c) = conn else { continue };
            let Some(head) = read_head(&mut c) else {
                continue;
            };
            let line = head.lines().next().unwrap_or_default().to_string();
            log.lock().unwrap().push(line.clone());
            let oci = "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n";
            if line.contains("/manifests/") {
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\n{oci}Content-Length: {}\r\nConnection: close\r\n\r\n{manifest}",
                    manifest.len()
                );
            } else if line.contains(&format!("/blobs/{}", sha256(config.as_bytes()))) {
                reply(&mut c, "200 OK", "", &config);
            } else if line.contains("/blobs/") {
                // an endless stream of zeros
                let _ = write!(c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
                let zeros = vec![0u8; 1 << 16];
                while c.write_all(&zeros).is_ok() {}
            } else {
                reply(&mut c, "200 OK", "", "{}");
            }
        }
    });
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = format!("docker://127.0.0.1:{port}/r:latest");
    let err = repo.fails(&["import", "--tls-verify=false", &src, "x"]);
    assert!(
        err.contains(&layer) && err.contains("are free") && err.contains("1125899906842624"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
    assert!(spool_files(&repo).is_empty(), "{:?}", spool_files(&repo));
    let asked = asked.lock().unwrap();
    assert!(
        !asked.iter().any(|l| l.contains(&format!("/blobs/{layer}"))),
        "{asked:?}"
    );
}
