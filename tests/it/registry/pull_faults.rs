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
