//! Hostile sizes: decompression bombs stream with flat memory, oversized metadata is refused
//! with a clear error, and many layers import. Peak RSS is measured with GNU time; the larger
//! runs (GiB bombs, a million files) are in `bench/hostile.sh`.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::util::*;

/// Peak RSS bound for the small imports below, in KiB. A debug build importing a tiny layer
/// peaks near 35 MiB; anything holding a bomb's output would pass 100 MiB.
const FLAT_KIB: u64 = 80 << 10;

/// MiB of zeros the bombs inflate to: more than FLAT_KIB, so a buffered bomb fails the bound.
const BOMB_MIB: usize = 96;

/// Runs `ocitree --repo REPO ARGS` under GNU time: the run and its peak RSS in KiB.
/// [`measured`], asserting exit `code` and flat memory (below [`FLAT_KIB`]).
fn flat(repo: &Repo, args: &[&str], code: i32) -> Run {
    let (r, kib) = measured(repo, args);
    assert_eq!(r.code, code, "{r:?}");
    assert!(kib < FLAT_KIB, "peak RSS {kib} KiB: {r:?}");
    r
}

fn measured(repo: &Repo, args: &[&str]) -> (Run, u64) {
    tools::require("time");
    let rss = repo.tmp.path().join("rss");
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss)
        .arg(bin())
        .arg("--repo")
        .arg(&repo.path)
        .args(args)
        .env_remove("OCITREE_REPO")
        .output()
        .unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let text = std::fs::read_to_string(&rss).unwrap();
    let kib = text.lines().last().unwrap().trim().parse().unwrap();
    (run, kib)
}

/// A layer blob: `tar` (a small tar with its end blocks) followed by BOMB_MIB MiB of zeros,
/// each MiB its own gzip member or zstd frame (a few KiB in all). Returns (blob, diff_id).
fn bomb(tar: &[u8], comp: Comp) -> (Vec<u8>, String) {
    let mib = vec![0u8; 1 << 20];
    let one = match comp {
        Comp::Gzip => compress(&mib, Comp::Gzip),
        _ => zstd::encode_all(&mib[..], 3).unwrap(),
    };
    let mut blob = match comp {
        Comp::Gzip => compress(tar, Comp::Gzip),
        _ => zstd::encode_all(tar, 3).unwrap(),
    };
    let mut h = Sha256::new();
    h.update(tar);
    for _ in 0..BOMB_MIB {
        blob.extend_from_slice(&one);
        h.update(&mib);
    }
    (blob, format!("sha256:{}", hex::encode(h.finalize())))
}

/// A layout with one layer blob and the given diff_id, tagged `latest`.
fn layout_of(dir: &Path, blob: Vec<u8>, media_type: &str, diff_id: &str) {
    let mut l = Layout::new(dir);
    let layer = Layer {
        tar: vec![],
        blob,
        media_type: media_type.into(),
    };
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let m = l.image_with_config(&[layer], false, config);
    l.add(m, Some("latest"), None);
}

/// A gzip bomb (96 MiB of zeros after the tar's end) imports, with its diff_id checked over
/// every inflated byte, in flat memory. Before tar-split flushed as it went, the trailing
/// bytes were all held: peak RSS grew with the bomb.
#[test]
fn gzip_bomb_imports_in_flat_memory() {
    let tmp = tempdir();
    let (blob, diff_id) = bomb(&tar_of(&[file("hello", b"hi\n")]), Comp::Gzip);
    assert!(blob.len() < 1 << 20, "{}", blob.len());
    layout_of(
        &tmp.path().join("img"),
        blob,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &diff_id,
    );
    let repo = Repo::new();
    let (r, kib) = measured(
        &repo,
        &["import", &Repo::oci(&tmp.path().join("img"), "latest"), "b"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        kib < FLAT_KIB,
        "peak RSS {kib} KiB for a {BOMB_MIB} MiB bomb"
    );
    let ls = tools::ostree(&repo.path, &["ls", "-R", "ocitree/image/b"]);
    assert!(ls.contains("/hello"), "{ls}");
    tools::fsck(&repo.path);
}

/// A zstd bomb whose diff_id is wrong: inflated in flat memory to the end, then refused with
/// the diff_id error, the repo unchanged.
#[test]
fn zstd_bomb_with_wrong_diff_id_fails_in_flat_memory() {
    let tmp = tempdir();
    let (blob, _) = bomb(&tar_of(&[file("hello", b"hi\n")]), Comp::ZstdMulti);
    let wrong = format!("sha256:{}", "0".repeat(64));
    layout_of(
        &tmp.path().join("img"),
        blob,
        "application/vnd.oci.image.layer.v1.tar+zstd",
        &wrong,
    );
    let repo = Repo::new();
    let snap = repo.snapshot();
    let (r, kib) = measured(
        &repo,
        &["import", &Repo::oci(&tmp.path().join("img"), "latest"), "b"],
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("error: "), "{r:?}");
    assert!(r.stderr.contains("diff_id mismatch"), "{}", r.stderr);
    assert!(
        kib < FLAT_KIB,
        "peak RSS {kib} KiB for a {BOMB_MIB} MiB bomb"
    );
    snap.assert_unchanged(&repo.path);
}

/// A PAX record over 1 MiB (an 8 MiB xattr value) is refused, naming the layer, before it is
/// read into memory.
#[test]
fn huge_pax_record_is_refused() {
    let tmp = tempdir();
    let big = vec![b'a'; 8 << 20];
    let layer = Layer::new(&[
        file("ok", b"1"),
        file_xattrs("f", b"x", &[("user.big", &big)]),
    ]);
    let img = tmp.path().join("img");
    Layout::single(&img, std::slice::from_ref(&layer));
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &Repo::oci(&img, "latest"), "p"]);
    assert!(
        err.contains(&sha256(&layer.blob)) && err.contains("more than 1048576 bytes of headers"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
}

/// An xattr name holding a NUL byte would be stored and set as the name before it
/// (`user.a\0z=evil` set `user.a` to `evil` over the file's own `user.a=good` at checkout):
/// refused, as an empty name is, naming layer, path and attribute. Names Linux cannot set
/// (macOS's `com.apple.provenance`, which bsdtar writes; over 255 bytes) are kept as the
/// image has them.
#[test]
fn xattr_names_that_would_set_another_name_are_refused() {
    let tmp = tempdir();
    for (i, (name, why)) in [("user.a\0z", "NUL"), ("", "is empty")]
        .into_iter()
        .enumerate()
    {
        let layer = Layer::new(&[file_xattrs(
            "f",
            b"x",
            &[("user.a", b"good"), (name, b"evil")],
        )]);
        let img = tmp.path().join(format!("img{i}"));
        Layout::single(&img, std::slice::from_ref(&layer));
        let repo = Repo::new();
        let snap = repo.snapshot();
        let err = repo.fails(&["import", &Repo::oci(&img, "latest"), "x"]);
        assert!(
            err.contains(&sha256(&layer.blob))
                && err.contains("entry \"f\"")
                && err.contains("extended attribute")
                && err.contains(why),
            "{name:?}: {err}"
        );
        snap.assert_unchanged(&repo.path);
    }
    let long_name = format!("user.{}", "x".repeat(251));
    let kept: [(&str, &[u8]); 2] = [
        ("com.apple.provenance", b"\x01\x02"),
        (long_name.as_str(), b"x"),
    ];
    let img = tmp.path().join("kept");
    Layout::single(&img, &[Layer::new(&[file_xattrs("f", b"x", &kept)])]);
    let repo = Repo::new();
    let r = repo.import(&Repo::oci(&img, "latest"), "kept");
    let listed = tools::ostree(&repo.path, &["ls", "-X", &r.commit(), "/f"]);
    assert!(
        listed.contains("com.apple.provenance") && listed.contains(&long_name),
        "{listed}"
    );
    tools::fsck(&repo.path);
}

/// A file name over 255 bytes cannot be checked out anywhere: an error naming layer and path.
/// 255 bytes is fine.
#[test]
fn file_name_over_255_bytes_is_refused() {
    let tmp = tempdir();
    let ok = format!("d/{}", "n".repeat(255));
    let long = format!("d/{}/f", "l".repeat(256));
    let good = Layer::new(&[file(&ok, b"1")]);
    Layout::single(&tmp.path().join("good"), &[good]);
    let repo = Repo::new();
    let r = repo.import(&Repo::oci(&tmp.path().join("good"), "latest"), "good");
    let out = tmp.path().join("co");
    tools::ostree_checkout(&repo.path, &r.commit(), &out);
    assert_eq!(std::fs::read(out.join(&ok)).unwrap(), b"1");

    let bad = Layer::new(&[file("a", b"1"), file(&long, b"2")]);
    Layout::single(&tmp.path().join("bad"), std::slice::from_ref(&bad));
    let snap = repo.snapshot();
    let err = repo.fails(&[
        "import",
        &Repo::oci(&tmp.path().join("bad"), "latest"),
        "bad",
    ]);
    assert!(
        err.contains(&sha256(&bad.blob))
            && err.contains(&long)
            && err.contains("file name of 256 bytes"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
}

/// An index.json over the metadata limit (8 MiB) is refused without being read whole.
#[test]
fn oversized_index_json_is_refused() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    Layout::single(&img, &[Layer::new(&[file("a", b"1")])]);
    let mut f = std::fs::File::create(img.join("index.json")).unwrap();
    f.write_all(b"{\"schemaVersion\": 2, \"manifests\": []")
        .unwrap();
    // 1 GiB of trailing spaces, sparse: the read must stop at the limit
    f.set_len(1 << 30).unwrap();
    let repo = Repo::new();
    let snap = repo.snapshot();
    let r = flat(&repo, &["import", &Repo::oci(&img, "latest"), "i"], 2);
    assert!(
        r.stderr.contains("index.json") && r.stderr.contains("larger than the 8388608 bytes"),
        "{}",
        r.stderr
    );
    snap.assert_unchanged(&repo.path);
}

/// A thousand one-file layers: no limit is needed, each is its own commit, and the merged tree
/// holds every file.
#[test]
fn a_thousand_layers_import() {
    let tmp = tempdir();
    let layers: Vec<Layer> = (0..1000)
        .map(|i| Layer::new(&[file(&format!("f{i}"), i.to_string().as_bytes())]))
        .collect();
    Layout::single(&tmp.path().join("img"), &layers);
    let repo = Repo::new();
    let (r, kib) = measured(
        &repo,
        &["import", &Repo::oci(&tmp.path().join("img"), "latest"), "m"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(r.layers(), (1000, 0));
    assert!(kib < FLAT_KIB, "peak RSS {kib} KiB");
    let ls = tools::ostree(&repo.path, &["ls", "ocitree/image/m"]);
    let files: Vec<&str> = ls.lines().filter(|l| l.contains("/f")).collect();
    assert_eq!(files.len(), 1000, "{ls}");
    assert!(ls.contains(" /f999\n"), "{ls}");
}

/// Indexes nested deeper than the resolver follows: a clean error, not a stack overflow.
#[test]
fn deeply_nested_indexes_are_refused() {
    let tmp = tempdir();
    let mut l = Layout::new(&tmp.path().join("img"));
    let mut desc = l.image(&[Layer::new(&[file("a", b"1")])], false);
    for _ in 0..200 {
        desc = l.nested_index(vec![desc]);
    }
    l.add(desc, Some("latest"), None);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &Repo::oci(&tmp.path().join("img"), "latest"), "n"]);
    assert!(err.contains("nest"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// A 9 MiB config (one huge label) is over the default metadata limit: refused, naming the
/// limit; `--max-metadata-size` raises it and the same image imports.
#[test]
fn metadata_limit_is_a_flag() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    let mut l = Layout::new(&img);
    let layer = Layer::new(&[file("a", b"1")]);
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Labels": {"big": "x".repeat(9 << 20)}},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer.tar)]},
    });
    let m = l.image_with_config(&[layer], false, config);
    l.add(m, Some("latest"), None);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = Repo::oci(&img, "latest");
    let err = repo.fails(&["import", &src, "big"]);
    assert!(err.contains("more than the 8388608 bytes allowed"), "{err}");
    snap.assert_unchanged(&repo.path);
    let r = repo.ok(&["--max-metadata-size", "16777216", "import", &src, "big"]);
    assert_eq!(r.layers(), (1, 0));
}

/// `--max-metadata-size 18446744073709551615` (u64::MAX) is no limit at all: every source
/// reads its index.json, docker-archive manifest.json and configs (one byte over the limit
/// used to wrap to 0 and every document read as empty: `index.json: EOF while parsing`). A
/// descriptor claiming a huge size is then a size mismatch, not an allocation of that size.
#[test]
fn metadata_limit_of_u64_max_is_no_limit() {
    const MAX: &str = "18446744073709551615";
    let tmp = tempdir();
    let img = tmp.path().join("img");
    let mut l = Layout::new(&img);
    let m = l.image(&[Layer::new(&[file("a", b"1")])], false);
    l.add(m.clone(), Some("latest"), None);
    let archive = tmp.path().join("img.tar");
    archive_of(&img, &archive);
    let repo = Repo::new();
    let first = repo.ok(&[
        "--max-metadata-size",
        MAX,
        "import",
        &Repo::oci(&img, "latest"),
        "dir",
    ]);
    let oci_archive = format!("oci-archive:{}:latest", archive.display());
    let r = repo.ok(&[
        "--max-metadata-size",
        MAX,
        "import",
        &oci_archive,
        "archive",
    ]);
    assert_eq!(r.commit(), first.commit());
    let docker = tmp.path().join("docker.tar");
    repo.ok(&[
        "export",
        "dir",
        &format!("docker-archive:{}", docker.display()),
    ]);
    repo.ok(&[
        "--max-metadata-size",
        MAX,
        "import",
        &format!("docker-archive:{}", docker.display()),
        "docker",
    ]);
    assert_eq!(repo.ok(&["cat", "docker", "/a"]).stdout, "1");
    // a manifest descriptor that claims 2^62 bytes
    let mut huge = m;
    huge["size"] = json!(1u64 << 62);
    l.add(huge, Some("huge"), None);
    let snap = repo.snapshot();
    let err = repo.fails(&[
        "--max-metadata-size",
        MAX,
        "import",
        &Repo::oci(&img, "huge"),
        "h",
    ]);
    assert!(err.contains("size mismatch"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// The descriptor of an index listing `entries`, each with `ref_name` (when given) as its tag
/// annotation: `[(descriptor, tag)]`.
fn index_of(l: &Layout, entries: Vec<(serde_json::Value, Option<String>)>) -> serde_json::Value {
    l.nested_index(
        entries
            .into_iter()
            .map(|(mut d, tag)| {
                if let Some(t) = tag {
                    d["annotations"] = json!({"org.opencontainers.image.ref.name": t});
                }
                d
            })
            .collect(),
    )
}

/// One image for linux/amd64, as an index entry with its platform.
fn amd64_image(l: &Layout) -> serde_json::Value {
    let mut m = l.image(&[Layer::new(&[file("a", b"1")])], false);
    m["platform"] = platform_json("linux/amd64");
    m
}

/// Nested indexes that each list the next level 10 times, 6 levels deep (a 25 KB layout, a
/// DAG with a million paths): each index is followed once, so the import takes flat memory
/// and little time, and a search for a digest it does not hold ends at once. Every path was
/// followed before: 895 MB of RSS and 20 s (7 levels: an allocation failure, SIGABRT), and
/// 15 s for the search.
#[test]
fn index_fanout_is_followed_once_per_index() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    let mut l = Layout::new(&img);
    let mut desc = amd64_image(&l);
    for _ in 0..6 {
        desc = index_of(&l, vec![(desc, None); 10]);
    }
    l.add(desc, Some("latest"), None);
    let repo = Repo::new();
    let start = std::time::Instant::now();
    flat(&repo, &["import", &Repo::oci(&img, "latest"), "fan"], 0);
    assert_eq!(repo.ok(&["cat", "fan", "/a"]).stdout, "1");
    let snap = repo.snapshot();
    let absent = format!("sha256:{}", "0".repeat(64));
    let err = repo.fails(&[
        "import",
        &format!("oci:{}@{absent}", img.display()),
        "absent",
    ]);
    assert!(err.contains(&absent) && err.contains("not found"), "{err}");
    snap.assert_unchanged(&repo.path);
    let took = start.elapsed();
    assert!(took.as_secs() < 10, "took {took:?}");
}

/// An index listing the next one 400 times under 400 tags, which lists one image 400 times:
/// small (160 KB), but 160,000 candidates to weigh, each tag being its own. Over the 100,000
/// entries a resolution reads in all: a clear error naming the image and the limit, at once,
/// and the repository unchanged. It used to be walked whole.
#[test]
fn index_entries_over_the_limit_are_refused() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    let mut l = Layout::new(&img);
    let image = amd64_image(&l);
    let inner = index_of(&l, vec![(image, None); 400]);
    let outer = index_of(
        &l,
        (0..400)
            .map(|i| (inner.clone(), Some(format!("t{i}"))))
            .collect(),
    );
    l.add(outer, Some("latest"), None);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = Repo::oci(&img, "latest");
    let start = std::time::Instant::now();
    let err = repo.fails(&["import", &src, "many"]);
    assert!(
        err.contains(&src) && err.contains("more than 100000 entries"),
        "{err}"
    );
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
    snap.assert_unchanged(&repo.path);
}

/// Distinct child indexes, each near the metadata limit: the indexes read to choose one
/// manifest are bounded in bytes too, at 8 times the metadata limit (here 64 KiB, so 512
/// KiB; 64 MiB by default), a clear error saying how to raise it. A registry can serve such
/// indexes without end. Raising the limit imports the same image.
#[test]
fn index_bytes_over_the_limit_are_refused() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    let mut l = Layout::new(&img);
    let image = amd64_image(&l);
    let kids: Vec<(serde_json::Value, Option<String>)> = (0..12)
        .map(|i| {
            let idx = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [image],
                "annotations": {"pad": format!("{i}{}", "x".repeat(60_000))},
            });
            let (d, s) = l.put(&serde_json::to_vec(&idx).unwrap());
            let desc = json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s});
            (desc, None)
        })
        .collect();
    let top = index_of(&l, kids);
    l.add(top, Some("latest"), None);
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = Repo::oci(&img, "latest");
    let err = repo.fails(&["--max-metadata-size", "65536", "import", &src, "wide"]);
    assert!(
        err.contains(&src)
            && err.contains("more than 524288 bytes")
            && err.contains("--max-metadata-size"),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
    repo.ok(&["--max-metadata-size", "131072", "import", &src, "wide"]);
    assert_eq!(repo.ok(&["cat", "wide", "/a"]).stdout, "1");
}

/// PUTs `doc` (an index) to the registry as `REPO:reference` with curl.
fn put_index(reg: &registry::Registry, repo: &str, reference: &str, doc: &[u8], tmp: &Path) {
    tools::require("curl");
    let file = tmp.join("doc.json");
    std::fs::write(&file, doc).unwrap();
    let out = tools::run(
        Command::new("curl")
            .args(["-sS", "--fail-with-body", "-X", "PUT", "-H"])
            .arg("Content-Type: application/vnd.oci.image.index.v1+json")
            .arg("--data-binary")
            .arg(format!("@{}", file.display()))
            .arg(format!(
                "http://{}/v2/{repo}/manifests/{reference}",
                reg.host()
            )),
    );
    assert!(out.status.success(), "{out:?}");
}

/// A registry serving an index of 18 distinct child indexes of nearly 4 MiB each (its own
/// largest manifest), all leading to one image: 70 MB of indexes to choose one manifest, over
/// the 64 MiB read while choosing (a registry can serve any number of them). A clear error,
/// in flat memory: the manifests fetched are no longer all kept (they were, 70 MB and more),
/// and the repository unchanged.
#[test]
fn registry_serving_many_large_indexes_is_refused_in_flat_memory() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    Layout::single(&img, &[Layer::new(&[file("a", b"1")])]);
    let reg = registry::Registry::start();
    reg.skopeo_push(&img, "latest", "r", None);
    let index = read::json(&img.join("index.json"));
    let mut image = index["manifests"][0].clone();
    image["annotations"] = json!({});
    image["platform"] = platform_json("linux/amd64");
    let kids: Vec<serde_json::Value> = (0..18)
        .map(|i| {
            let doc = serde_json::to_vec(&json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [image],
                "annotations": {"pad": format!("{i}{}", "x".repeat(3_900_000))},
            }))
            .unwrap();
            let digest = sha256(&doc);
            put_index(&reg, "r", &digest, &doc, tmp.path());
            json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": doc.len()})
        })
        .collect();
    let top = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": kids,
    }))
    .unwrap();
    put_index(&reg, "r", "wide", &top, tmp.path());
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = format!("{}:wide", reg.url("r"));
    let r = flat(&repo, &["import", "--tls-verify=false", &src, "wide"], 2);
    assert!(
        r.stderr.contains(&src)
            && r.stderr.contains("more than 67108864 bytes")
            && r.stderr.contains("--max-metadata-size"),
        "{}",
        r.stderr
    );
    snap.assert_unchanged(&repo.path);
}

/// A layer path of a megabyte (a PAX `path` record) holding a NUL byte is refused with an
/// error that quotes its first bytes and says how long it is: the whole path used to be
/// quoted, a megabyte of message.
#[test]
fn megabyte_path_is_cut_in_the_error() {
    let tmp = tempdir();
    let mut long = b"a\0".to_vec();
    long.resize(1_000_002, b'b');
    let layer = Layer::new(&[
        file("ok", b"1"),
        E::RawFile {
            path: long,
            data: b"x".to_vec(),
        },
    ]);
    let img = tmp.path().join("img");
    Layout::single(&img, std::slice::from_ref(&layer));
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &Repo::oci(&img, "latest"), "p"]);
    assert!(
        err.contains(&sha256(&layer.blob))
            && err.contains(r#"entry "a\0bbb"#)
            && err.contains("… (1000002 bytes)")
            && err.contains("NUL byte"),
        "{err}"
    );
    assert!(err.len() < 2000, "{} bytes of error", err.len());
    snap.assert_unchanged(&repo.path);
}

/// Writes to `out` an archive whose first member comes with an extension record (`kind`: a
/// GNU long name `L`, or PAX `x`) of `size` bytes of zeros (a hole: the file takes no disk
/// space), followed by a junk member it applies to, then the members of `rest` (a tar).
fn archive_with_huge_record(out: &Path, kind: tar::EntryType, size: u64, rest: &[u8]) {
    let mut f = std::fs::File::create(out).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("././@LongLink").unwrap();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_cksum();
    f.write_all(h.as_bytes()).unwrap();
    f.set_len(512 + size.div_ceil(512) * 512).unwrap();
    use std::io::Seek as _;
    f.seek(std::io::SeekFrom::End(0)).unwrap();
    f.write_all(&tar_of(&[file("junk", b"j")])[..1024]).unwrap();
    f.write_all(rest).unwrap();
}

/// The outer tar of an oci-archive or a docker-archive with a GNU long-name or PAX record of
/// 256 MiB is refused before the record is read, in flat memory, naming the archive and the
/// record's offset: such records used to be read whole (9 GB of memory and a 200 MB error
/// for 1.5 GB of zeros). A record under the 1 MiB cap still imports.
#[test]
fn huge_extension_record_in_an_archive_is_refused_unread() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    Layout::single(&img, &[Layer::new(&[file("a", b"1")])]);
    let layout_tar = tmp.path().join("layout.tar");
    archive_of(&img, &layout_tar);
    let layout_tar = std::fs::read(&layout_tar).unwrap();
    let repo = Repo::new();
    repo.import(&Repo::oci(&img, "latest"), "dir");
    let docker_tar = tmp.path().join("docker.tar");
    repo.ok(&[
        "export",
        "dir",
        &format!("docker-archive:{}", docker_tar.display()),
    ]);
    let docker_tar = std::fs::read(&docker_tar).unwrap();
    let snap = repo.snapshot();
    for (kind, format, rest) in [
        (tar::EntryType::GNULongName, "oci-archive", &layout_tar),
        (tar::EntryType::XHeader, "oci-archive", &layout_tar),
        (tar::EntryType::GNULongName, "docker-archive", &docker_tar),
        (tar::EntryType::GNULongLink, "docker-archive", &docker_tar),
    ] {
        let archive = tmp.path().join("huge.tar");
        archive_with_huge_record(&archive, kind, 256 << 20, rest);
        let name = format!("{format}:{}", archive.display());
        let (r, kib) = measured(&repo, &["import", &name, "x"]);
        assert_eq!(r.code, 2, "{kind:?} {format}: {r:?}");
        assert!(
            r.stderr.contains(&format!("{name}: not a readable tar: tar entry at offset 0: more than 1048576 bytes of headers, PAX or GNU long-name records")),
            "{kind:?} {format}: {}",
            &r.stderr[..r.stderr.len().min(2000)]
        );
        assert!(r.stderr.len() < 2000, "{} bytes of error", r.stderr.len());
        assert!(kib < FLAT_KIB, "{kind:?} {format}: peak RSS {kib} KiB");
        snap.assert_unchanged(&repo.path);
    }
    // a 900 KiB PAX record (a comment) before the members is under the cap
    let archive = tmp.path().join("big-comment.tar");
    let mut data = Vec::new();
    {
        let mut b = tar::Builder::new(&mut data);
        b.append_pax_extensions([("comment", &vec![b'c'; 900 << 10][..])])
            .unwrap();
        b.finish().unwrap();
    }
    data.truncate(data.len() - 1024);
    data.extend_from_slice(&layout_tar);
    std::fs::write(&archive, data).unwrap();
    let r = repo.import(&format!("oci-archive:{}:latest", archive.display()), "c");
    assert_eq!(r.layers(), (0, 1));
}

/// A docker-archive layer member that is compressed (hashed at open) and that manifest.json
/// names many times is hashed once: 32 references cost about what one does. It used to be
/// hashed once per reference, before anything was verified (100 references to 100 MiB took
/// 8 s; a sparse member and 100k references, days).
#[test]
fn docker_archive_layer_named_many_times_is_hashed_once() {
    let tmp = tempdir();
    let make = |n: usize| {
        let out = tmp.path().join(format!("refs{n}.tar"));
        let diff_id = sha256(b"x");
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": vec![diff_id; n]},
        });
        let manifest =
            json!([{"Config": "c.json", "RepoTags": ["t:1"], "Layers": vec!["l.tar.gz"; n]}]);
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("manifest.json", serde_json::to_vec(&manifest).unwrap()),
            ("c.json", serde_json::to_vec(&config).unwrap()),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        // a 64 MiB member starting with the gzip magic, the rest a hole
        let size: u64 = 64 << 20;
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_path("l.tar.gz").unwrap();
        h.set_cksum();
        let mut f = std::fs::File::create(&out).unwrap();
        let head = b.into_inner().unwrap();
        // without its end-of-archive blocks
        f.write_all(&head[..head.len() - 1024]).unwrap();
        f.write_all(h.as_bytes()).unwrap();
        f.write_all(b"\x1f\x8b\x08\x00").unwrap();
        let end = f.metadata().unwrap().len() - 4 + size + 1024;
        f.set_len(end).unwrap();
        out
    };
    let repo = Repo::new();
    let snap = repo.snapshot();
    let timed = |archive: &Path| {
        let start = std::time::Instant::now();
        let err = repo.fails(&[
            "import",
            &format!("docker-archive:{}:t:1", archive.display()),
            "x",
        ]);
        assert!(err.contains("decompressing blob"), "{err}");
        start.elapsed()
    };
    let one = timed(&make(1));
    let many = timed(&make(32));
    assert!(
        many < one * 4 + std::time::Duration::from_secs(2),
        "32 references took {many:?}, one {one:?}"
    );
    snap.assert_unchanged(&repo.path);
}
