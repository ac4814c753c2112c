//! Bad input: exit code 2, an error naming the image and layer (and path), and a repository
//! exactly as before — no new refs, no new objects, `ostree fsck` clean.

use serde_json::json;

use crate::util::*;

/// Writes a one-layer image whose layer is `blob` as given, with descriptor `size` and
/// config `diff_id` as given; returns (layout dir, layer digest).
fn raw_image(
    tmp: &tempfile::TempDir,
    blob: &[u8],
    size: Option<u64>,
    diff_id: &str,
) -> (std::path::PathBuf, String) {
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let (ld, ls) = l.put(blob);
    let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff_id]}});
    let (cd, cs) = l.put(&serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": size.unwrap_or(ls)}],
    });
    let (md, ms) = l.put(&serde_json::to_vec(&manifest).unwrap());
    l.add(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}), Some("latest"), None);
    (dir, ld)
}

/// Imports a good image first (so "unchanged" is checked against a non-empty repo), then the
/// bad one; returns stderr after checking exit code, names and the unchanged repo.
fn rejects(dir: &std::path::Path, layer: &str, expect: &[&str]) -> String {
    let repo = Repo::new();
    let good = tempdir();
    Layout::single(
        &good.path().join("img"),
        &[Layer::new(&[file("ok", b"ok")])],
    );
    repo.import(&Repo::oci(&good.path().join("img"), "latest"), "good");
    let snap = repo.snapshot();
    let src = Repo::oci(dir, "latest");
    let err = repo.fails(&["import", &src, "bad"]);
    assert!(
        err.contains(&format!("image {src}")),
        "names the image: {err}"
    );
    assert!(
        err.contains(&format!("layer {layer}")),
        "names the layer: {err}"
    );
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
    snap.assert_unchanged(&repo.path);
    err
}

fn tar_entries() -> Vec<u8> {
    tar_of(&[dir("d"), file("d/a", &[7u8; 3000]), file("d/b", b"bee")])
}

#[test]
fn wrong_blob_digest() {
    let tar = tar_entries();
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &tar, None, &sha256(&tar));
    // same size, one byte of file data changed: the tar still parses, only the digest is off
    let mut bad = tar.clone();
    bad[512 * 2 + 10] ^= 1;
    std::fs::write(
        dir.join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
        &bad,
    )
    .unwrap();
    rejects(&dir, &layer, &["digest mismatch"]);
}

#[test]
fn wrong_size() {
    let blob = compress(&tar_entries(), Comp::Gzip);
    let tmp = tempdir();
    let (dir, layer) = raw_image(
        &tmp,
        &blob,
        Some(blob.len() as u64 + 1),
        &sha256(&tar_entries()),
    );
    rejects(&dir, &layer, &["size mismatch"]);
    let tmp = tempdir();
    let (dir, layer) = raw_image(
        &tmp,
        &blob,
        Some(blob.len() as u64 - 1),
        &sha256(&tar_entries()),
    );
    rejects(&dir, &layer, &["size mismatch"]);
}

/// The largest size a descriptor can say, after another layer: once overflowed the count of
/// bytes to read and panicked (found by fuzz::mutated_registry_responses_fail_cleanly); now a
/// size mismatch like any other.
#[test]
fn huge_layer_sizes_are_a_size_mismatch() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let tar = tar_entries();
    let blob = compress(&tar, Comp::Gzip);
    let (ld, ls) = l.put(&blob);
    let (ld2, _) = l.put(&tar);
    let config = json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&tar), sha256(&tar)]}});
    let (cd, cs) = l.put(&serde_json::to_vec(&config).unwrap());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": ld2, "size": u64::MAX},
        ],
    });
    let (md, ms) = l.put(&serde_json::to_vec(&manifest).unwrap());
    l.add(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}), Some("latest"), None);
    rejects(&dir, &ld2, &["size mismatch"]);
}

#[test]
fn wrong_diff_id() {
    let blob = compress(&tar_entries(), Comp::Gzip);
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &blob, None, &sha256(b"something else"));
    rejects(&dir, &layer, &["diff_id mismatch"]);

    // The same blob stored already (by an image with the right diff_id) is not read again,
    // but the config's diff_id is still checked against the one stored with it.
    let repo = Repo::new();
    let good_tmp = tempdir();
    let (good, _) = raw_image(&good_tmp, &blob, None, &sha256(&tar_entries()));
    repo.import(&Repo::oci(&good, "latest"), "good");
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &Repo::oci(&dir, "latest"), "bad"]);
    assert!(
        err.contains("diff_id mismatch") && err.contains(&format!("layer {layer}")),
        "{err}"
    );
    snap.assert_unchanged(&repo.path);
}

#[test]
fn truncated_gzip() {
    let blob = compress(&tar_entries(), Comp::Gzip);
    let cut = &blob[..blob.len() / 2];
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, cut, None, &sha256(&tar_entries()));
    rejects(&dir, &layer, &["decompressing blob"]);
}

#[test]
fn corrupt_tar_header() {
    let mut tar = tar_entries();
    tar[512 + 148] = b'9'; // checksum field of the second header
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    rejects(&dir, &layer, &["cksum", "d/a"]);
}

#[test]
fn path_traversal() {
    for (entries, needle) in [
        (vec![file("../x", b"x")], "../x"),
        (vec![dir("a"), file("a/../../x", b"x")], "a/../../x"),
        (
            vec![file("a", b"a"), hardlink("b", "../../etc/passwd")],
            "escapes the root",
        ),
    ] {
        let tar = tar_of(&entries);
        let tmp = tempdir();
        let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
        rejects(&dir, &layer, &[needle]);
    }
}

#[test]
fn non_utf8_name() {
    let tar = tar_of(&[E::RawFile {
        path: b"caf\xe9".to_vec(),
        data: b"x".to_vec(),
    }]);
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    rejects(&dir, &layer, &["not UTF-8", "caf\\xe9"]);
}

#[test]
fn non_utf8_symlink_target() {
    let mut h = tar::Header::new_ustar();
    h.set_path("l").unwrap();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_link_name_literal(b"caf\xe9").unwrap();
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, std::io::empty()).unwrap();
    let tar = b.into_inner().unwrap();
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    rejects(
        &dir,
        &layer,
        &["\"l\": symlink target is not UTF-8", "caf\\xe9"],
    );
}

#[test]
fn hardlink_to_nothing() {
    let tar = tar_of(&[hardlink("b", "nowhere")]);
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    rejects(&dir, &layer, &["\"nowhere\"", "does not exist"]);
}

/// A hardlink to a lower file that the same layer's whiteout (or opaque marker) removes is
/// refused, saying so (markers apply before the layer's entries, in either tar order).
#[test]
fn hardlink_to_a_file_the_layer_whites_out() {
    let tmp = tempdir();
    let lower = Layer::new(&[file("a", b"A"), dir("d"), file("d/f", b"F")]);
    for (i, upper) in [
        vec![hardlink("b", "a"), whiteout("a")],
        vec![whiteout("a"), hardlink("b", "a")],
        vec![opaque("d"), hardlink("g", "d/f")],
    ]
    .into_iter()
    .enumerate()
    {
        let img = tmp.path().join(format!("img{i}"));
        Layout::single(&img, &[lower.clone(), Layer::new(&upper)]);
        let repo = Repo::new();
        let snap = repo.snapshot();
        let err = repo.fails(&["import", &Repo::oci(&img, "latest"), "x"]);
        assert!(err.contains("removed by a whiteout of this layer"), "{err}");
        snap.assert_unchanged(&repo.path);
    }
}

#[test]
fn missing_blob_and_bad_digest_string() {
    let tar = tar_entries();
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    std::fs::remove_file(
        dir.join("blobs/sha256")
            .join(layer.trim_start_matches("sha256:")),
    )
    .unwrap();
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &Repo::oci(&dir, "latest"), "x"]);
    assert!(err.contains(&layer) && err.contains("not found"), "{err}");
    snap.assert_unchanged(&repo.path);
    // a digest is never a path
    let mut idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    idx["manifests"][0]["digest"] = json!("sha256:../../../../etc/passwd");
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    let err = repo.fails(&["import", &Repo::oci(&dir, "latest"), "x"]);
    assert!(err.contains("invalid digest"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// A name whose escaped ref would not fit in a file name is refused before anything is
/// written (it used to fail only when the transaction committed the ref); 255 bytes fit.
#[test]
fn too_long_image_name_is_refused_up_front() {
    let tmp = tempdir();
    Layout::single(&tmp.path().join("img"), &[Layer::new(&[file("a", b"a")])]);
    let src = Repo::oci(&tmp.path().join("img"), "latest");
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&["import", &src, &"x".repeat(256)]);
    assert!(
        err.contains("invalid image name") && err.contains("too long") && err.contains("256 bytes"),
        "{err}"
    );
    // ':' escapes to 3 bytes: 85 of them make 255
    let err = repo.fails(&["import", &src, &":".repeat(86)]);
    assert!(err.contains("258 bytes"), "{err}");
    snap.assert_unchanged(&repo.path);
    let longest = ":".repeat(85);
    repo.import(&src, &longest);
    assert_eq!(repo.ok(&["cat", &longest, "/a"]).stdout, "a");
}

/// An empty or blank image name is refused (it used to become `ocitree/image/_`, a blank line
/// in `images`).
#[test]
fn empty_image_name_is_refused() {
    let tmp = tempdir();
    Layout::single(&tmp.path().join("img"), &[Layer::new(&[file("a", b"a")])]);
    let src = Repo::oci(&tmp.path().join("img"), "latest");
    let repo = Repo::new();
    let snap = repo.snapshot();
    for name in ["", " ", "\t \n"] {
        let err = repo.fails(&["import", &src, name]);
        assert!(
            err.contains("invalid image name") && err.contains("empty or only whitespace"),
            "{name:?}: {err}"
        );
        let err = repo.fails(&["check", &src, name]);
        assert!(err.contains("invalid image name"), "{name:?}: {err}");
    }
    snap.assert_unchanged(&repo.path);
}

/// `--platform` that is not os/arch[/variant] says so (it used to say "invalid image
/// reference").
#[test]
fn bad_platform_says_what_a_platform_is() {
    let tmp = tempdir();
    Layout::single(&tmp.path().join("img"), &[Layer::new(&[file("a", b"a")])]);
    let src = Repo::oci(&tmp.path().join("img"), "latest");
    let repo = Repo::new();
    for p in ["garbage", "linux/", "/amd64", "a/b/c/d"] {
        let err = repo.fails(&["import", "--platform", p, &src, "x"]);
        assert!(
            err.contains(&format!("invalid platform {p:?}"))
                && err.contains("expected os/arch[/variant]")
                && !err.contains("image reference"),
            "{p}: {err}"
        );
    }
    let err = repo.fails(&[
        "encapsulate",
        "--platform",
        "x",
        "nothing",
        "oci:/nonexistent",
    ]);
    assert!(err.contains("invalid platform \"x\""), "{err}");
}

/// Writes a one-image layout of `layers` (media type, bytes) with `config`; its manifest
/// config media type is `config_type`. Returns the layout dir.
fn image_of(
    tmp: &tempfile::TempDir,
    config_type: &str,
    config: serde_json::Value,
    layers: &[(&str, Vec<u8>)],
) -> std::path::PathBuf {
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let (cd, cs) = l.put(&serde_json::to_vec(&config).unwrap());
    let descs: Vec<_> = layers
        .iter()
        .map(|(mt, b)| {
            let (d, s) = l.put(b);
            json!({"mediaType": mt, "digest": d, "size": s})
        })
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config_type, "digest": cd, "size": cs},
        "layers": descs,
    });
    let (md, ms) = l.put(&serde_json::to_vec(&manifest).unwrap());
    l.add(
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}),
        Some("latest"),
        None,
    );
    dir
}

const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Imports `dir:latest` expecting exit 2, an error naming the image and saying each of
/// `expect`, and the repo unchanged.
fn refused(dir: &std::path::Path, expect: &[&str]) {
    let repo = Repo::new();
    let snap = repo.snapshot();
    let src = Repo::oci(dir, "latest");
    let err = repo.fails(&["import", &src, "x"]);
    assert!(err.contains(&src), "names the image: {err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
    snap.assert_unchanged(&repo.path);
}

/// In a container image (image config), a layer of a media type that is not a filesystem tar
/// is an error naming it (it used to become a file of the tree); selected explicitly with
/// --layer-media-type it is kept as a file.
#[test]
fn unknown_layer_media_type_in_an_image() {
    let tar = tar_of(&[file("a", b"a")]);
    let blob = b"{\"not\": \"a tar\"}".to_vec();
    let config = |ids: Vec<String>| json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ids}});
    for config_type in [OCI_CONFIG, DOCKER_CONFIG] {
        let tmp = tempdir();
        let dir = image_of(
            &tmp,
            config_type,
            config(vec![sha256(&tar), sha256(&blob)]),
            &[
                ("application/vnd.oci.image.layer.v1.tar", tar.clone()),
                ("application/x-mystery", blob.clone()),
            ],
        );
        refused(
            &dir,
            &[
                "\"application/x-mystery\"",
                &sha256(&blob),
                "--layer-media-type application/x-mystery",
            ],
        );
        let repo = Repo::new();
        repo.ok(&[
            "import",
            &Repo::oci(&dir, "latest"),
            "x",
            "--layer-media-type",
            "application/x-mystery",
        ]);
        let name = format!("sha256-{}", sha256(&blob).trim_start_matches("sha256:"));
        assert_eq!(
            repo.ok(&["cat", "x", &format!("/{name}")])
                .stdout
                .as_bytes(),
            &blob[..]
        );
    }
}

/// An encrypted layer (ocicrypt's `+encrypted` media types) is refused by `import` and by
/// `check`, before any blob is read, whatever its bytes look like (a gzip tar under that type
/// is not applied); `--copy TYPE` keeps the blob as a file, byte for byte.
#[test]
fn encrypted_layers_are_refused_unless_copied() {
    const ENCRYPTED: &str = "application/vnd.oci.image.layer.v1.tar+gzip+encrypted";
    let tar = tar_of(&[file("a", b"a")]);
    let ciphertext: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let config = |ids: Vec<String>| json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ids}});
    for blob in [ciphertext, compress(&tar, Comp::Gzip)] {
        let tmp = tempdir();
        let dir = image_of(
            &tmp,
            OCI_CONFIG,
            config(vec![sha256(&tar), sha256(&tar)]),
            &[
                ("application/vnd.oci.image.layer.v1.tar", tar.clone()),
                (ENCRYPTED, blob.clone()),
            ],
        );
        let expect = [
            &sha256(&blob)[..],
            "is encrypted",
            ENCRYPTED,
            "--decryption-key",
        ];
        refused(&dir, &expect);
        let repo = Repo::new();
        let snap = repo.snapshot();
        let err = repo.fails(&["check", &Repo::oci(&dir, "latest")]);
        for e in expect {
            assert!(err.contains(e), "expected {e:?} in: {err}");
        }
        snap.assert_unchanged(&repo.path);
        repo.ok(&[
            "import",
            &Repo::oci(&dir, "latest"),
            "x",
            "--copy",
            &format!("{ENCRYPTED}=layer.enc"),
        ]);
        let cat = repo
            .cmd()
            .args(["cat", "x", "/layer.enc"])
            .output()
            .unwrap();
        assert!(cat.status.success());
        assert_eq!(sha256(&cat.stdout), sha256(&blob), "the file is the blob");
        assert_eq!(repo.ok(&["cat", "x", "/a"]).stdout, "a");
    }
}

/// A Docker schema 1 manifest (no config, no diff_ids; registries still hold old ones) is
/// refused naming what it is and how to convert it, not as a JSON field error.
#[test]
fn schema_1_manifests_are_named() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let (ld, _) = l.put(&compress(&tar_of(&[file("a", b"a")]), Comp::Gzip));
    let manifest = json!({
        "schemaVersion": 1, "name": "library/old", "tag": "latest", "architecture": "amd64",
        "fsLayers": [{"blobSum": ld}], "history": [{"v1Compatibility": "{}"}],
    });
    let (md, ms) = l.put(&serde_json::to_vec(&manifest).unwrap());
    let mt = "application/vnd.docker.distribution.manifest.v1+prettyjws";
    l.add(
        json!({"mediaType": mt, "digest": md, "size": ms}),
        Some("latest"),
        None,
    );
    refused(&dir, &["schema 1", "skopeo copy --format v2s2"]);
}

/// An image config whose rootfs is not what the spec says is refused, naming the image:
/// another rootfs.type, a diff_id count that is not the layer count, a diff_id that is not a
/// digest. An artifact's config that is not an image config needs no rootfs.
#[test]
fn config_rootfs_is_validated() {
    let tar = tar_of(&[file("a", b"a")]);
    let layer = || vec![("application/vnd.oci.image.layer.v1.tar", tar.clone())];
    let id = sha256(&tar);
    for (rootfs, expect) in [
        (
            json!({"type": "tarballs", "diff_ids": [id]}),
            "rootfs.type is \"tarballs\"",
        ),
        (json!({"diff_ids": [id]}), "no rootfs.type"),
        (
            json!({"type": "layers", "diff_ids": [id, id]}),
            "1 layers but the config has 2 diff_ids",
        ),
        (
            json!({"type": "layers", "diff_ids": []}),
            "1 layers but the config has 0 diff_ids",
        ),
        (
            json!({"type": "layers", "diff_ids": ["not-a-digest"]}),
            "diff_ids[0] \"not-a-digest\" is not a digest",
        ),
    ] {
        let tmp = tempdir();
        let config = json!({"architecture": "amd64", "os": "linux", "rootfs": rootfs});
        let dir = image_of(&tmp, OCI_CONFIG, config, &layer());
        refused(&dir, &[expect]);
    }
    // no rootfs at all in an image config
    let tmp = tempdir();
    let dir = image_of(&tmp, OCI_CONFIG, json!({"os": "linux"}), &layer());
    refused(&dir, &["no rootfs.type"]);
    // an artifact config without rootfs: the tar layer is applied, its diff_id computed
    let tmp = tempdir();
    let dir = image_of(
        &tmp,
        "application/vnd.example.config+json",
        json!({}),
        &layer(),
    );
    let repo = Repo::new();
    repo.ok(&["import", &Repo::oci(&dir, "latest"), "x"]);
    assert_eq!(repo.ok(&["cat", "x", "/a"]).stdout, "a");
}

/// A layer that claims to be a tar but holds other bytes (what `oras push FILE` writes, here
/// with terminal escape codes in it): a clean error naming image and layer that quotes none of
/// its bytes. A tar that breaks after its first entry: the bytes the tar reader quotes are
/// escaped and cut, never written to the terminal as they are.
#[test]
fn bytes_quoted_from_a_bad_layer_are_escaped_and_cut() {
    let raw = b"not a tar \x01\x02\x1b[31mRED\n".repeat(100);
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &raw, None, &sha256(&raw));
    let err = rejects(&dir, &layer, &["no tar header", "--copy"]);
    assert!(
        !err.contains("RED") && !err.contains("not a tar"),
        "{err:?}"
    );

    let mut broken = tar_of(&[file("a", b"x")]);
    broken.truncate(broken.len() - 1024);
    broken.extend_from_slice(&raw);
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &broken, None, &sha256(&broken));
    let err = rejects(&dir, &layer, &["when getting cksum"]);
    assert!(!err.contains('\x1b') && !err.contains('\x01'), "{err:?}");
    assert!(err.contains("\\u{1b}"), "escaped: {err}");
    assert!(err.len() < 1000, "cut: {} bytes", err.len());
}

/// An oci-archive cut short, as a file and on standard input, is a "truncated archive" error
/// naming the archive and where it ends (it used to be `blob sha256:… not found`): cut inside
/// a blob's data, the member named; cut between members (no end-of-archive marker), the blob
/// missing from it, with the note that the archive may be truncated.
#[test]
fn truncated_oci_archive_says_so() {
    let tmp = tempdir();
    let img = tmp.path().join("img");
    Layout::single(
        &img,
        &[Layer::new(&[file("big", &[5u8; 100_000]), file("b", b"b")])],
    );
    // packed in a known order: index.json, oci-layout, then the blobs, the largest last
    let mut names: Vec<String> = std::fs::read_dir(img.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("blobs/sha256/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    names.sort_by_key(|n| std::fs::metadata(img.join(n)).unwrap().len());
    let mut b = tar::Builder::new(Vec::new());
    for n in ["index.json", "oci-layout"]
        .into_iter()
        .chain(names.iter().map(|n| n.as_str()))
    {
        b.append_path_with_name(img.join(n), n).unwrap();
    }
    let bytes = b.into_inner().unwrap();
    let member = names.last().unwrap().clone();
    let (header, data, size) = tar::Archive::new(&bytes[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy() == member)
        .map(|e| {
            (
                e.raw_header_position() as usize,
                e.raw_file_position() as usize,
                e.size() as usize,
            )
        })
        .unwrap();
    let last = format!("sha256:{}", member.rsplit('/').next().unwrap());
    let repo = Repo::new();
    let good = tempdir();
    Layout::single(
        &good.path().join("img"),
        &[Layer::new(&[file("ok", b"ok")])],
    );
    repo.import(&Repo::oci(&good.path().join("img"), "latest"), "good");
    let snap = repo.snapshot();
    for (cut, expect) in [
        (
            data + size / 2,
            format!(
                "truncated archive: it ends at byte {}, inside the data of \"{member}\", which runs to byte {}",
                data + size / 2,
                data + size
            ),
        ),
        (
            header,
            format!("truncated archive? it ends at byte {header} with no end-of-archive marker"),
        ),
    ] {
        let cut_file = tmp.path().join("cut.tar");
        std::fs::write(&cut_file, &bytes[..cut]).unwrap();
        let src = format!("oci-archive:{}:latest", cut_file.display());
        let err = repo.fails(&["import", &src, "bad"]);
        assert!(
            err.contains(&format!("oci-archive:{}", cut_file.display())) && err.contains(&expect),
            "expected {expect:?} in: {err}"
        );
        if cut == header {
            assert!(err.contains(&format!("blob {last}")), "{err}");
        }
        let piped = output(
            repo.cmd()
                .args(["import", "oci-archive:-:latest", "bad"])
                .stdin(std::fs::File::open(&cut_file).unwrap())
                .output()
                .unwrap(),
        );
        assert_eq!(piped.code, 2, "{piped:?}");
        assert!(
            piped.stderr.contains("oci-archive:-") && piped.stderr.contains(&expect),
            "expected {expect:?} in: {piped:?}"
        );
        snap.assert_unchanged(&repo.path);
    }
}

/// A blob path that is a directory (the layer's, then the config's) is an error naming the
/// image and the blob, by digest and path (it used to be a bare `Is a directory (os error
/// 21)`); the repository unchanged.
#[test]
fn blob_that_is_a_directory_names_image_and_blob() {
    let tar = tar_entries();
    let tmp = tempdir();
    let (dir, layer) = raw_image(&tmp, &compress(&tar, Comp::Gzip), None, &sha256(&tar));
    let manifest: serde_json::Value = {
        let idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let m = idx["manifests"][0]["digest"].as_str().unwrap().to_string();
        serde_json::from_slice(&std::fs::read(Layout::new(&dir).blob_path(&m)).unwrap()).unwrap()
    };
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    let repo = Repo::new();
    let good = tempdir();
    Layout::single(
        &good.path().join("img"),
        &[Layer::new(&[file("ok", b"ok")])],
    );
    repo.import(&Repo::oci(&good.path().join("img"), "latest"), "good");
    let snap = repo.snapshot();
    for blob in [&layer, &config] {
        let p = dir
            .join("blobs/sha256")
            .join(blob.trim_start_matches("sha256:"));
        let saved = std::fs::read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        let err = repo.fails(&["import", &Repo::oci(&dir, "latest"), "bad"]);
        for e in [
            &format!("oci:{}", dir.display()),
            &format!("blob {blob}"),
            &format!("{} is a directory", p.display()),
        ] {
            assert!(err.contains(e.as_str()), "expected {e:?} in: {err}");
        }
        snap.assert_unchanged(&repo.path);
        std::fs::remove_dir(&p).unwrap();
        std::fs::write(&p, saved).unwrap();
    }
}

/// `{"a": {"a": ... 1 ...}}`, `depth` objects deep, as raw JSON (a `Value` that deep could not
/// even be dropped without a deep recursion).
fn deep_json(depth: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(depth), "}".repeat(depth))
}

/// Imports `dir:latest` expecting a refusal naming the image and `what` (the document, by
/// digest) as too deep to read back; the repo unchanged.
fn refused_as_unreadable(dir: &std::path::Path, what: &str) {
    refused(dir, &[what, "recursion limit exceeded", "read back"]);
}

/// A manifest whose annotations nest 50,000 deep: its typed reading skips over them, so it
/// used to import, and then `inspect` and `export` failed on it ("stored manifest: recursion
/// limit exceeded"). The import refuses it, naming the manifest.
#[test]
fn manifest_nested_too_deep_to_read_back_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let layer = Layer::new(&[file("a", b"1")]);
    let good = l.image(std::slice::from_ref(&layer), false);
    let manifest: serde_json::Value =
        serde_json::from_slice(&read::blob(&dir, good["digest"].as_str().unwrap())).unwrap();
    let text = serde_json::to_string(&manifest).unwrap();
    let deep = format!(
        "{}, \"annotations\": {{\"a\": {}}}}}",
        &text[..text.len() - 1],
        deep_json(50_000)
    );
    let (md, ms) = l.put(deep.as_bytes());
    l.add(
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}),
        Some("latest"),
        None,
    );
    refused_as_unreadable(&dir, &format!("manifest {md}"));
    // nesting the reading commands accept imports, and reads back
    let ok = format!(
        "{}, \"annotations\": {{\"a\": \"{}\"}}, \"x\": {}}}",
        &text[..text.len() - 1],
        "b",
        deep_json(100)
    );
    let (od, os) = l.put(ok.as_bytes());
    l.add(
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": od, "size": os}),
        Some("ok"),
        None,
    );
    let repo = Repo::new();
    repo.import(&Repo::oci(&dir, "ok"), "ok");
    let r = repo.ok(&["inspect", "ok"]);
    assert!(r.stdout.contains(&od), "{r:?}");
}

/// A config with an unknown member nested 100,000 deep: it imported, and `inspect` failed
/// on it. The import refuses it, naming the config.
#[test]
fn config_nested_too_deep_to_read_back_is_refused() {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let mut l = Layout::new(&dir);
    let layer = Layer::new(&[file("a", b"1")]);
    let config = format!(
        r#"{{"architecture": "amd64", "os": "linux", "rootfs": {{"type": "layers", "diff_ids": ["{}"]}}, "x": {}{}}}"#,
        sha256(&layer.tar),
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (cd, cs) = l.put(config.as_bytes());
    let (ld, ls) = l.put(&layer.blob);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": OCI_CONFIG, "digest": cd, "size": cs},
        "layers": [{"mediaType": layer.media_type, "digest": ld, "size": ls}],
    });
    let (md, ms) = l.put(&serde_json::to_vec(&manifest).unwrap());
    l.add(
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms}),
        Some("latest"),
        None,
    );
    refused_as_unreadable(&dir, &format!("config {cd}"));
}

/// Archive members: name and data.
type Members<'a> = Vec<(&'a str, &'a [u8])>;

/// A tar of `members` as given, duplicates included.
fn tar_members(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An archive with two members of one name that the import reads (docker-archive's
/// manifest.json, a layer member; oci-archive's index.json, a blob, also as `./index.json`)
/// is refused, naming the archive and the member: skopeo reads the first manifest.json of a
/// docker-archive (checked here) and the last index.json of an oci-archive, so no choice is
/// safe. ocitree used to take the last one silently: another tree than skopeo's. A
/// duplicate member the import does not read is harmless.
#[test]
fn duplicate_archive_members_are_refused() {
    tools::require("skopeo");
    let tmp = tempdir();
    let repo = Repo::new();
    let snap = repo.snapshot();
    let (la, lb) = (tar_of(&[file("a", b"1")]), tar_of(&[file("b", b"2")]));
    let config = |l: &[u8]| {
        serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(l)]}}))
        .unwrap()
    };
    let manifest = |c: &str, l: &str| {
        serde_json::to_vec(&json!([{"Config": c, "RepoTags": ["t:1"], "Layers": [l]}])).unwrap()
    };
    let (ca, cb) = (config(&la), config(&lb));
    let (ma, mb) = (manifest("a.json", "a.tar"), manifest("b.json", "b.tar"));
    let cases: [(&str, Members); 2] = [
        (
            "manifest.json",
            vec![
                ("manifest.json", &ma),
                ("a.json", &ca),
                ("b.json", &cb),
                ("a.tar", &la),
                ("b.tar", &lb),
                ("manifest.json", &mb),
            ],
        ),
        (
            "a.tar",
            vec![
                ("manifest.json", &ma),
                ("a.json", &ca),
                ("a.tar", &la),
                ("a.tar", &lb),
            ],
        ),
    ];
    for (dup, members) in cases {
        let archive = tmp.path().join("dup-docker.tar");
        std::fs::write(&archive, tar_members(&members)).unwrap();
        let name = format!("docker-archive:{}", archive.display());
        if dup == "manifest.json" {
            let out = tools::run(
                std::process::Command::new("skopeo")
                    .args(["inspect", "--config"])
                    .arg(&name),
            );
            let first = sha256(&la);
            assert!(
                String::from_utf8_lossy(&out.stdout).contains(&first),
                "skopeo reads the first manifest.json: {out:?}"
            );
        }
        let err = repo.fails(&["import", &format!("{name}:t:1"), "x"]);
        assert!(
            err.contains(&format!(
                "{name}: {dup}: the archive has 2 members named \"{dup}\""
            )) && err.contains("refusing an ambiguous archive"),
            "{dup}: {err}"
        );
        snap.assert_unchanged(&repo.path);
    }

    // oci-archive: two images tagged `latest`, index.json naming either
    let img = |n: &str, content: &[u8]| {
        let dir = tmp.path().join(n);
        Layout::single(&dir, &[Layer::new(&[file("which", content)])]);
        dir
    };
    let (a, b) = (img("a", b"A"), img("b", b"B"));
    let read = |p: std::path::PathBuf| std::fs::read(p).unwrap();
    let blobs = |dir: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .map(|p| {
                (
                    format!("blobs/sha256/{}", p.file_name().unwrap().to_str().unwrap()),
                    read(p),
                )
            })
            .collect()
    };
    let (layout, index_a, index_b) = (
        read(a.join("oci-layout")),
        read(a.join("index.json")),
        read(b.join("index.json")),
    );
    let (blobs_a, blobs_b) = (blobs(&a), blobs(&b));
    let a_blob = blobs_a[0].0.clone();
    for (dup, first_index, extra_blob) in [
        ("index.json", "index.json", None),
        ("index.json", "./index.json", None),
        (a_blob.as_str(), "index.json", Some(a_blob.as_str())),
    ] {
        let mut members: Members = vec![("oci-layout", &layout), (first_index, &index_a)];
        for (n, d) in blobs_a.iter().chain(&blobs_b) {
            members.push((n, d));
        }
        if let Some(n) = extra_blob {
            members.push((n, b"not the blob"));
        } else {
            members.push(("index.json", &index_b));
        }
        let archive = tmp.path().join("dup-oci.tar");
        std::fs::write(&archive, tar_members(&members)).unwrap();
        let name = format!("oci-archive:{}", archive.display());
        let err = repo.fails(&["import", &format!("{name}:latest"), "x"]);
        assert!(
            err.contains(&format!("the archive has 2 members named \"{dup}\""))
                && err.contains(&name),
            "{dup}: {err}"
        );
        snap.assert_unchanged(&repo.path);
    }

    // a duplicate that nothing reads
    let mut members: Members = vec![
        ("oci-layout", &layout),
        ("index.json", &index_a),
        ("README", b"1"),
        ("README", b"2"),
    ];
    for (n, d) in &blobs_a {
        members.push((n, d));
    }
    let archive = tmp.path().join("dup-unread.tar");
    std::fs::write(&archive, tar_members(&members)).unwrap();
    let r = repo.import(&format!("oci-archive:{}:latest", archive.display()), "ok");
    assert_eq!(repo.ok(&["cat", "ok", "/which"]).stdout, "A", "{r:?}");
}
