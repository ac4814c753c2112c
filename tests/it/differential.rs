//! Differential property test: random stacks of 1–4 layers over a tiny path universe (names
//! `a`, `b`, `c`, nested up to depth 3, so paths collide across layers and types change often)
//! are imported with `ocitree` and compared with `umoci unpack` of the same OCI layout.
//!
//! Per case: files (modes 0644/0755/0600/04755, two owners), directories (several modes),
//! symlinks (relative, absolute, to generated paths, dangling), hardlinks to a file written
//! earlier in the same layer, whiteouts and opaque markers (the root's too). Most layers are
//! in the order tar writers emit (one entry per path, parents first, explicit parent
//! directories or implicit ones); some are in generated order, duplicates included.
//!
//! Outcomes: ocitree imports and its checkout equals umoci's rootfs exactly (type, mode,
//! owner, xattrs, content, symlink target); or ocitree refuses cleanly (exit 2, an `error:`
//! line, the repository unchanged). ocitree importing what umoci cannot unpack is a failure.
//! Most cases must be compared, not refused: the counts are printed and checked.
//!
//! Cases: 32 by default; `PROPTEST_CASES=1000 cargo test --test it differential::` runs more.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::util::mutate::fuzz_cases;
use crate::util::*;

/// One generated change. Paths are relative, `/`-separated, from the names `a`, `b`, `c`.
#[derive(Clone, Debug)]
enum Op {
    /// path, mode, owner (uid = gid), content number
    File(String, u32, u64, u8),
    /// path, mode, owner
    Dir(String, u32, u64),
    Symlink(String, String),
    /// path, which earlier file of the layer (modulo their count); dropped if there is none
    Hardlink(String, usize),
    Whiteout(String),
    /// the directory whose lower children are hidden; `""` is the root
    Opaque(String),
}

/// How a layer's entries are ordered.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// As tar writers emit a diff: one entry per path, sorted by path components (parents
    /// first), nothing below a non-directory of the layer; with `parents`, every ancestor
    /// the layer does not name is written as a directory entry (0755), else left implicit.
    Sorted { parents: bool },
    /// The generated order, duplicates and all.
    AsGenerated,
}

#[derive(Clone, Debug)]
struct LayerSpec {
    ops: Vec<Op>,
    order: Order,
}

/// A tar entry of a generated layer, after ordering and hardlink resolution.
#[derive(Clone)]
enum Ent {
    File(String, u32, u64, u8),
    Dir(String, u32, u64),
    Symlink(String, String),
    Hardlink(String, String),
    Whiteout(String),
    Opaque(String),
}

impl Ent {
    /// The member name in the tar.
    fn tar_path(&self) -> String {
        match self {
            Ent::File(p, ..) | Ent::Dir(p, ..) | Ent::Symlink(p, _) | Ent::Hardlink(p, _) => {
                p.clone()
            }
            Ent::Whiteout(p) => match p.rsplit_once('/') {
                Some((d, n)) => format!("{d}/.wh.{n}"),
                None => format!(".wh.{p}"),
            },
            Ent::Opaque(d) if d.is_empty() => ".wh..wh..opq".into(),
            Ent::Opaque(d) => format!("{d}/.wh..wh..opq"),
        }
    }

    fn data(n: u8) -> Vec<u8> {
        if n == 0 {
            vec![]
        } else {
            format!("c{n}\n").into_bytes()
        }
    }

    fn to_e(&self) -> E {
        match self {
            Ent::File(p, mode, o, n) => file_mode(p, &Ent::data(*n), *mode, *o, *o),
            Ent::Dir(p, mode, o) => dir_meta(p, *mode, *o, *o, &[]),
            Ent::Symlink(p, t) => symlink(p, t),
            Ent::Hardlink(p, t) => hardlink(p, t),
            Ent::Whiteout(_) | Ent::Opaque(_) => file(&self.tar_path(), b""),
        }
    }
}

/// Printed as the `tests/it/util` helper calls that build the same entry, so a failing case
/// pastes into a hand-written test.
impl fmt::Debug for Ent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ent::File(p, mode, o, n) => write!(
                f,
                "file_mode({p:?}, b{:?}, 0o{mode:o}, {o}, {o})",
                String::from_utf8(Ent::data(*n)).unwrap()
            ),
            Ent::Dir(p, mode, o) => write!(f, "dir_meta({p:?}, 0o{mode:o}, {o}, {o}, &[])"),
            Ent::Symlink(p, t) => write!(f, "symlink({p:?}, {t:?})"),
            Ent::Hardlink(p, t) => write!(f, "hardlink({p:?}, {t:?})"),
            Ent::Whiteout(p) => write!(f, "whiteout({p:?})"),
            Ent::Opaque(d) if d.is_empty() => write!(f, "file(\".wh..wh..opq\", b\"\")"),
            Ent::Opaque(d) => write!(f, "opaque({d:?})"),
        }
    }
}

fn components(p: &str) -> Vec<&str> {
    p.split('/').collect()
}

impl LayerSpec {
    /// The layer's tar entries, in tar order.
    fn entries(&self) -> Vec<Ent> {
        let raw: Vec<Ent> = self
            .ops
            .iter()
            .map(|op| match op {
                Op::File(p, m, o, n) => Ent::File(p.clone(), *m, *o, *n),
                Op::Dir(p, m, o) => Ent::Dir(p.clone(), *m, *o),
                Op::Symlink(p, t) => Ent::Symlink(p.clone(), t.clone()),
                // resolved below, once the order is known
                Op::Hardlink(p, i) => Ent::Hardlink(p.clone(), i.to_string()),
                Op::Whiteout(p) => Ent::Whiteout(p.clone()),
                Op::Opaque(d) => Ent::Opaque(d.clone()),
            })
            .collect();
        let ordered = match self.order {
            Order::AsGenerated => raw,
            Order::Sorted { parents } => {
                // one entry per member name, the last generated wins
                let mut by_path: BTreeMap<Vec<String>, Ent> = BTreeMap::new();
                for e in raw {
                    let key = components(&e.tar_path())
                        .into_iter()
                        .map(String::from)
                        .collect();
                    by_path.insert(key, e);
                }
                // a diff has nothing below a non-directory it writes
                let non_dirs: BTreeSet<Vec<String>> = by_path
                    .iter()
                    .filter(|(_, e)| {
                        matches!(e, Ent::File(..) | Ent::Symlink(..) | Ent::Hardlink(..))
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                by_path.retain(|k, _| !(1..k.len()).any(|i| non_dirs.contains(&k[..i])));
                if parents {
                    let keys: Vec<Vec<String>> = by_path.keys().cloned().collect();
                    for k in keys {
                        for i in 1..k.len() {
                            by_path
                                .entry(k[..i].to_vec())
                                .or_insert_with(|| Ent::Dir(k[..i].join("/"), 0o755, 0));
                        }
                    }
                }
                by_path.into_values().collect()
            }
        };
        // hardlinks name a file written earlier in the layer
        let mut files: Vec<String> = vec![];
        let mut out = vec![];
        for e in ordered {
            match e {
                Ent::File(ref p, ..) => {
                    files.push(p.clone());
                    out.push(e);
                }
                Ent::Hardlink(p, i) => {
                    // A link to its own path is generated too: umoci (and containerd) remove
                    // the path before linking and fail with ENOENT, and ocitree refuses it.
                    let targets: Vec<&String> = files.iter().collect();
                    if !targets.is_empty() {
                        let i: usize = i.parse().unwrap();
                        out.push(Ent::Hardlink(p, targets[i % targets.len()].clone()));
                    }
                }
                e => out.push(e),
            }
        }
        out
    }
}

/// A generated image: its layers, bottom first.
#[derive(Clone)]
struct Case(Vec<LayerSpec>);

impl Case {
    fn layers(&self) -> Vec<Vec<Ent>> {
        self.0.iter().map(LayerSpec::entries).collect()
    }
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "vec![")?;
        for (spec, entries) in self.0.iter().zip(self.layers()) {
            writeln!(f, "    // {:?}", spec.order)?;
            writeln!(f, "    vec![")?;
            for e in entries {
                writeln!(f, "        {e:?},")?;
            }
            writeln!(f, "    ],")?;
        }
        write!(f, "]")
    }
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b", "c"]), 1..=3)
        .prop_map(|v| v.join("/"))
}

fn symlink_target() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (0..3usize, path()).prop_map(|(up, p)| format!("{}{p}", "../".repeat(up))),
        3 => path().prop_map(|p| format!("/{p}")),
        1 => prop::sample::select(vec!["nowhere", "/missing/x", ".", "..", "../../..", "/"])
            .prop_map(String::from),
    ]
}

fn owner() -> impl Strategy<Value = u64> {
    prop_oneof![3 => Just(0u64), 1 => Just(1000u64)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            path(),
            prop::sample::select(vec![0o644u32, 0o755, 0o600, 0o4755]),
            owner(),
            0..4u8,
        )
            .prop_map(|(p, m, o, n)| Op::File(p, m, o, n)),
        3 => (
            path(),
            prop::sample::select(vec![0o755u32, 0o700, 0o750, 0o1777, 0o555]),
            owner(),
        )
            .prop_map(|(p, m, o)| Op::Dir(p, m, o)),
        3 => (path(), symlink_target()).prop_map(|(p, t)| Op::Symlink(p, t)),
        1 => (path(), any::<usize>()).prop_map(|(p, i)| Op::Hardlink(p, i)),
        2 => path().prop_map(Op::Whiteout),
        1 => prop_oneof![4 => path(), 1 => Just(String::new())].prop_map(Op::Opaque),
    ]
}

fn layer() -> impl Strategy<Value = LayerSpec> {
    let order = prop_oneof![
        3 => Just(Order::Sorted { parents: true }),
        1 => Just(Order::Sorted { parents: false }),
        1 => Just(Order::AsGenerated),
    ];
    (prop::collection::vec(op(), 1..=8), order).prop_map(|(ops, order)| LayerSpec { ops, order })
}

fn case() -> impl Strategy<Value = Case> {
    prop::collection::vec(layer(), 1..=4).prop_map(Case)
}

/// What happened to the generated cases of one run.
#[derive(Default, Debug)]
struct Counts {
    /// imported, and equal to umoci's unpack
    compared: u32,
    /// refused by ocitree, unpacked by umoci
    refused: u32,
    /// refused by both
    refused_both: u32,
    /// ocitree's refusal messages (first line, paths left in), with how often each came
    reasons: BTreeMap<String, u32>,
}

/// `ours` against `oracle`, path by path, as `tree::assert_same` compares them.
fn tree_diff(ours: &Path, oracle: &Path) -> Vec<String> {
    let (a, b) = (tree::walk(ours), tree::walk(oracle));
    a.keys()
        .chain(b.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "  {k}:\n    ocitree: {:?}\n    umoci:   {:?}",
                a.get(k),
                b.get(k)
            )
        })
        .collect()
}

/// Imports the case into a fresh repo, unpacks it with umoci, and checks the outcomes agree.
fn check(work: &Path, layers: &[Vec<E>], counts: &RefCell<Counts>) -> Result<(), TestCaseError> {
    let layers: Vec<Layer> = layers.iter().map(|l| Layer::new(l)).collect();
    let img = work.join("img");
    Layout::single(&img, &layers);

    let repo = Repo::new();
    let snap = repo.snapshot();
    let r = repo.run(&["import", &Repo::oci(&img, "latest"), "img"]);
    prop_assert!(!r.stderr.contains("panicked"), "panic: {r:?}");

    let bundle = work.join("bundle");
    let umoci = Command::new("umoci")
        .args(["unpack", "--image"])
        .arg(format!("{}:latest", img.display()))
        .arg(&bundle)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let umoci_err = String::from_utf8_lossy(&umoci.stderr).into_owned();

    match r.code {
        0 => {
            prop_assert!(
                umoci.status.success(),
                "ocitree imported what umoci refuses: {umoci_err}"
            );
            let ours = work.join("ours");
            tools::ostree_checkout(&repo.path, &r.commit(), &ours);
            let diffs = tree_diff(&ours, &bundle.join("rootfs"));
            prop_assert!(
                diffs.is_empty(),
                "{} paths differ:\n{}",
                diffs.len(),
                diffs.join("\n")
            );
            tools::fsck(&repo.path);
            counts.borrow_mut().compared += 1;
        }
        2 => {
            prop_assert!(r.stderr.starts_with("error: "), "{r:?}");
            snap.assert_unchanged(&repo.path);
            let mut n = counts.borrow_mut();
            if umoci.status.success() {
                n.refused += 1;
            } else {
                n.refused_both += 1;
            }
            // the message past the image and layer names, which differ in every case
            let first = r.stderr.lines().next().unwrap_or("");
            let reason = match first.find("layer sha256:") {
                Some(i) => first[i + 79..].to_string(),
                None => first.to_string(),
            };
            *n.reasons.entry(reason).or_default() += 1;
        }
        code => prop_assert!(false, "exit {code}: {r:?}"),
    }
    Ok(())
}

#[test]
fn random_layer_stacks_match_umoci() {
    tools::require("umoci");
    tools::require("ostree");
    let tmp = tempdir();
    let counts = RefCell::new(Counts::default());
    let mut runner = TestRunner::new(Config {
        cases: fuzz_cases(32),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&case(), |c| {
        let work = tmp.path().join("case");
        let layers: Vec<Vec<E>> = c
            .layers()
            .iter()
            .map(|l| l.iter().map(Ent::to_e).collect())
            .collect();
        let r = check(&work, &layers, &counts);
        std::fs::remove_dir_all(&work).unwrap();
        r
    });
    let n = counts.into_inner();
    eprintln!(
        "differential: {} compared with umoci, {} refused by ocitree alone, {} refused by both",
        n.compared, n.refused, n.refused_both
    );
    for (reason, k) in &n.reasons {
        eprintln!("  {k} × {reason}");
    }
    if let Err(e) = result {
        panic!("{e}");
    }
    // a generator whose cases are mostly refused would prove little
    let total = n.compared + n.refused + n.refused_both;
    assert!(
        n.compared * 2 >= total,
        "only {} of {total} cases were compared",
        n.compared
    );
}

/// Divergences the property found (ocitree's tree differed from umoci's, or ocitree imported
/// what umoci cannot unpack), minimised: each passes when ocitree gives umoci's tree or
/// refuses the image cleanly, as it now does.
fn known(layers: &[Vec<E>]) {
    let tmp = tempdir();
    let counts = RefCell::new(Counts::default());
    if let Err(e) = check(&tmp.path().join("case"), layers, &counts) {
        panic!("{e}");
    }
}

/// A marker of a layer removes an entry of the same layer that reached the marker's
/// directory through a lower symlink (at a name sorting before it): ocitree drops `c/x`,
/// umoci keeps it (markers apply only to lower layers).
#[test]
fn found_marker_removes_same_layer_entry_through_lower_symlink() {
    let lower = vec![dir("c"), file("c/old", b"o"), symlink("a", "c")];
    known(&[lower.clone(), vec![file("a/x", b"x"), opaque("c")]]);
    known(&[lower, vec![file("a/x", b"x"), whiteout("c/x")]]);
}

/// A directory named after entries below it, then replaced by a non-directory, over a lower
/// symlink or file: in tar order the entries went through the symlink (`x/a`) or failed;
/// ocitree drops them (or imports what umoci refuses) instead of refusing the layer.
#[test]
fn found_late_directory_then_replaced() {
    let through = vec![dir("x"), symlink("c", "x")];
    known(&[
        through.clone(),
        vec![file("c/a", b"A"), dir("c"), symlink("c", "a")],
    ]);
    known(&[through, vec![file("c/a", b"A"), dir("c"), file("c", b"F")]]);
    known(&[
        vec![file("c", b"")],
        vec![dir("c/a"), dir("c"), symlink("c", "a")],
    ]);
}

/// A marker after entries below the path it acts on, in the same layer: in tar order (umoci,
/// containerd) the entries went through the lower symlink (`x/a`, then the symlink is
/// removed), failed on the lower file, or kept the lower directory `b/d` (mode 0700) that the
/// opaque marker then spared; ocitree applies the marker first (a new `c/a`, `b/d` 0755).
/// The result depends on the order; the image-spec only says markers SHOULD come first.
#[test]
fn found_marker_after_entries_below_it() {
    known(&[
        vec![dir("x"), symlink("c", "x")],
        vec![file("c/a", b"A"), whiteout("c")],
    ]);
    known(&[vec![file("c", b"")], vec![file("c/a", b"A"), whiteout("c")]]);
    known(&[
        vec![dir("b"), dir_meta("b/d", 0o700, 0, 0, &[])],
        vec![file("b/d/x", b"A"), opaque("b")],
    ]);
}

/// A whiteout below a lower symlink that loops (`c -> /c`): umoci (and containerd) cannot
/// resolve where the marker acts and refuse the image; ocitree took the marker for a no-op.
/// Both refuse it now, as they refuse content below such a symlink.
#[test]
fn found_marker_below_a_symlink_loop() {
    known(&[vec![symlink("c", "/c")], vec![whiteout("c/a")]]);
    known(&[vec![symlink("c", "c")], vec![opaque("c")]]);
    known(&[
        vec![symlink("c", "a"), symlink("a", "c/x")],
        vec![whiteout("c/a/b")],
    ]);
}

/// Content written through a lower symlink (`a/b -> ../c`) whose target the same layer makes
/// a symlink (`c -> a/a`) after it: in tar order the file went to `c/a`, which the symlink
/// then replaced; ocitree resolved through the layer's own symlink and wrote `a/a/a`, a tree
/// no order of the tar gives umoci. Refused now, as is any entry reached through a lower
/// symlink at a path the same layer changes (a file, a symlink, a directory over a lower
/// symlink or file): which the tar has first decides where the entry lands.
#[test]
fn found_content_through_a_lower_symlink_into_what_the_layer_replaces() {
    let lower = vec![dir("a"), symlink("a/b", "../c")];
    known(&[lower.clone(), vec![file("a/b/a", b""), symlink("c", "a/a")]]);
    known(&[lower.clone(), vec![symlink("c", "a/a"), file("a/b/a", b"")]]);
    known(&[
        vec![
            dir("a"),
            symlink("a/b", "../c"),
            symlink("c", "e"),
            dir("e"),
        ],
        vec![file("a/b/x", b"x"), dir("c")],
    ]);
    known(&[
        vec![dir("a"), symlink("a/b", "../c"), file("c", b"f")],
        vec![dir("c"), file("a/b/x", b"x")],
    ]);
}

/// A hardlink whose target leads through the link's own path (`b -> c`, `b/a`, then hardlink
/// `b` to `b/a`): extracting, umoci and GNU tar remove what is at `b` before they link, and
/// then find no `b/a`. ocitree linked `c/a`; it refuses now, as they fail.
#[test]
fn found_hardlink_through_its_own_path() {
    known(&[vec![
        symlink("b", "c"),
        file("b/a", b""),
        hardlink("b", "b/a"),
    ]]);
    known(&[vec![dir("b"), file("b/a", b"x"), hardlink("b", "b/a")]]);
    known(&[vec![
        dir("c"),
        file("c/a", b"x"),
        symlink("b", "c"),
        symlink("d", "b"),
        hardlink("b", "d/a"),
    ]]);
}

/// Entries of one layer that meet in one merged directory under two names: through a lower
/// symlink (`c -> .`, so `c/a` is `a`) and directly (`a/a`). In tar order umoci made the
/// symlink `a -> a` first and then failed below it; ocitree applied `a/a` first and let the
/// symlink replace it. Which the tar has first decides, so the layer is refused.
#[test]
fn found_one_layer_writing_one_path_under_two_names() {
    known(&[
        vec![symlink("c", ".")],
        vec![symlink("c/a", "a"), dir_meta("a/a", 0o755, 0, 0, &[])],
    ]);
    known(&[
        vec![dir("d"), symlink("c", "d")],
        vec![file("c/x", b"1"), file("d/x", b"2")],
    ]);
    known(&[
        vec![dir("d"), file("d/old", b"o"), symlink("c", "d")],
        vec![file("c/x", b"1"), opaque("d")],
    ]);
}

/// An entry of a layer that lands, through a lower symlink, on that symlink itself (`a -> .`,
/// then the directory `a/a`, which is `a`): umoci replaced the symlink with the directory
/// and wrote `a/c` into it; ocitree resolved `a` once and wrote `c` at the root. Refused: the
/// tar's order decides.
#[test]
fn found_entry_landing_on_its_own_symlink() {
    known(&[
        vec![symlink("a", ".")],
        vec![
            dir_meta("a/a", 0o755, 0, 0, &[]),
            file("a/c", b""),
            file("b", b""),
        ],
    ]);
    known(&[
        vec![symlink("a", "."), file("x", b"")],
        vec![file("a/c", b""), whiteout("x")],
    ]);
}

/// A directory the tar named (`c`), an entry below it through a directory it never named
/// (`c/c/a`, over the lower file `c/c`), then a file replacing `c`: in tar order the entry
/// failed on the lower file (or, over a lower symlink, went where it led); ocitree dropped it
/// with the directory and imported. Refused now over a lower non-directory.
#[test]
fn found_dropped_entries_below_a_replaced_directory() {
    let lower = vec![dir_meta("c", 0o755, 0, 0, &[]), file("c/c", b"")];
    known(&[
        lower,
        vec![
            dir_meta("c", 0o755, 0, 0, &[]),
            dir_meta("c/c/a", 0o755, 0, 0, &[]),
            file("c", b""),
        ],
    ]);
    known(&[
        vec![dir("c"), dir("x"), symlink("c/c", "/x")],
        vec![dir("c"), file("c/c/a", b"A"), file("c", b"")],
    ]);
}

/// Content through a lower symlink (`a -> c`) into a directory the layer made in place of its
/// own earlier symlink (`c -> a`, then `a/a`, then the directory `c`): in tar order the entry
/// met the layer's symlink loop and failed; ocitree, whose layer tree holds only the final
/// directory, wrote `c/a`. Refused: a directory in `replaced_dirs` counts as a change.
#[test]
fn found_content_through_a_lower_symlink_into_a_replaced_directory() {
    known(&[
        vec![symlink("a", "c")],
        vec![
            symlink("c", "a"),
            symlink("a/a", "a"),
            dir_meta("c", 0o755, 0, 0, &[]),
        ],
    ]);
}

/// A hardlink to its own path, named as such or reached through a symlink of the layer
/// (`c -> a`, `c/b`, then hardlink `a/b` to `c/b`): umoci and containerd remove `a/b` before
/// linking and fail; ocitree kept the file, as GNU tar does. Refused now, as they fail.
#[test]
fn found_hardlink_to_its_own_path() {
    known(&[vec![
        symlink("c", "a"),
        file("c/b", b""),
        hardlink("a/b", "c/b"),
    ]]);
    known(&[vec![file("a", b"x"), hardlink("a", "a")]]);
}

/// Two ways through lower symlinks into one real path (`c -> a`, `a/b -> c`, so `c/c` and
/// `a/b` both lead to `a/c`): the layer writes the symlink `c/c -> a`, then `a/b/a`, which in
/// tar order went through that new symlink (to `a/a/a`); ocitree applied `a/b/a` first and
/// let the symlink replace it. Refused: the tar's order decides.
#[test]
fn found_two_ways_into_one_path() {
    known(&[
        vec![dir_meta("a", 0o755, 0, 0, &[]), symlink("a/b", "c")],
        vec![symlink("c", "a")],
        vec![symlink("c/c", "a"), file("a/b/a", b"")],
    ]);
}
