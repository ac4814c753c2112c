//! docker-archive (`docker save` format): import of archives written by skopeo, export that
//! skopeo reads.

use std::process::Command;

use crate::util::*;

/// skopeo's docker-archive of the umoci-built small image (util/wild.rs), tagged `example.com/small:v1`.
fn small_archive(dir: &std::path::Path) -> std::path::PathBuf {
    tools::require("skopeo");
    let out = dir.join("small-docker.tar");
    tools::run(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!(
                "oci:{}:latest",
                wild_images().join("small").display()
            ))
            .arg(format!(
                "docker-archive:{}:example.com/small:v1",
                out.display()
            )),
    );
    out
}

#[test]
fn skopeo_docker_archive_imports_like_the_oci_image() {
    let tmp = tempdir();
    let archive = small_archive(tmp.path());
    let repo = Repo::new();
    let r = repo.ok(&["import", &format!("docker-archive:{}", archive.display())]);
    assert_eq!(r.field("Image"), "example.com/small:v1");
    assert_eq!(r.layers(), (3, 0));
    repo.assert_matches_umoci(&r.commit(), &wild_images().join("small"), "latest");
    // the same layers, gzip-compressed in the OCI layout, are found by diff_id
    let oci = repo.import(&Repo::oci(&wild_images().join("small"), "latest"), "oci");
    assert_eq!(oci.layers(), (0, 3));
    // by reference, and from standard input
    let tagged = repo.import(
        &format!("docker-archive:{}:example.com/small:v1", archive.display()),
        "tagged",
    );
    assert_eq!(tagged.layers(), (0, 3));
    let err = repo.fails(&[
        "import",
        &format!("docker-archive:{}:other:v2", archive.display()),
        "x",
    ]);
    assert!(err.contains("not found"), "{err}");
    let piped = repo
        .cmd()
        .args(["import", "docker-archive:-", "piped"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert!(piped.status.success(), "{piped:?}");
    tools::fsck(&repo.path);
}

#[test]
fn corrupt_docker_archive_layer_is_rejected() {
    let tmp = tempdir();
    let archive = small_archive(tmp.path());
    // flip one byte inside the first layer member's data (a plain tar: the file data of the
    // 2 MiB file), keeping the archive a valid tar
    let mut bytes = std::fs::read(&archive).unwrap();
    let mut a = tar::Archive::new(&bytes[..]);
    let (offset, size) = a
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_string_lossy().ends_with(".tar") && e.size() > 1_000_000)
        .map(|e| (e.raw_file_position() as usize, e.size() as usize))
        .unwrap();
    bytes[offset + size / 2] ^= 0xff;
    std::fs::write(&archive, &bytes).unwrap();
    let repo = Repo::new();
    let snap = repo.snapshot();
    let err = repo.fails(&[
        "import",
        &format!("docker-archive:{}", archive.display()),
        "x",
    ]);
    assert!(err.contains("digest mismatch"), "{err}");
    snap.assert_unchanged(&repo.path);
}

/// Our docker archives: skopeo reads them (and converts them to the same tree umoci unpacks
/// from the original), and they import back with every layer reused by diff_id.
#[test]
fn export_to_docker_archive() {
    let tmp = tempdir();
    let repo = Repo::new();
    repo.import(
        &Repo::oci(&wild_images().join("quirks"), "latest"),
        "quirks",
    );
    let ours = tmp.path().join("ours.tar");
    let r = repo.ok(&[
        "export",
        "quirks",
        &format!("docker-archive:{}:example.com/quirks:v1", ours.display()),
    ]);
    assert!(r.stdout.contains("digest = its diff_id"), "{r:?}");
    // no manifest in a docker archive: the image is named by its config, as `docker load` does
    let raw = tools::run(
        Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("docker-archive:{}", ours.display())),
    );
    let raw: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(
        r.field("Image ID"),
        raw["config"]["digest"].as_str().unwrap()
    );
    assert!(!r.stdout.contains("Manifest:"), "{r:?}");
    let inspect = tools::run(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("docker-archive:{}", ours.display())),
    );
    let layers: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let inspected: Vec<&str> = layers["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let info: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", "quirks"]).stdout).unwrap();
    let diff_ids: Vec<&str> = info["config"]["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(inspected, diff_ids);
    let converted = tmp.path().join("converted");
    tools::run(
        Command::new("skopeo")
            .args(["copy", "-q"])
            .arg(format!("docker-archive:{}", ours.display()))
            .arg(format!("oci:{}:x", converted.display())),
    );
    let a = tools::umoci_unpack(&converted, "x", &tmp.path().join("a"));
    let b = tools::umoci_unpack(
        &wild_images().join("quirks"),
        "latest",
        &tmp.path().join("b"),
    );
    tree::assert_same(&a, &b);
    let back = repo.import(&format!("docker-archive:{}", ours.display()), "back");
    assert_eq!(back.layers(), (0, 5));
    assert_eq!(back.field("Image"), "back");
    let fresh = Repo::new();
    let r = fresh.ok(&["import", &format!("docker-archive:{}", ours.display())]);
    assert_eq!(r.field("Image"), "example.com/quirks:v1");
    assert_eq!(
        tools::ostree(&fresh.path, &["ls", "-R", "-C", &r.commit()]),
        tools::ostree(&repo.path, &["ls", "-R", "-C", "ocitree/image/quirks"])
    );
}

/// Writes a legacy `docker save` archive (one `ID/` directory per layer with `VERSION`, `json`
/// and `layer.tar`, `SHA.json` configs, `manifest.json`, `repositories`), entries sorted by
/// name as docker writes them. Image `example.com/dup:v1` has layers L1, L2, L1 and
/// `example.com/dup:v2` has L2: as moby's tarexport does, a layer already saved under
/// another id is a symlink `ID2/layer.tar -> ../ID1/layer.tar` (here the links sort before
/// their targets). `mode` then changes the archive: `cfg-link` (v1's config and a layer reached
/// through symlinks, one of them a directory link), `escape`, `absolute`, `loop`, `wrong`
/// (v1's repeated layer links to L2).
const LEGACY_SAVE: &str = r#"
import hashlib, io, json, sys, tarfile
out, mode = sys.argv[1], sys.argv[2]
def tar_of(files):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.USTAR_FORMAT) as t:
        for name, data in files:
            ti = tarfile.TarInfo(name); ti.mtime = 1700000000
            if data is None:
                ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
            else:
                ti.size = len(data); ti.mode = 0o644; t.addfile(ti, io.BytesIO(data))
    return b.getvalue()
L1 = tar_of([("d/", None), ("d/one", b"one\n" * 1000)])
L2 = tar_of([("two", b"two\n")])
sha = lambda b: hashlib.sha256(b).hexdigest()
ids = {"A1": "a" + sha(b"A1")[1:], "A2": "b" + sha(b"A2")[1:], "A3": "0" + sha(b"A3")[1:], "B1": "1" + sha(b"B1")[1:]}
entries = {}  # name -> bytes, None for a directory, ("link", target)
def layer_dir(key, parent, layer, link_to=None):
    i = ids[key]
    entries[i + "/"] = None
    entries[i + "/VERSION"] = b"1.0"
    j = {"id": i, "created": "2023-11-14T22:13:20Z", "container_config": {"Cmd": None}, "os": "linux"}
    if parent: j["parent"] = ids[parent]
    entries[i + "/json"] = json.dumps(j).encode()
    entries[i + "/layer.tar"] = ("link", "../" + ids[link_to] + "/layer.tar") if link_to else layer
def config(diff_ids):
    c = json.dumps({"architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha(d) for d in diff_ids]},
        "history": [{"created": "2023-11-14T22:13:20Z"} for _ in diff_ids]}).encode()
    entries[sha(c) + ".json"] = c
    return sha(c) + ".json"
layer_dir("A1", None, L1)
layer_dir("A2", "A1", L2)
layer_dir("A3", "A2", None, link_to="A2" if mode == "wrong" else "A1")
layer_dir("B1", None, None, link_to="A2")
ca, cb = config([L1, L2, L1]), config([L2])
la = [ids[k] + "/layer.tar" for k in ("A1", "A2", "A3")]
if mode == "cfg-link":
    entries["cfg/"] = None
    entries["cfg/v1.json"] = ("link", "../" + ca)
    entries["first"] = ("link", ids["A1"])
    ca, la[0] = "cfg/v1.json", "first/layer.tar"
elif mode == "escape":
    entries[ids["A3"] + "/layer.tar"] = ("link", "../../" + ids["A1"] + "/layer.tar")
elif mode == "absolute":
    entries[ids["A3"] + "/layer.tar"] = ("link", "/" + ids["A1"] + "/layer.tar")
elif mode == "loop":
    entries[ids["A3"] + "/layer.tar"] = ("link", "../x/layer.tar")
    entries["x/layer.tar"] = ("link", "../" + ids["A3"] + "/layer.tar")
entries["manifest.json"] = json.dumps([
    {"Config": ca, "RepoTags": ["example.com/dup:v1"], "Layers": la},
    {"Config": cb, "RepoTags": ["example.com/dup:v2"], "Layers": [ids["B1"] + "/layer.tar"]},
]).encode()
entries["repositories"] = json.dumps({"example.com/dup": {"v1": ids["A3"], "v2": ids["B1"]}}).encode()
with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    for name in sorted(entries):
        v = entries[name]
        ti = tarfile.TarInfo(name.rstrip("/")); ti.mtime = 1700000000
        if v is None:
            ti.type = tarfile.DIRTYPE; ti.mode = 0o755; t.addfile(ti)
        elif isinstance(v, tuple):
            ti.type = tarfile.SYMTYPE; ti.linkname = v[1]; ti.mode = 0o777; t.addfile(ti)
        else:
            ti.size = len(v); ti.mode = 0o644; t.addfile(ti, io.BytesIO(v))
"#;

fn legacy_save(dir: &std::path::Path, mode: &str) -> std::path::PathBuf {
    tools::require("python3");
    let out = dir.join(format!("legacy-{mode}.tar"));
    tools::run(
        Command::new("python3")
            .args(["-c", LEGACY_SAVE])
            .arg(&out)
            .arg(mode),
    );
    out
}

fn diff_ids(repo: &Repo, name: &str) -> Vec<String> {
    let info: serde_json::Value =
        serde_json::from_str(&repo.ok(&["inspect", name]).stdout).unwrap();
    info["config"]["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

/// Legacy `docker save` archives store a layer that recurs (in one image or across images)
/// as a symlink to its first copy: ocitree follows it inside the archive and imports what
/// skopeo reads from the same archive (same diff_ids, same tree); it used to say "not found".
/// Links to the config and through a directory link are followed too.
#[test]
fn legacy_docker_save_with_symlinked_layers_imports_like_skopeo() {
    tools::require("skopeo");
    let tmp = tempdir();
    let repo = Repo::new();
    // skopeo reads the plain archive (it follows a layer's own symlink, not a directory
    // link): the oracle for both
    let plain = legacy_save(tmp.path(), "plain");
    let converted = tmp.path().join("skopeo");
    for tag in ["v1", "v2"] {
        tools::run(
            Command::new("skopeo")
                .args(["copy", "-q"])
                .arg(format!(
                    "docker-archive:{}:example.com/dup:{tag}",
                    plain.display()
                ))
                .arg(format!("oci:{}:{tag}", converted.display())),
        );
        repo.import(&Repo::oci(&converted, tag), &format!("skopeo-{tag}"));
    }
    for mode in ["plain", "cfg-link"] {
        let archive = legacy_save(tmp.path(), mode);
        for tag in ["v1", "v2"] {
            let src = format!("docker-archive:{}:example.com/dup:{tag}", archive.display());
            let ours = repo.import(&src, &format!("{mode}-{tag}"));
            let theirs = format!("skopeo-{tag}");
            assert_eq!(
                diff_ids(&repo, &format!("{mode}-{tag}")),
                diff_ids(&repo, &theirs)
            );
            assert_eq!(
                tools::ostree(&repo.path, &["ls", "-R", "-C", &ours.commit()]),
                tools::ostree(
                    &repo.path,
                    &["ls", "-R", "-C", &format!("ocitree/image/{theirs}")]
                )
            );
        }
        assert_eq!(diff_ids(&repo, &format!("{mode}-v1")).len(), 3);
        assert_eq!(
            repo.ok(&["cat", &format!("{mode}-v2"), "/two"]).stdout,
            "two\n"
        );
    }
    tools::fsck(&repo.path);
}

/// A link in a docker archive is followed only inside it: one leading above the archive's
/// root, an absolute one and a loop are errors naming the archive and the link; a link to
/// the wrong layer is a digest mismatch. Exit 2, the repository unchanged.
#[test]
fn docker_archive_links_stay_inside_the_archive() {
    let tmp = tempdir();
    let repo = Repo::new();
    let snap = repo.snapshot();
    for (mode, expect) in [
        ("escape", "leads outside the archive"),
        ("absolute", "has an absolute target, outside the archive"),
        ("loop", "more than 40 links followed (a loop"),
        ("wrong", "digest mismatch"),
    ] {
        let archive = legacy_save(tmp.path(), mode);
        let src = format!("docker-archive:{}:example.com/dup:v1", archive.display());
        let err = repo.fails(&["import", &src, "x"]);
        assert!(
            err.contains(&format!("docker-archive:{}", archive.display())) && err.contains(expect),
            "{mode}: expected {expect:?} in: {err}"
        );
        if mode != "wrong" {
            assert!(
                err.contains("/layer.tar -> "),
                "{mode}: names the link: {err}"
            );
        }
        snap.assert_unchanged(&repo.path);
    }
}

/// A docker-archive whose manifest.json lists one image 2000 times (tagged or not) is that
/// image: it used to be "2000 manifests match" with a listing of 2000 identical lines (20000
/// made a 2 MB error), and the config was read once per entry.
#[test]
fn image_listed_many_times_in_manifest_json_is_one_image() {
    let tmp = tempdir();
    let layer = tar_of(&[file("a", b"1")]);
    let config = serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}}))
    .unwrap();
    let repo = Repo::new();
    for (tags, reference) in [(Some(vec!["t:1"]), ":t:1"), (None, "")] {
        let entry = serde_json::json!({"Config": "c.json", "RepoTags": tags, "Layers": ["l.tar"]});
        let manifest = serde_json::to_vec(&vec![entry; 2000]).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in [
            ("manifest.json", &manifest),
            ("c.json", &config),
            ("l.tar", &layer),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        let archive = tmp.path().join("many.tar");
        std::fs::write(&archive, b.into_inner().unwrap()).unwrap();
        let src = format!("docker-archive:{}{reference}", archive.display());
        repo.ok(&["import", &src, "x"]);
        assert_eq!(repo.ok(&["cat", "x", "/a"]).stdout, "1");
    }
}
