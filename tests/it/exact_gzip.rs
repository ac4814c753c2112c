//! Exact gzip (feature `exact-gzip`): gzip layers come back with their original bytes, so blob
//! and manifest digests stay; layers preflate-rs cannot rebuild are re-compressed, with the same
//! diff_ids, and the output says which digests changed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::*;

/// A few MiB of tar: text-like files (several 1 MiB analysis pieces), a binary one, small ones.
fn tar_data(seed: u32, files: usize) -> Vec<u8> {
    let mut x = seed * 2 + 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let words = [
        "layer", "commit", "ostree", "manifest", "digest", "gzip", "the", "a", "of", "tar\n",
    ];
    let mut entries = vec![dir("usr"), dir("usr/share")];
    for f in 0..files {
        let text: String = (0..40_000)
            .map(|_| words[(rnd() % 10) as usize])
            .collect::<Vec<_>>()
            .join(" ");
        entries.push(file(&format!("usr/share/doc{f}.txt"), text.as_bytes()));
    }
    let bin: Vec<u8> = (0..300_000).map(|_| (rnd() % 7) as u8).collect();
    entries.push(file("usr/lib.so", &bin));
    entries.push(file("etc-small", b"small"));
    tar_of(&entries)
}

/// A tar of `n` small files of random letters: mostly headers and padding.
fn small_files_tar(seed: u32, n: usize) -> Vec<u8> {
    let mut x = seed * 2 + 1;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let entries: Vec<E> = (0..n)
        .map(|i| {
            let n = rnd() % 300;
            let data: Vec<u8> = (0..n).map(|_| b'a' + (rnd() % 26) as u8).collect();
            file(&format!("f{i}"), &data)
        })
        .collect();
    tar_of(&entries)
}

/// `cmd` with `data` on standard input; its standard output.
fn pipe(cmd: &[&str], data: &[u8]) -> Vec<u8> {
    tools::require(cmd[0]);
    let mut child = Command::new(cmd[0])
        .args(&cmd[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    out.stdout
}

fn gzip_layer(tar: Vec<u8>, cmd: &[&str]) -> Layer {
    let mut l = Layer::with(tar, Comp::None, false);
    l.blob = pipe(cmd, &l.tar);
    l.media_type = "application/vnd.oci.image.layer.v1.tar+gzip".into();
    l
}

/// The manifest digest and layer digests tagged `tag` in an OCI layout.
/// Writes `layers` as an image at `dir`, imports it and checks the `Exact:` line starts with
/// `kept` ("K of N"); returns (manifest digest, layer digests, repo, import output).
fn import_expecting(dir: &Path, layers: &[Layer], kept: &str) -> (String, Vec<String>, Repo, Run) {
    Layout::single(dir, layers);
    let (manifest, blobs) = digests(dir, "latest");
    let repo = Repo::new();
    let r = repo.import(&Repo::oci(dir, "latest"), "img");
    assert!(
        r.field("Exact")
            .starts_with(&format!("{kept} gzip layers can be exported bit for bit")),
        "{r:?}"
    );
    (manifest, blobs, repo, r)
}

fn digests(layout: &Path, tag: &str) -> (String, Vec<String>) {
    let (manifest, digest) = crate::util::read::manifest_of(layout, tag);
    let layers = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    (digest, layers)
}

/// Every exported blob hashes to its name, and decompresses to the original diff_id.
fn assert_diff_ids(out: &Path, layers: &[Layer]) {
    let (_, digests) = digests(out, "exported");
    for (d, l) in digests.iter().zip(layers) {
        let blob = std::fs::read(out.join("blobs/sha256").join(&d[7..])).unwrap();
        assert_eq!(&sha256(&blob), d, "blob file name");
        let mut tar = Vec::new();
        std::io::Read::read_to_end(
            &mut ocitree::decompress::decompress(&blob[..]).unwrap(),
            &mut tar,
        )
        .unwrap();
        assert_eq!(sha256(&tar), sha256(&l.tar), "diff_id of {d}");
    }
}

fn export(repo: &Repo, dest: &Path) -> Run {
    export_named(repo, "img", dest)
}

fn export_named(repo: &Repo, name: &str, dest: &Path) -> Run {
    repo.ok(&["export", name, &format!("oci:{}:exported", dest.display())])
}

/// gzip -6, gzip -1, pigz and flate2 (zlib-rs, default level) layers keep their bytes: the
/// export has the original manifest digest, in a layout and in an archive.
#[test]
fn zlib_made_layers_keep_their_digests() {
    tools::require("pigz");
    let layers = vec![
        gzip_layer(tar_data(1, 24), &["gzip", "-6", "-n"]),
        gzip_layer(tar_data(2, 24), &["gzip", "-1"]),
        gzip_layer(tar_data(3, 24), &["pigz", "-6", "-p", "2"]),
        Layer::with(tar_data(4, 24), Comp::Gzip, false),
        Layer::with(tar_data(5, 24), Comp::GzipMulti, false),
        Layer::with(tar_of(&[file("tiny", b"x")]), Comp::Gzip, false),
    ];
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let (manifest, blobs, repo, _) = import_expecting(&dir, &layers, "6 of 6");
    let out = tmp.path().join("out");
    let e = export(&repo, &out);
    assert!(e.stdout.contains("manifest digest unchanged"), "{e:?}");
    assert!(
        e.stdout
            .contains("6 kept their blob digest, 0 recompressed"),
        "{e:?}"
    );
    assert_eq!(e.field("Manifest"), manifest);
    let (m2, blobs2) = digests(&out, "exported");
    assert_eq!((m2, blobs2), (manifest.clone(), blobs));
    assert_diff_ids(&out, &layers);
    // the archive holds the same manifest
    let archive = tmp.path().join("img.tar");
    let a = repo.ok(&[
        "export",
        "img",
        &format!("oci-archive:{}", archive.display()),
    ]);
    assert_eq!(a.field("Manifest"), manifest);
    // --compression asks for new blobs: no exact rebuild
    let e = repo.ok(&[
        "export",
        "img",
        &format!("oci:{}:zstd", tmp.path().join("out-zstd").display()),
        "--compression",
        "zstd",
    ]);
    assert!(e.stdout.contains("--compression asked for it"), "{e:?}");
    // and without the analysis, the same image is re-compressed
    let plain = Repo::new();
    let r = plain.ok(&[
        "import",
        "--no-exact-gzip",
        &Repo::oci(&dir, "latest"),
        "img",
    ]);
    assert!(!r.stdout.contains("Exact:"), "{r:?}");
    let e = export(&plain, &tmp.path().join("out2"));
    assert!(e.stdout.contains("no exact-gzip data"), "{e:?}");
    assert!(e.stdout.contains("manifest digest changed"), "{e:?}");
}

/// Layers preflate-rs cannot rebuild (Go's pgzip via umoci, zopfli via pigz -11, gzip -9) import
/// with a note, export re-compressed with the same diff_ids, and the output names them.
#[test]
fn unreproducible_layers_are_recompressed_and_reported() {
    // umoci (Go) layers: a layer that is kept must keep its digest, the others are reported
    let imgs = wild_images();
    let repo = Repo::new();
    let r = repo.import(&Repo::oci(&imgs.join("small"), "latest"), "img");
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let e = export(&repo, &out);
    let (_, orig) = digests(&imgs.join("small"), "latest");
    let (_, new) = digests(&out, "exported");
    for (o, n) in orig.iter().zip(&new) {
        let line = e.stdout.lines().find(|l| l.contains(o.as_str())).unwrap();
        if o == n {
            assert!(line.contains("kept"), "{line}");
        } else {
            assert!(line.contains(&format!("changed  {o} -> {n}")), "{line}");
            assert!(r.stderr.contains(&format!("note: layer {o}")), "{r:?}");
        }
    }
    // zopfli (pigz -11) and gzip -9 of more than 256 KiB (refused: too costly, often fails)
    let layers = vec![
        gzip_layer(small_files_tar(7, 300), &["pigz", "-11"]),
        gzip_layer(small_files_tar(9, 5000), &["gzip", "-9"]),
        gzip_layer(tar_data(8, 24), &["gzip", "-6"]),
    ];
    let dir = tmp.path().join("img9");
    let (manifest, blobs, repo, r) = import_expecting(&dir, &layers, "1 of 3");
    for b in &blobs[..2] {
        assert!(r.stderr.contains(&format!("note: layer {b}")), "{r:?}");
    }
    assert!(
        r.stderr.contains("max_chain"),
        "gzip -9 is refused for its chain: {r:?}"
    );
    let out = tmp.path().join("out9");
    let e = export(&repo, &out);
    assert_ne!(e.field("Manifest"), manifest);
    assert!(e.stdout.contains("manifest digest changed"), "{e:?}");
    for b in &blobs[..2] {
        assert!(e.stdout.contains(&format!("changed  {b}")), "{e:?}");
    }
    assert!(
        e.stdout
            .contains(&format!("kept     {} (exact gzip rebuild)", blobs[2])),
        "{e:?}"
    );
    assert_diff_ids(&out, &layers);
    // the same tar compressed otherwise is found by diff_id: the data rebuilds the other blob
    let again = vec![gzip_layer(layers[2].tar.clone(), &["gzip", "-1"])];
    let dir = tmp.path().join("again");
    Layout::single(&dir, &again);
    assert_eq!(
        repo.import(&Repo::oci(&dir, "latest"), "again").layers(),
        (0, 1)
    );
    let out = tmp.path().join("out-again");
    let e = export_named(&repo, "again", &out);
    assert!(e.stdout.contains("imported from another blob"), "{e:?}");
    assert_diff_ids(&out, &again);
}

/// A layer stored under other layer rules is read again by the next import that meets it,
/// keeping the exact-gzip records its stored commit had even under `--no-exact-gzip`: the
/// image stored before still exports with its manifest digest.
#[test]
fn a_layer_read_again_keeps_its_exact_gzip_records() {
    let layers = vec![gzip_layer(tar_data(7, 8), &["gzip", "-6", "-n"])];
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let (manifest, blobs, repo, _) = import_expecting(&dir, &layers, "1 of 1");
    let blob_ref = format!("ocitree/blob/sha256/{}", &blobs[0][7..]);
    let good = tools::ostree(&repo.path, &["rev-parse", &blob_ref]);
    // What an earlier build left: records kept, no rules version.
    tools::ostree(
        &repo.path,
        &[
            "commit",
            "--branch",
            &blob_ref,
            &format!("--tree=ref={good}"),
            "--add-metadata=ocitree.layer.exact-gzip=[byte 0x01]",
        ],
    );
    let r = repo.ok(&[
        "import",
        "--no-exact-gzip",
        &Repo::oci(&dir, "latest"),
        "other",
    ]);
    assert_eq!(r.layers(), (1, 0), "{r:?}");
    assert_eq!(
        tools::ostree(&repo.path, &["rev-parse", &blob_ref]),
        good,
        "the layer commit an exact import makes"
    );
    let out = tmp.path().join("out");
    let e = export(&repo, &out);
    assert!(e.stdout.contains("manifest digest unchanged"), "{e:?}");
    assert_eq!(digests(&out, "exported").0, manifest);
}
