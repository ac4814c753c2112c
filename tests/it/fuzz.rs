//! Whole-image mutation: an image with every kind of entry, one part of it mutated (a layer's
//! tar, a compressed blob, the config, the manifest, index.json, or any file of the layout,
//! with or without the digests fixed up so the mutation reaches the parser behind them), then
//! `ocitree import`. Every outcome must be an import or a clean error (exit 2, an `error:`
//! line, the repo unchanged); never a panic, a hang (60 s timeout) or a crash.
//!
//! Cases: 48 by default; `PROPTEST_CASES=5000 cargo test --test it fuzz::` runs more.

use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::util::mutate::{Edit, apply, fuzz_cases};
use crate::util::*;

/// The seed image's layers: files with xattrs and owners, long (PAX) names, links, a FIFO,
/// whiteouts and an opaque directory; gzip, zstd and uncompressed.
fn seed_layers() -> Vec<(Vec<u8>, Comp)> {
    let long = format!("deep/{}/file", "n".repeat(120));
    let l1 = tar_of(&[
        dir_meta("etc", 0o755, 0, 0, &[("user.d", b"1")]),
        file_xattrs("etc/conf", b"a=1\n", &[("user.x", b"v\n")]),
        file_mode("usr/bin/tool", b"#!/bin/sh\n", 0o4755, 1000, 1000),
        hardlink("usr/bin/link", "usr/bin/tool"),
        symlink("etc/abs", "/etc/conf"),
        symlink(&format!("etc/{}", "s".repeat(110)), &"t/".repeat(60)),
        file(&long, b"long"),
        dir("var/empty"),
        E::Fifo {
            path: "var/fifo".into(),
        },
    ]);
    let l2 = tar_of(&[
        whiteout("etc/conf"),
        opaque("var"),
        file("var/new", b"new"),
        file("usr/bin/tool", b"changed"),
    ]);
    let l3 = tar_of(&[whiteout("deep"), file("etc/conf", b"back")]);
    vec![(l1, Comp::Gzip), (l2, Comp::ZstdMulti), (l3, Comp::None)]
}

/// What to mutate.
#[derive(Clone, Debug)]
enum Target {
    /// A layer's tar, recompressed, blob digest and diff_id fixed.
    Tar(usize, Vec<Edit>),
    /// A layer's compressed blob, blob digest fixed (the diff_id is not).
    Blob(usize, Vec<Edit>),
    /// The config's bytes, its digest fixed.
    Config(Vec<Edit>),
    /// One value of the config, manifest or index replaced, digests fixed.
    Json(u8, usize, Value),
    /// The manifest's bytes, its digest fixed.
    Manifest(Vec<Edit>),
    /// index.json's bytes.
    Index(Vec<Edit>),
    /// Any file of the written layout, nothing fixed (digests must catch it).
    Raw(usize, Vec<Edit>),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    // the same edits as the unit fuzz targets, through their strategy
    crate::util::mutate::edits(1..6)
}

fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(1e300)),
        Just(json!(u64::MAX)),
        Just(json!("")),
        Just(json!("x".repeat(5000))),
        Just(json!([])),
        Just(json!({})),
        Just(json!(true)),
        Just(json!(format!("sha256:{}", "0".repeat(64)))),
        Just(json!("sha512:abc")),
        Just(json!("../../../etc/passwd")),
        Just(json!("nul\u{0}byte")),
        Just(json!("application/vnd.oci.image.index.v1+json")),
        Just(json!([{"digest": "sha256:x", "size": 1}])),
        any::<i64>().prop_map(|n| json!(n)),
        "\\PC{0,20}".prop_map(|s| json!(s)),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        4 => (0..3usize, edits()).prop_map(|(i, e)| Target::Tar(i, e)),
        2 => (0..3usize, edits()).prop_map(|(i, e)| Target::Blob(i, e)),
        1 => edits().prop_map(Target::Config),
        3 => (0..3u8, any::<usize>(), hostile_value()).prop_map(|(d, p, v)| Target::Json(d, p, v)),
        1 => edits().prop_map(Target::Manifest),
        1 => edits().prop_map(Target::Index),
        1 => (any::<usize>(), edits()).prop_map(|(f, e)| Target::Raw(f, e)),
    ]
}

/// Replaces the `n`-th value (depth first, modulo the count) of `doc` with `v`.
fn replace_nth(doc: &mut Value, n: usize, v: Value) {
    fn count(d: &Value) -> usize {
        1 + match d {
            Value::Array(a) => a.iter().map(count).sum(),
            Value::Object(o) => o.values().map(count).sum(),
            _ => 0,
        }
    }
    fn go(d: &mut Value, n: &mut usize, v: &Value) -> bool {
        if *n == 0 {
            *d = v.clone();
            return true;
        }
        *n -= 1;
        match d {
            Value::Array(a) => a.iter_mut().any(|c| go(c, n, v)),
            Value::Object(o) => o.values_mut().any(|c| go(c, n, v)),
            _ => false,
        }
    }
    let mut n = n % count(doc);
    go(doc, &mut n, &v);
}

fn mutate(mut bytes: Vec<u8>, e: &[Edit]) -> Vec<u8> {
    apply(&mut bytes, e);
    bytes
}

/// Writes the seed image with `t` applied into `dir`.
fn write_case(dir: &Path, t: &Target) {
    let l = Layout::new(dir);
    let mut layers = seed_layers();
    if let Target::Tar(i, e) = t {
        layers[*i].0 = mutate(std::mem::take(&mut layers[*i].0), e);
    }
    let mut descs = vec![];
    let mut diff_ids = vec![];
    for (i, (tar, comp)) in layers.into_iter().enumerate() {
        diff_ids.push(sha256(&tar));
        let layer = Layer::with(tar, comp, false);
        let blob = match t {
            Target::Blob(j, e) if *j == i => mutate(layer.blob, e),
            _ => layer.blob,
        };
        let (d, s) = l.put(&blob);
        descs.push(json!({"mediaType": layer.media_type, "digest": d, "size": s}));
    }
    let json_edit = |which: u8, doc: &mut Value| {
        if let Target::Json(w, n, v) = t
            && *w == which
        {
            replace_nth(doc, *n, v.clone());
        }
    };
    let mut config = json!({
        "created": "2023-11-14T22:13:20Z", "architecture": "amd64", "os": "linux",
        "config": {"Env": ["A=1"], "Labels": {"l": "v"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "x"}],
    });
    json_edit(0, &mut config);
    let mut config = serde_json::to_vec(&config).unwrap();
    if let Target::Config(e) = t {
        config = mutate(config, e);
    }
    let (cd, cs) = l.put(&config);
    let mut manifest = json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
        "layers": descs,
        "annotations": {"a": "b"},
    });
    json_edit(1, &mut manifest);
    let mut manifest = serde_json::to_vec(&manifest).unwrap();
    if let Target::Manifest(e) = t {
        manifest = mutate(manifest, e);
    }
    let (md, ms) = l.put(&manifest);
    let mut index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
        "annotations": {"org.opencontainers.image.ref.name": "latest"},
        "platform": {"os": "linux", "architecture": "amd64"},
    }]});
    json_edit(2, &mut index);
    let mut index = serde_json::to_vec(&index).unwrap();
    if let Target::Index(e) = t {
        index = mutate(index, e);
    }
    std::fs::write(dir.join("index.json"), index).unwrap();
    if let Target::Raw(f, e) = t {
        let mut files: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.push(dir.join("index.json"));
        let p = &files[f % files.len()];
        let bytes = std::fs::read(p).unwrap();
        std::fs::write(p, mutate(bytes, e)).unwrap();
    }
}

/// Runs `ocitree import ARGS` on `repo` (killed after 60 s; `HOME` set when given) and
/// asserts a clean outcome for `case`: an import (fsck clean), or exit 2 with an `error:` line
/// and the repository unchanged; never a panic or a hang.
fn import_cleanly(
    repo: &Repo,
    args: &[String],
    home: Option<&Path>,
    case: &str,
) -> Result<(), TestCaseError> {
    let snap = repo.snapshot();
    let mut cmd = Command::new("timeout");
    cmd.args(["-s", "KILL", "60"])
        .arg(bin())
        .arg("--repo")
        .arg(&repo.path)
        .arg("import")
        .args(args)
        .env_remove("OCITREE_REPO");
    if let Some(h) = home {
        cmd.env("HOME", h);
    }
    let out = cmd.output().unwrap();
    let code = out.status.code().unwrap_or(-1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    prop_assert!(!stderr.contains("panicked"), "panic on {case}: {stderr}");
    prop_assert!(
        code == 0 || code == 2,
        "exit {code} (hang or crash) on {case}: {stderr}"
    );
    if code == 2 {
        prop_assert!(stderr.starts_with("error: "), "{case}: {stderr}");
        snap.assert_unchanged(&repo.path);
    } else {
        tools::fsck(&repo.path);
    }
    Ok(())
}

/// Imports the case; asserts a clean outcome.
fn check(repo: &Repo, dir: &Path, t: &Target) -> Result<(), TestCaseError> {
    let args = [Repo::oci(dir, "latest"), "fuzz".to_string()];
    import_cleanly(repo, &args, None, &format!("{t:?}"))
}

#[test]
fn mutated_images_import_or_fail_cleanly() {
    let repo = Repo::new();
    let tmp = tempdir();
    let mut runner = TestRunner::new(Config {
        cases: fuzz_cases(48),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&target(), |t| {
            let dir = tmp.path().join("case");
            write_case(&dir, &t);
            let r = check(&repo, &dir, &t);
            std::fs::remove_dir_all(&dir).unwrap();
            r
        })
        .unwrap();
    // the unmutated seed imports (so mutations start from something the importer accepts)
    let dir = tmp.path().join("seed");
    write_case(&dir, &Target::Index(vec![]));
    repo.import(&Repo::oci(&dir, "latest"), "seed");
}

/// One canned registry: answers every manifest request first with 401 and `challenge`, the
/// token request with `token`, then the manifest request with `manifest` as `content_type`,
/// and blobs from `layout`. Serves until dropped (the thread ends with the test process).
fn fake_registry(
    challenge: Vec<u8>,
    token: Vec<u8>,
    manifest: Vec<u8>,
    content_type: &'static str,
    layout: std::path::PathBuf,
) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // printable ASCII only: anything else fails HTTP parsing before the challenge parser
    let challenge: String = challenge
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect::<String>()
        .replace("REALM", &format!("http://127.0.0.1:{port}/token"));
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let mut authorized = false;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                authorized |= h.to_ascii_lowercase().starts_with("authorization:");
            }
            let path = line.split(' ').nth(1).unwrap_or("").to_string();
            let (status, extra, body): (&str, String, Vec<u8>) = if path.starts_with("/token") {
                (
                    "200 OK",
                    "Content-Type: application/json\r\n".into(),
                    token.clone(),
                )
            } else if !authorized {
                (
                    "401 Unauthorized",
                    format!("WWW-Authenticate: {challenge}\r\n"),
                    vec![],
                )
            } else if path.contains("/manifests/") {
                (
                    "200 OK",
                    format!("Content-Type: {content_type}\r\n"),
                    manifest.clone(),
                )
            } else if let Some(d) = path.rsplit_once("/blobs/sha256:").map(|x| x.1) {
                match std::fs::read(layout.join("blobs/sha256").join(d)) {
                    Ok(b) => ("200 OK", String::new(), b),
                    Err(_) => ("404 Not Found", String::new(), vec![]),
                }
            } else {
                ("404 Not Found", String::new(), vec![])
            };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body);
        }
    });
    port
}

/// Registry answers mutated: the WWW-Authenticate challenge, the token JSON and the manifest
/// (bytes or one value, served as OCI or docker media type). A pull ends in an import or a
/// clean error; never a panic or a hang.
#[test]
fn mutated_registry_responses_fail_cleanly() {
    let repo = Repo::new();
    let tmp = tempdir();
    let layout = tmp.path().join("img");
    write_case(&layout, &Target::Index(vec![]));
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let md = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let manifest = std::fs::read(layout.join("blobs/sha256").join(md)).unwrap();
    let challenge = br#"Bearer realm="REALM",service="fake",scope="repository:x:pull""#.to_vec();
    let token = br#"{"token":"abc","access_token":"abc","expires_in":60}"#.to_vec();
    // the challenge and the token are left intact two times in three, so the manifest is
    // reached
    let sometimes = |seed: Vec<u8>| prop_oneof![2 => Just(seed.clone()), 1 => crate::util::mutate::mutated(seed)];
    let strategy = (
        sometimes(challenge),
        sometimes(token),
        prop_oneof![
            2 => crate::util::mutate::mutated(manifest.clone()),
            1 => (any::<usize>(), hostile_value()).prop_map(move |(n, v)| {
                let mut doc: Value = serde_json::from_slice(&manifest).unwrap();
                replace_nth(&mut doc, n, v);
                serde_json::to_vec(&doc).unwrap()
            }),
        ],
        prop::sample::select(vec![
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.index.v1+json",
            "text/html",
        ]),
    );
    let mut runner = TestRunner::new(Config {
        cases: fuzz_cases(24),
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(c, t, m, ct)| {
            let port = fake_registry(c.clone(), t.clone(), m.clone(), ct, layout.clone());
            let case = format!(
                "challenge {:?} token {:?} manifest {:?} as {ct}",
                String::from_utf8_lossy(&c),
                String::from_utf8_lossy(&t),
                String::from_utf8_lossy(&m)
            );
            let args = [
                "--tls-verify=false".to_string(),
                "--timeout".into(),
                "5".into(),
                format!("docker://127.0.0.1:{port}/x:latest"),
                "fuzz".into(),
            ];
            import_cleanly(&repo, &args, Some(tmp.path()), &case)?;
            Ok(())
        })
        .unwrap();
}
