//! Round trips with random inputs (proptest), the two promises of README "Encapsulate" and
//! "Export":
//!
//! A. A random tree (depth ≤ 3: odd names, files of any mode and owner, shared objects,
//!    hardlinks, symlinks of any target, empty directories, xattrs on files, directories and
//!    symlinks) committed by the real `ostree commit` (random subject, body, timestamp,
//!    metadata, detached metadata, parent) → `ocitree encapsulate` (random `--max-layers`,
//!    `--compression`) → `ocitree import` into fresh repos (bare-user or bare, and archive):
//!    the identical commit, the same commit object and detached metadata, fsck clean; an export
//!    of the import gives the same manifest digest again. A tree README says no image can carry
//!    (a name starting with `.wh.`, an xattr name holding `=` or a newline) is refused: exit 2,
//!    an `error:` line, nothing written.
//! B. A random image (1–3 layers of files, directories, symlinks, hardlinks, whiteouts, opaque
//!    markers, FIFOs; uncompressed, gzip, multi-member gzip or zstd; OCI or docker media types)
//!    → `import` → `export`: the config byte for byte, every layer tar byte for byte (so its
//!    diff_id), uncompressed layers' blobs kept; the export re-imports to the same tree (the
//!    identical commit where the manifest digest stayed) and exports again to the same manifest;
//!    where umoci can read the image, the tree is umoci's. What import refuses, it refuses
//!    cleanly (exit 2, an `error:` line, the repository unchanged).
//!
//! Cases: 24 (A) and 32 (B) by default (about 10 s);
//! `PROPTEST_CASES=300 cargo test --test it roundtrip::` runs more. Each test prints its
//! accepted/refused counts (`-- --nocapture`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::util::mutate::fuzz_cases;
use crate::util::*;

/// Bytes, shown as a byte string.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct B(Vec<u8>);

impl fmt::Debug for B {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// Permission bits, shown in octal.
#[derive(Clone, Copy)]
struct Mode(u32);

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0o{:04o}", self.0)
    }
}

/// Mode, owner and xattrs of a file or directory.
#[derive(Clone, Debug)]
struct Meta {
    mode: Mode,
    uid: u32,
    gid: u32,
    xattrs: Vec<(B, B)>,
}

/// One path of the tree.
#[derive(Clone, Debug)]
enum Node {
    File {
        data: B,
        meta: Meta,
    },
    /// A hardlink to the n-th regular file written (walk order, modulo their count); nothing
    /// when there is none.
    Link(usize),
    Symlink {
        target: B,
        uid: u32,
        gid: u32,
        xattrs: Vec<(B, B)>,
    },
    Dir {
        meta: Meta,
        entries: Vec<(String, Node)>,
    },
}

/// What makes a tree one README says no image can carry.
#[derive(Clone, Debug)]
enum Poison {
    /// A file named `.wh.…` in the n-th directory (walk order, the root first).
    WhiteoutName(usize, String),
    /// An xattr of this name on the n-th directory.
    XattrName(usize, B),
}

/// A commit to make and how to encapsulate it.
#[derive(Clone, Debug)]
struct Case {
    source_mode: &'static str,
    root: Meta,
    entries: Vec<(String, Node)>,
    poison: Option<Poison>,
    subject: Option<String>,
    body: Option<String>,
    timestamp: u64,
    metadata: Vec<(String, String)>,
    detached: Vec<(String, String)>,
    parent: bool,
    max_layers: Option<u32>,
    compression: Option<&'static str>,
    /// The mode of the first repository imported into (the second is always archive).
    import_mode: &'static str,
}

const SPECIAL_IDS: &[u32] = &[0, 0, 0, 1, 1000, 65534, 2_097_151, 2_097_152, 4_294_967_294];

fn id() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => prop::sample::select(SPECIAL_IDS),
        1 => 0..u32::MAX,
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        2 => prop::sample::select(vec![0o644, 0o755, 0o600, 0o700]),
        3 => 0u32..0o10000,
    ]
    .prop_map(Mode)
}

/// Characters for odd file names (no `/`, no NUL).
const ODD: &[char] = &[
    'a', 'b', ' ', '.', '-', '_', '\t', '\n', 'é', '日', '😀', '\\', '=', ':', '*', '\u{1}',
    '\u{7f}', '"', '\'', '#', '%', '~',
];

/// A file name: plain, odd bytes, near misses of `.wh.`, or long (up to Linux's 255 bytes).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        5 => "[a-z]{1,6}",
        3 => prop::collection::vec(prop::sample::select(ODD), 1..6)
            .prop_map(|c| c.into_iter().collect::<String>())
            .prop_filter("not . or ..", |n| n != "." && n != ".."),
        1 => prop::sample::select(vec![
            ".hidden", "..x", ".wh", "x.wh.y", ".WH.x", "..wh.x", ".wh-x", "wh..wh..opq", " ",
            "-", "~", "é", "日本語", "\u{1}",
        ])
        .prop_map(String::from),
        1 => (100..=255usize).prop_map(|n| "L".repeat(n)),
        1 => Just("é".repeat(127)),
    ]
}

/// File contents: empty, shared between files (so objects are deduplicated), random, or large
/// enough to cross compression blocks.
fn data() -> impl Strategy<Value = B> {
    prop_oneof![
        2 => Just(B(vec![])),
        3 => Just(B(b"same\n".to_vec())),
        4 => prop::collection::vec(any::<u8>(), 0..64).prop_map(B),
        1 => (1usize..300_000).prop_map(|n| B((0..n).map(|i| (i * 7 % 251) as u8).collect())),
    ]
}

/// What an xattr is set on: the kernel allows `user.*` on files and directories only, and
/// `security.capability` on regular files only.
#[derive(Clone, Copy, PartialEq)]
enum On {
    File,
    Dir,
    Symlink,
}

fn xattr_name(on: On) -> impl Strategy<Value = B> {
    let prefixes = if on == On::Symlink {
        vec!["trusted."]
    } else {
        vec!["user.", "user.", "trusted."]
    };
    let plain = (prop::sample::select(prefixes.clone()), "[a-z0-9._-]{1,8}")
        .prop_map(|(p, s)| B(format!("{p}{s}").into_bytes()));
    // odd bytes a PAX key can still hold: spaces, UTF-8, invalid UTF-8, backslashes
    let odd = (
        prop::sample::select(prefixes),
        prop::collection::vec(
            prop::sample::select(vec![b' ', b'\t', 0xff, 0xc3, 0xa9, b'\\', b':', b'%', b'a']),
            1..6,
        ),
    )
        .prop_map(|(p, s)| B([p.as_bytes(), &s].concat()));
    prop_oneof![4 => plain, 1 => odd]
}

fn xattr_value() -> impl Strategy<Value = B> {
    prop_oneof![
        1 => Just(B(vec![])),
        4 => prop::collection::vec(any::<u8>(), 0..24).prop_map(B),
        1 => prop::collection::vec(prop::sample::select(vec![0u8, b'\n', b'=', b' ']), 1..200)
            .prop_map(B),
    ]
}

/// A valid v2 `security.capability` value (cap_net_raw).
const CAPABILITY: &[u8] =
    b"\x00\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";

fn xattrs(on: On) -> impl Strategy<Value = Vec<(B, B)>> {
    let caps = on == On::File;
    (
        prop::collection::btree_map(xattr_name(on), xattr_value(), 0..3),
        prop::bool::weighted(if caps { 0.15 } else { 0.0 }),
    )
        .prop_map(|(m, cap)| {
            let mut v: Vec<(B, B)> = m.into_iter().collect();
            if cap {
                v.push((B(b"security.capability".to_vec()), B(CAPABILITY.to_vec())));
            }
            v
        })
}

fn meta(on: On) -> impl Strategy<Value = Meta> {
    (mode(), id(), id(), xattrs(on)).prop_map(|(mode, uid, gid, xattrs)| Meta {
        mode,
        uid,
        gid,
        xattrs,
    })
}

/// A symlink target: relative, absolute, denormal, dangling, odd bytes, or long (up to the
/// 4095 bytes Linux allows). Valid UTF-8 only: OSTree keeps a target as a GVariant string, and
/// `ostree commit` of a non-UTF-8 target fails an assertion (`g_variant_new_string: assertion
/// 'g_utf8_validate …' failed`) yet writes a commit, which `ocitree encapsulate` writes as an
/// image that `ocitree import` refuses ("not UTF-8 … OSTree cannot store it").
fn target() -> impl Strategy<Value = B> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "a", "../a", "/", ".", "..", "/etc/passwd", "a//b/./c/", "nowhere/at/all",
            "../../../../../../x", "./", "é", " ", ".wh.x",
        ])
        .prop_map(|t| B(t.as_bytes().to_vec())),
        2 => prop::collection::vec(
            prop::sample::select(vec![b'a', b'/', b'.', b' ', b'\n', b'\\']),
            1..40,
        )
        .prop_map(B),
        1 => (100..=4095usize).prop_map(|n| {
            B((0..n).map(|i| if i % 10 == 9 { b'/' } else { b'd' }).collect())
        }),
    ]
}

fn entries(depth: u32) -> BoxedStrategy<Vec<(String, Node)>> {
    let leaf = prop_oneof![
        6 => (data(), meta(On::File)).prop_map(|(data, meta)| Node::File { data, meta }),
        1 => any::<usize>().prop_map(Node::Link),
        2 => (target(), id(), id(), xattrs(On::Symlink)).prop_map(|(target, uid, gid, xattrs)| {
            Node::Symlink { target, uid, gid, xattrs }
        }),
    ];
    let node = if depth == 0 {
        leaf.boxed()
    } else {
        prop_oneof![
            3 => leaf,
            2 => (meta(On::Dir), entries(depth - 1))
                .prop_map(|(meta, entries)| Node::Dir { meta, entries }),
        ]
        .boxed()
    };
    prop::collection::btree_map(name(), node, 0..5)
        .prop_map(|m| m.into_iter().collect())
        .boxed()
}

fn poison() -> impl Strategy<Value = Option<Poison>> {
    prop_oneof![
        10 => Just(None),
        1 => (any::<usize>(), "[a-z]{0,4}")
            .prop_map(|(n, s)| Some(Poison::WhiteoutName(n, format!(".wh.{s}")))),
        1 => (
            any::<usize>(),
            prop::sample::select(vec!["user.a=b", "user.a\nb", "trusted.=", "user.x\n"]),
        )
            .prop_map(|(n, x)| Some(Poison::XattrName(n, B(x.as_bytes().to_vec())))),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z ]{0,12}",
        "\\PC{0,12}",
        Just("line one\nline two".to_string())
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let commit = (
        prop::option::of(text()),
        prop::option::weighted(0.3, text()),
        prop_oneof![Just(0u64), 0u64..4_102_444_800],
        prop::collection::btree_map("[a-z]{1,6}|version", text(), 0..3),
        prop::collection::btree_map("[a-z]{1,6}", text(), 0..2),
        prop::bool::weighted(0.3),
    );
    let encapsulation = (
        prop::option::weighted(0.6, prop::sample::select(vec![1u32, 2, 3, 5])),
        prop::option::weighted(0.7, prop::sample::select(vec!["gzip", "zstd", "none"])),
        prop::sample::select(vec!["bare-user", "bare"]),
    );
    (
        prop::sample::select(vec!["bare-user", "bare"]),
        meta(On::Dir),
        entries(2),
        poison(),
        commit,
        encapsulation,
    )
        .prop_map(
            |(
                source_mode,
                root,
                entries,
                poison,
                (subject, body, timestamp, metadata, detached, parent),
                (max_layers, compression, import_mode),
            )| Case {
                source_mode,
                root,
                entries,
                poison,
                subject,
                body,
                timestamp,
                metadata: metadata.into_iter().collect(),
                detached: detached.into_iter().collect(),
                parent,
                max_layers,
                compression,
                import_mode,
            },
        )
}

fn set_xattrs(p: &Path, xattrs: &[(B, B)]) {
    for (n, v) in xattrs {
        rustix::fs::lsetxattr(
            p,
            OsStr::from_bytes(&n.0),
            &v.0,
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap_or_else(|e| panic!("setting xattr {n:?} on {}: {e}", p.display()));
    }
}

/// Owner first (chown clears setuid and capabilities), then mode, then xattrs.
fn apply_meta(p: &Path, m: &Meta) {
    std::os::unix::fs::lchown(p, Some(m.uid), Some(m.gid)).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m.mode.0)).unwrap();
    set_xattrs(p, &m.xattrs);
}

/// The tree of a case, with its poison placed.
fn tree_of(c: &Case) -> (Meta, Vec<(String, Node)>) {
    let (mut root, mut entries) = (c.root.clone(), c.entries.clone());
    let Some(poison) = &c.poison else {
        return (root, entries);
    };
    let n = match poison {
        Poison::WhiteoutName(n, _) | Poison::XattrName(n, _) => *n,
    };
    let count = 1 + count_dirs(&entries);
    let mut k = n % count;
    place(&mut root, &mut entries, &mut k, poison);
    (root, entries)
}

fn count_dirs(entries: &[(String, Node)]) -> usize {
    entries
        .iter()
        .map(|(_, n)| match n {
            Node::Dir { entries, .. } => 1 + count_dirs(entries),
            _ => 0,
        })
        .sum()
}

/// Places `poison` in the `k`-th directory (walk order, this one first); true once placed.
fn place(meta: &mut Meta, entries: &mut Vec<(String, Node)>, k: &mut usize, p: &Poison) -> bool {
    if *k == 0 {
        match p {
            Poison::WhiteoutName(_, name) => {
                entries.retain(|(n, _)| n != name);
                entries.push((
                    name.clone(),
                    Node::File {
                        data: B(b"poison".to_vec()),
                        meta: Meta {
                            mode: Mode(0o644),
                            uid: 0,
                            gid: 0,
                            xattrs: vec![],
                        },
                    },
                ));
            }
            Poison::XattrName(_, x) => meta.xattrs.push((x.clone(), B(b"v".to_vec()))),
        }
        return true;
    }
    *k -= 1;
    for (_, n) in entries.iter_mut() {
        if let Node::Dir { meta, entries } = n
            && place(meta, entries, k, p)
        {
            return true;
        }
    }
    false
}

/// Writes the entries below `root` (its own metadata `meta`): files, symlinks and directories
/// first, hardlinks once every file exists, directory metadata last (deepest first), so
/// nothing inherits or is blocked by it.
fn write_tree(root: &Path, meta: &Meta, entries: &[(String, Node)]) {
    fn go(
        dir: &Path,
        entries: &[(String, Node)],
        files: &mut Vec<PathBuf>,
        links: &mut Vec<(PathBuf, usize)>,
        dirs: &mut Vec<(PathBuf, Meta)>,
    ) {
        for (name, node) in entries {
            let p = dir.join(name);
            match node {
                Node::File { data, meta } => {
                    std::fs::write(&p, &data.0).unwrap();
                    apply_meta(&p, meta);
                    files.push(p);
                }
                Node::Link(n) => links.push((p, *n)),
                Node::Symlink {
                    target,
                    uid,
                    gid,
                    xattrs,
                } => {
                    std::os::unix::fs::symlink(OsStr::from_bytes(&target.0), &p).unwrap();
                    std::os::unix::fs::lchown(&p, Some(*uid), Some(*gid)).unwrap();
                    set_xattrs(&p, xattrs);
                }
                Node::Dir { meta, entries } => {
                    std::fs::create_dir(&p).unwrap();
                    go(&p, entries, files, links, dirs);
                    dirs.push((p, meta.clone()));
                }
            }
        }
    }
    let (mut files, mut links, mut dirs) = (vec![], vec![], vec![]);
    go(root, entries, &mut files, &mut links, &mut dirs);
    for (p, n) in links {
        if !files.is_empty() {
            std::fs::hard_link(&files[n % files.len()], p).unwrap();
        }
    }
    dirs.push((root.to_path_buf(), meta.clone()));
    for (p, m) in dirs {
        apply_meta(&p, &m);
    }
}

/// The documented refusal a case must meet, if any (README "Encapsulate": "Refused, with the
/// path named: names starting with `.wh.` …, and xattr names a PAX key cannot hold (`=`,
/// newline, NUL)").
fn expected_refusal(c: &Case) -> Option<String> {
    c.poison.as_ref().map(|p| match p {
        Poison::WhiteoutName(_, name) => name.clone(),
        Poison::XattrName(..) => "xattr name".to_string(),
    })
}

/// Counts of a property's outcomes, and the refusals by message.
#[derive(Default, Debug)]
struct Tally {
    accepted: usize,
    /// Accepted cases also checked against umoci's tree.
    oracle: usize,
    refused: BTreeMap<String, usize>,
}

impl Tally {
    fn refused(&self) -> usize {
        self.refused.values().sum()
    }

    /// Prints the counts and asserts that most cases were accepted (no vacuous property).
    fn report(&self, what: &str) {
        let oracle = match self.oracle {
            0 => String::new(),
            n => format!(" ({n} also checked against umoci)"),
        };
        eprintln!(
            "{what}: {} accepted{oracle}, {} refused: {:#?}",
            self.accepted,
            self.refused(),
            self.refused
        );
        assert!(
            self.accepted >= self.refused() && self.accepted > 0,
            "{what}: most cases must be accepted: {self:?}"
        );
    }
}

fn runner(default_cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: fuzz_cases(default_cases),
        failure_persistence: None,
        ..Config::default()
    })
}

/// Property A: commit → encapsulate → import gives the identical commit, or a documented,
/// clean refusal.
fn encapsulate_case(c: &Case, tally: &RefCell<Tally>) {
    let s = Source::with_mode(c.source_mode);
    std::fs::remove_dir(&s.tree).unwrap();
    std::fs::create_dir(&s.tree).unwrap();
    let (root, entries) = tree_of(c);
    write_tree(&s.tree, &root, &entries);
    if c.parent {
        s.commit("main", &["-s", "the parent"]);
    }
    let mut args: Vec<String> = vec![format!("--timestamp=@{}", c.timestamp)];
    if let Some(t) = &c.subject {
        args.push(format!("--subject={t}"));
    }
    if let Some(t) = &c.body {
        args.push(format!("--body={t}"));
    }
    for (k, v) in &c.metadata {
        args.push(format!("--add-metadata-string={k}={v}"));
    }
    for (k, v) in &c.detached {
        args.push(format!("--add-detached-metadata-string={k}={v}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let commit = s.commit("main", &args);

    let out = s.work.join("img");
    let dest = Repo::oci(&out, "latest");
    let mut enc = vec!["encapsulate".to_string(), "main".into(), dest];
    if let Some(n) = c.max_layers {
        enc.extend(["--max-layers".into(), n.to_string()]);
    }
    if let Some(z) = c.compression {
        enc.extend(["--compression".into(), z.to_string()]);
    }
    let enc: Vec<&str> = enc.iter().map(String::as_str).collect();
    let r = s.run(&enc);
    assert!(!r.stderr.contains("panicked"), "panic: {r:?}");
    if let Some(named) = expected_refusal(c) {
        assert_eq!(r.code, 2, "a documented refusal must exit 2: {r:?}");
        assert!(r.stderr.starts_with("error: "), "{r:?}");
        assert!(
            r.stderr.contains(&named),
            "the refusal names {named:?}: {r:?}"
        );
        let left: Vec<_> = std::fs::read_dir(&s.work).unwrap().collect();
        assert!(left.is_empty(), "a refusal writes nothing: {left:?}");
        let reason = if named.starts_with(".wh.") {
            ".wh. name"
        } else {
            "xattr name"
        };
        *tally.borrow_mut().refused.entry(reason.into()).or_default() += 1;
        return;
    }
    assert_eq!(r.code, 0, "encapsulate must succeed: {r:?}");
    if let Some(n) = c.max_layers {
        assert!(layer_digests(&out).len() <= n as usize, "--max-layers {n}");
    }
    let first = assert_identical_import_into(Repo::with_mode(c.import_mode), &s, &out, &commit);
    assert_identical_import_into(Repo::with_mode("archive"), &s, &out, &commit);
    // README: "exporting the imported image again rebuilds the same blobs and manifest"
    let again = first.tmp.path().join("again");
    first.ok(&["export", "img", &Repo::oci(&again, "latest")]);
    assert_eq!(
        image_of(&again).0,
        image_of(&out).0,
        "the export of the import is the encapsulation"
    );
    tally.borrow_mut().accepted += 1;
}

#[test]
fn any_commit_encapsulates_to_the_identical_commit() {
    let tally = RefCell::new(Tally::default());
    runner(24)
        .run(&case(), |c| {
            encapsulate_case(&c, &tally);
            Ok(())
        })
        .unwrap();
    tally.borrow().report("encapsulate");
}

/// Path components of random images: few, so that entries of different layers meet.
const COMPONENTS: &[&str] = &["a", "b", "c d", "é", ".h"];

fn image_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(COMPONENTS), 1..=3).prop_map(|c| c.join("/"))
}

/// One tar entry: a file or directory of any mode, owner and xattrs, a symlink, a hardlink, a
/// whiteout, an opaque marker or a FIFO.
fn entry() -> impl Strategy<Value = E> {
    let owner = || prop::sample::select(vec![0u64, 0, 1000, 65534, 2_097_152]);
    let xattrs = || {
        prop::collection::btree_map(
            prop::sample::select(vec!["user.a", "user.b", "trusted.t"]),
            prop_oneof![1 => Just(vec![]), 6 => prop::collection::vec(any::<u8>(), 1..8)],
            0..2,
        )
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    };
    let data = prop_oneof![
        Just(vec![]),
        Just(b"same\n".to_vec()),
        prop::collection::vec(any::<u8>(), 0..16),
    ];
    let target = prop::sample::select(vec![
        "a", "/a", "../a", "b/c d", "nowhere", ".", "/", "a/b", "../../..", "é",
    ]);
    prop_oneof![
        5 => (image_path(), data, 0u32..0o10000, owner(), owner(), xattrs()).prop_map(
            |(path, data, mode, uid, gid, xattrs)| E::File { path, data, mode, uid, gid, xattrs }
        ),
        3 => (image_path(), 0u32..0o10000, owner(), owner(), xattrs())
            .prop_map(|(path, mode, uid, gid, xattrs)| E::Dir { path, mode, uid, gid, xattrs }),
        2 => (image_path(), target).prop_map(|(p, t)| symlink(&p, t)),
        2 => (image_path(), image_path()).prop_map(|(p, t)| hardlink(&p, &t)),
        2 => image_path().prop_map(|p| whiteout(&p)),
        1 => image_path().prop_map(|p| opaque(&p)),
        1 => image_path().prop_map(|path| E::Fifo { path }),
    ]
}

/// A random image: 1–3 layers, each compressed its own way.
#[derive(Clone, Debug)]
struct ImageCase {
    /// Docker media types (gzip or none: docker has no zstd type).
    docker: bool,
    /// Whether [`make_placeable`] rewrote the layers (shown as rewritten).
    placeable: bool,
    layers: Vec<(Comp, Vec<E>)>,
}

fn image_case() -> impl Strategy<Value = ImageCase> {
    let comp = prop::sample::select(vec![
        Comp::None,
        Comp::Gzip,
        Comp::GzipMulti,
        Comp::ZstdMulti,
    ]);
    (
        prop::bool::weighted(0.2),
        prop::collection::vec((comp, prop::collection::vec(entry(), 0..8)), 1..=3),
        // most layers are made placeable, the rest left as drawn (mostly refused)
        prop::bool::weighted(0.75),
    )
        .prop_map(|(docker, mut layers, placeable)| {
            if docker {
                for (c, _) in &mut layers {
                    if *c == Comp::ZstdMulti {
                        *c = Comp::Gzip;
                    }
                }
            }
            if placeable {
                make_placeable(&mut layers);
            }
            ImageCase {
                docker,
                placeable,
                layers,
            }
        })
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    Dir,
    File,
    Other,
}

/// Rewrites random layers so that README "Layer rules" accepts most of them: a parent that is
/// no directory at that point is made one by a directory entry (an entry below a file or
/// symlink is refused, and the ones below symlinks loop), a hardlink takes a file that exists
/// (else it becomes a file), and a non-directory that would replace a directory its own layer
/// wrote entries below is dropped.
fn make_placeable(layers: &mut [(Comp, Vec<E>)]) {
    let mut model: BTreeMap<String, Kind> = BTreeMap::new();
    let below = |p: &str, d: &str| p.starts_with(&format!("{d}/"));
    for (_, es) in layers.iter_mut() {
        let mut out = vec![];
        let mut parents = std::collections::BTreeSet::new();
        // a layer's markers act before its entries (README "Layer semantics")
        for (t, opaque) in es.iter().filter_map(marker_target) {
            model.retain(|k, _| !(below(k, &t) || (!opaque && *k == t)));
        }
        for e in es.drain(..) {
            let p = entry_path(&e).to_string();
            let comps: Vec<&str> = p.split('/').collect();
            for i in 1..comps.len() {
                let a = comps[..i].join("/");
                match model.get(&a) {
                    Some(Kind::Dir) => {}
                    Some(_) => {
                        out.push(dir(&a));
                        model.retain(|k, _| !below(k, &a));
                        model.insert(a.clone(), Kind::Dir);
                    }
                    None => {
                        model.insert(a.clone(), Kind::Dir);
                    }
                }
                parents.insert(a);
            }
            if marker_target(&e).is_some() {
                out.push(e);
                continue;
            }
            let kind = match &e {
                E::Dir { .. } => Kind::Dir,
                E::File { .. } | E::Hardlink { .. } => Kind::File,
                _ => Kind::Other,
            };
            if kind != Kind::Dir && parents.contains(&p) {
                continue;
            }
            let e = match e {
                E::Hardlink { path, target } => {
                    let to = if target != path && model.get(&target) == Some(&Kind::File) {
                        Some(target)
                    } else {
                        model
                            .iter()
                            .find(|(k, v)| **v == Kind::File && **k != path)
                            .map(|(k, _)| k.clone())
                    };
                    match to {
                        Some(t) => hardlink(&path, &t),
                        None => file(&path, b"no file to link to"),
                    }
                }
                e => e,
            };
            if kind != Kind::Dir {
                model.retain(|k, _| !below(k, &p));
            }
            model.insert(p, kind);
            out.push(e);
        }
        *es = out;
    }
}

/// The path a whiteout or opaque marker entry acts on (`Some("")`: the root's children), if
/// the entry is one.
fn marker_target(e: &E) -> Option<(String, bool)> {
    let E::File { path, .. } = e else { return None };
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    if name == ".wh..wh..opq" {
        Some((dir.to_string(), true))
    } else {
        name.strip_prefix(".wh.").map(|n| {
            let p = if dir.is_empty() {
                n.to_string()
            } else {
                format!("{dir}/{n}")
            };
            (p, false)
        })
    }
}

fn entry_path(e: &E) -> &str {
    match e {
        E::File { path, .. }
        | E::Dir { path, .. }
        | E::Symlink { path, .. }
        | E::Hardlink { path, .. }
        | E::Char { path, .. }
        | E::Fifo { path } => path,
        E::RawFile { .. } => "",
    }
}

/// Whether umoci 0.4.7 is an oracle for the image: OCI media types and no zstd (it reads
/// neither docker manifests nor zstd layers), no FIFOs (OSTree cannot store them: README
/// "Skipped entries own their path"), and no marker of a layer that meets that layer's own
/// entries (ocitree applies a layer's markers before its entries, README "Layer semantics";
/// umoci in tar order). Nor an empty xattr value: umoci (Go's archive/tar, where an empty PAX
/// value deletes the record) drops the xattr, GNU tar and ocitree keep it, empty; README's
/// "Headers tar readers read differently are refused" does not list it (reported). Nor an
/// entry two levels below a setgid directory: the implicit directory between them inherits
/// setgid and group from its parent under umoci (which sets a directory's mode when it meets
/// it), not under GNU tar (which sets it at the end) nor ocitree (0755 root:root). Nor a
/// hardlink written before its target in the same layer: ocitree links it (README "Hardlinks
/// in any order within a layer"), umoci and GNU tar fail on it.
fn umoci_comparable(c: &ImageCase) -> bool {
    let forward_link = |es: &[E]| {
        es.iter().enumerate().any(|(i, e)| match e {
            E::Hardlink { target, .. } => {
                !es[..i].iter().any(|b| entry_path(b) == target)
                    && es[i + 1..].iter().any(|b| entry_path(b) == target)
            }
            _ => false,
        })
    };
    let setgid_dirs: Vec<&str> = c
        .layers
        .iter()
        .flat_map(|(_, es)| es)
        .filter_map(|e| match e {
            E::Dir { path, mode, .. } if mode & 0o2000 != 0 => Some(path.as_str()),
            _ => None,
        })
        .collect();
    let deep_below_setgid = |e: &E| {
        setgid_dirs.iter().any(|d| {
            entry_path(e)
                .strip_prefix(&format!("{d}/"))
                .is_some_and(|rest| rest.contains('/'))
        })
    };
    let under = |p: &str, d: &str| d.is_empty() || p == d || p.starts_with(&format!("{d}/"));
    let unreadable = |e: &E| match e {
        _ if deep_below_setgid(e) => true,
        E::Fifo { .. } | E::Char { .. } => true,
        E::File { xattrs, .. } | E::Dir { xattrs, .. } => xattrs.iter().any(|(_, v)| v.is_empty()),
        _ => false,
    };
    !c.docker
        && c.layers.iter().all(|(comp, es)| {
            *comp != Comp::ZstdMulti
                && !forward_link(es)
                && !es.iter().any(unreadable)
                && es.iter().filter_map(marker_target).all(|(t, _)| {
                    es.iter()
                        .filter(|e| marker_target(e).is_none())
                        .all(|e| !under(entry_path(e), &t) && !under(&t, entry_path(e)))
                })
        })
}

/// The reason of an import error: what follows the entry's name, else the last clause, with
/// quoted names left out (so that refusals count by kind).
fn reason(stderr: &str) -> String {
    let line = stderr.lines().next().unwrap_or("");
    let r = match line.rfind("\": ") {
        Some(i) => &line[i + 3..],
        None => line.rsplit(": ").next().unwrap_or(line),
    };
    let mut out = String::new();
    for (i, part) in r.split('"').enumerate() {
        out.push_str(if i % 2 == 1 { "\"…\"" } else { part });
    }
    out.chars().take(80).collect()
}

/// Property B: import → export gives the config and layer tars back; the export re-imports
/// to the same tree and exports to the same manifest.
fn export_case(c: &ImageCase, tally: &RefCell<Tally>) {
    let tmp = tempdir();
    let dir = tmp.path().join("img");
    let layers: Vec<Layer> = c
        .layers
        .iter()
        .map(|(comp, es)| Layer::with(tar_of(es), *comp, c.docker))
        .collect();
    let mut l = Layout::new(&dir);
    let m = l.image(&layers, c.docker);
    l.add(m, Some("latest"), None);

    let repo = Repo::new();
    let before = repo.snapshot();
    let src = Repo::oci(&dir, "latest");
    let r = repo.run(&["import", &src, "img"]);
    assert!(!r.stderr.contains("panicked"), "panic: {r:?}");
    if r.code == 2 {
        assert!(r.stderr.starts_with("error: "), "{r:?}");
        before.assert_unchanged(&repo.path);
        *tally
            .borrow_mut()
            .refused
            .entry(format!(
                "{}{}",
                if c.placeable { "placeable: " } else { "" },
                reason(&r.stderr)
            ))
            .or_default() += 1;
        return;
    }
    assert_eq!(r.code, 0, "import: exit 0 or 2: {r:?}");
    tools::fsck(&repo.path);
    let commit = r.commit();

    let out = tmp.path().join("out");
    let e = repo.ok(&["export", "img", &Repo::oci(&out, "latest")]);
    let (orig, orig_digest) = manifest_of(&dir, "latest");
    let (new, new_digest) = manifest_of(&out, "latest");
    assert_eq!(
        new["config"]["digest"], orig["config"]["digest"],
        "the config byte for byte"
    );
    let new_layers = new["layers"].as_array().unwrap();
    assert_eq!(new_layers.len(), layers.len());
    for (i, (nl, ol)) in new_layers.iter().zip(&layers).enumerate() {
        let d = nl["digest"].as_str().unwrap();
        assert!(
            layer_tar(&out, d) == ol.tar,
            "layer {i}: the tar byte for byte"
        );
        let blob = blob(&out, d);
        match c.layers[i].0 {
            Comp::None => assert_eq!(blob, ol.blob, "layer {i}: uncompressed, kept"),
            Comp::Gzip | Comp::GzipMulti => assert!(blob.starts_with(&[0x1f, 0x8b]), "{i}: gzip"),
            Comp::ZstdMulti => assert!(blob.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]), "{i}: zstd"),
        }
    }
    let unchanged = e.stdout.contains("manifest digest unchanged");
    assert_eq!(
        unchanged,
        new_digest == orig_digest,
        "export says whether the manifest digest stayed: {e:?}"
    );
    if !c.docker && c.layers.iter().all(|(comp, _)| *comp == Comp::None) {
        assert!(unchanged, "every layer kept its blob: {e:?}");
    }

    // the export imports to the same tree (the identical commit where the manifest stayed),
    // and exports again to the same manifest
    let fresh = Repo::with_mode("archive");
    let back = fresh.import(&Repo::oci(&out, "latest"), "back").commit();
    tools::fsck(&fresh.path);
    assert_eq!(
        content_checksum(&fresh.path, &back),
        content_checksum(&repo.path, &commit),
        "the export re-imports to the same tree"
    );
    if unchanged {
        assert_eq!(back, commit, "the same image gives the same commit");
    }
    let out2 = tmp.path().join("out2");
    fresh.ok(&["export", "back", &Repo::oci(&out2, "latest")]);
    assert_eq!(
        manifest_of(&out2, "latest").1,
        new_digest,
        "an export of the export is the export"
    );

    if umoci_comparable(c) {
        // (random layers may well merge to an empty tree)
        repo.compare_with_umoci(&commit, &dir, "latest", |a, b| {
            tree::assert_equal(a, b);
        });
        tally.borrow_mut().oracle += 1;
    }
    tally.borrow_mut().accepted += 1;
}

#[test]
fn any_image_exports_its_config_and_layer_tars() {
    let tally = RefCell::new(Tally::default());
    runner(32)
        .run(&image_case(), |c| {
            export_case(&c, &tally);
            Ok(())
        })
        .unwrap();
    tally.borrow().report("export");
}
