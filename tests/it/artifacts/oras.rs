//! A real ORAS client — the `oras` Python package from PyPI (`tools::oras_python`) — pushes
//! files, folder-titled files and a directory to Debian's docker-registry; its own pull is the
//! oracle for the tree `ocitree import` makes; the export pushed back pulls the same again.

use std::process::Command;

use super::*;
use crate::util::registry::Registry;

/// Push: `oras.py push HOST TARGET ANNOTATIONS FILE...` (run in the files' directory; an
/// annotation file maps a pushed path to annotations, as `oras push --annotation-file`).
/// Pull: `oras.py pull HOST TARGET OUTDIR`.
const CLIENT: &str = r#"
import sys, oras.client
op, host, target = sys.argv[1:4]
c = oras.client.OrasClient(hostname=host, insecure=True)
if op == "push":
    ann = sys.argv[4] if sys.argv[4] != "-" else None
    c.push(target=target, files=sys.argv[5:], annotation_file=ann)
else:
    c.pull(target=target, outdir=sys.argv[4])
"#;

fn oras(tmp: &Path, cwd: &Path, args: &[&str]) {
    let py = tools::oras_python();
    let script = tmp.join("oras_client.py");
    std::fs::write(&script, CLIENT).unwrap();
    // The ORAS client leaves `oras-tmp.*` directories behind: keep them in the test's own
    // scratch space, removed with it.
    tools::run(
        Command::new(py)
            .arg(&script)
            .args(args)
            .current_dir(cwd)
            .env("TMPDIR", tmp),
    );
}

/// `oras push` of a plain file, a binary file, a tarball pushed as a file, a directory and a
/// file titled with its folders; `oras pull` of it is the tree `ocitree import` must give.
/// Then `ocitree export` to an OCI layout keeps the manifest digest, and the push back to the
/// registry pulls (with oras) to the same tree.
#[test]
fn oras_python_push_pull_is_the_oracle() {
    let tmp = tempdir();
    let reg = Registry::start();
    let host = reg.host();
    let work = tmp.path().join("work");
    let binary: Vec<u8> = (0..5000u32).map(|i| (i * 13 % 256) as u8).collect();
    let tarball = compress(&tar_of(&[file("inside/x", b"stays packed")]), Comp::Gzip);
    write_files(
        &work,
        &[
            ("hello.txt", b"hello\n"),
            ("data.bin", &binary),
            ("bundle.tar.gz", &tarball),
            ("site/index.html", b"<h1>hi</h1>\n"),
            ("site/css/main.css", b"h1 {}\n"),
            ("sample/mixed/src/main.js", b"console.log(1)\n"),
        ],
    );
    std::fs::create_dir_all(work.join("site/empty")).unwrap();
    let annotations = tmp.path().join("annotations.json");
    std::fs::write(
        &annotations,
        r#"{"sample/mixed/src/main.js": {"org.opencontainers.image.title": "sample/mixed/src/main.js"}}"#,
    )
    .unwrap();
    let target = format!("{host}/files/demo:v1");
    oras(
        tmp.path(),
        &work,
        &[
            "push",
            &host,
            &target,
            annotations.to_str().unwrap(),
            "hello.txt",
            "data.bin",
            "bundle.tar.gz",
            "site",
            "sample/mixed/src/main.js",
        ],
    );
    let oracle = tmp.path().join("oracle");
    oras(
        tmp.path(),
        tmp.path(),
        &["pull", &host, &target, oracle.to_str().unwrap()],
    );

    let repo = Repo::new();
    let src = reg.url("files/demo:v1");
    let r = repo.ok(&["import", "--tls-verify=false", &src, "demo"]);
    let co = checkout(&repo, &r.commit(), tmp.path());
    tree::assert_same(&co, &oracle);
    // the tarball pushed as a file stays that file
    assert_eq!(std::fs::read(co.join("bundle.tar.gz")).unwrap(), tarball);
    tools::fsck(&repo.path);

    // round trip: same manifest digest, and the push back pulls to the same tree
    let (digest, out) = export_digest(&repo, "demo", tmp.path());
    assert_eq!(digest, r.field("Manifest"), "{out}");
    assert!(out.contains("manifest digest unchanged"), "{out}");
    let pushed = repo.ok(&[
        "export",
        "--tls-verify=false",
        "demo",
        &reg.url("files/back:v2"),
    ]);
    assert_eq!(pushed.field("Pushed"), digest, "{pushed:?}");
    let again = tmp.path().join("again");
    let back = format!("{host}/files/back:v2");
    oras(
        tmp.path(),
        tmp.path(),
        &["pull", &host, &back, again.to_str().unwrap()],
    );
    tree::assert_same(&again, &oracle);
}
