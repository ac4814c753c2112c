//! One layer of an ostree native container → the OSTree objects it carries.
//!
//! The layer commit holds, under `sysroot/ostree/repo/objects/XX/`, one tree entry per
//! object the tar had, named `REST.KIND` where `XX` + `REST` is the object's checksum:
//!
//! | kind | the layer's file is | written as |
//! |---|---|---|
//! | `dirtree`, `dirmeta` | the object's serialised variant | that metadata object |
//! | `commit`, `commitmeta` | the commit object, its detached metadata | returned to the caller |
//! | `file-xattrs` | an `a(ayay)` variant, named by its SHA-256 | checked, not written |
//! | `file-xattrs-link` | a hardlink to the `file-xattrs` of the file object of the same name (or a copy) | the xattrs of that object |
//! | `file` | the file object's content, owner and mode (a symlink for a symlink object) | the file object, with the xattrs of its link |
//!
//! Every object is checked against the checksum its name gives: metadata objects by the
//! SHA-256 of their bytes, file objects by libostree while they stream into the repository.
//! A file object whose layer file has its checksum (no xattrs, or the same ones) is that
//! file already and costs nothing; one the repository has is not written again.

use ostree::gio::prelude::*;
use ostree::{ObjectType, Repo, gio, glib};

use crate::digest::Digest;
use crate::error::LayerError;
use crate::mtree::{DirtreeEntries, load_dirtree};

/// Where ostree-ext puts the objects in a layer.
const OBJECTS: [&str; 4] = ["sysroot", "ostree", "repo", "objects"];
/// Largest metadata object ostree accepts (`OSTREE_MAX_METADATA_SIZE`).
const MAX_METADATA: u64 = 10 * 1024 * 1024;
/// Largest xattrs object ostree-ext accepts.
const MAX_XATTRS: u64 = 1024 * 1024;

/// The commit objects and detached metadata one layer carries: (checksum, variant).
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub(super) commits: Vec<(String, glib::Variant)>,
    pub(super) commitmeta: Vec<(String, glib::Variant)>,
}

/// The path of object `checksum` of `kind` in a layer (where ostree-ext tar format v1 puts
/// it; `ocitree encapsulate --format ostree-native` writes the same).
pub(crate) fn object_path(checksum: &str, kind: &str) -> String {
    let (first, rest) = checksum.split_at(2.min(checksum.len()));
    format!("{}/{first}/{rest}.{kind}", OBJECTS.join("/"))
}

fn ostree_err<'a>(
    object: &'a str,
    op: &'static str,
) -> impl FnOnce(glib::Error) -> LayerError + 'a {
    move |cause| LayerError::Ostree {
        path: object.to_string(),
        op,
        cause,
    }
}

fn dirtree(repo: &Repo, csum: &str, path: &str) -> Result<DirtreeEntries, LayerError> {
    load_dirtree(repo, csum)
        .map_err(ostree_err(path, "loading dirtree"))?
        .ok_or_else(|| LayerError::OstreeObject {
            object: path.to_string(),
            reason: "layer dirtree is not a dirtree".into(),
        })
}

/// The dirtree of `sysroot/ostree/repo/objects` in layer commit `commit`.
fn objects_dir(repo: &Repo, commit: &str) -> Result<String, LayerError> {
    let (v, _) = repo
        .load_commit(commit)
        .map_err(ostree_err("", "loading layer commit"))?;
    let (mut tree, _) = crate::repo::commit_root(&v);
    for (depth, name) in OBJECTS.iter().enumerate() {
        let (_, dirs) = dirtree(repo, &tree, &OBJECTS[..depth].join("/"))?;
        tree = dirs
            .into_iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, c, _)| c)
            .ok_or_else(|| LayerError::OstreeObject {
                object: OBJECTS.join("/"),
                reason: "missing: not a layer of an ostree native container (tar format v1)".into(),
            })?;
    }
    Ok(tree)
}

/// The content of the layer's file object `csum` (at most `max` bytes).
fn small_content(repo: &Repo, csum: &str, object: &str, max: u64) -> Result<Vec<u8>, LayerError> {
    let (input, info, _) = repo
        .load_file(csum, gio::Cancellable::NONE)
        .map_err(ostree_err(object, "reading layer file"))?;
    let bad = |reason: String| LayerError::OstreeObject {
        object: object.to_string(),
        reason,
    };
    let input = match (input, info.file_type()) {
        (Some(i), gio::FileType::Regular) => i,
        _ => return Err(bad("not a regular file".into())),
    };
    let size = info.size() as u64;
    if size > max {
        return Err(bad(format!("{size} bytes, more than the {max} allowed")));
    }
    let mut buf = Vec::with_capacity(size as usize);
    std::io::Read::read_to_end(&mut input.into_read(), &mut buf).map_err(LayerError::Read)?;
    Ok(buf)
}

/// Writes every object of layer commit `commit` but the commit and its detached metadata,
/// which it returns.
///
/// # Errors
/// [`LayerError::OstreeObject`] naming the object when a name or object is malformed or an
/// object does not match its checksum; libostree failures.
pub(super) fn write_layer(repo: &Repo, commit: &str) -> Result<Found, LayerError> {
    let mut found = Found::default();
    let (_, shards) = dirtree(repo, &objects_dir(repo, commit)?, &OBJECTS.join("/"))?;
    for (shard, contents, _) in shards {
        let (files, subdirs) = dirtree(repo, &contents, &shard)?;
        if let Some((d, _, _)) = subdirs.first() {
            return Err(LayerError::OstreeObject {
                object: format!("{}/{shard}/{d}", OBJECTS.join("/")),
                reason: "a directory where objects are expected".into(),
            });
        }
        // Most file objects share a few xattrs objects (often the empty one): read each once.
        let mut xattrs_of: std::collections::HashMap<&str, Vec<u8>> =
            std::collections::HashMap::new();
        let link = |rest: &str| {
            let name = format!("{rest}.file-xattrs-link");
            files
                .binary_search_by(|(n, _)| n.as_str().cmp(&name))
                .ok()
                .map(|i| files[i].1.as_str())
        };
        for (name, csum) in &files {
            let object = format!("{}/{shard}/{name}", OBJECTS.join("/"));
            let bad = |reason: String| LayerError::OstreeObject {
                object: object.clone(),
                reason,
            };
            let (rest, kind) = name
                .split_once('.')
                .ok_or_else(|| bad("not an object name".into()))?;
            let checksum = format!("{shard}{rest}");
            if !super::is_checksum(&checksum) {
                return Err(bad("not an object name (XX/62 hex digits.KIND)".into()));
            }
            match kind {
                "file-xattrs-link" => {} // read with its file object
                "file-xattrs" => {
                    let data = small_content(repo, csum, &object, MAX_XATTRS)?;
                    check_sha256(&data, &checksum, &object)?;
                }
                "file" => {
                    let xattrs_file =
                        link(rest).ok_or_else(|| bad("no .file-xattrs-link beside it".into()))?;
                    if *csum == checksum {
                        // The layer's file is the object itself (same checksum, so the
                        // same content, owner, mode and xattrs): it is in the repository.
                        continue;
                    }
                    let xattrs = match xattrs_of.get(xattrs_file) {
                        Some(x) => x,
                        None => {
                            let x = small_content(repo, xattrs_file, &object, MAX_XATTRS)?;
                            xattrs_of.entry(xattrs_file).or_insert(x)
                        }
                    };
                    write_file(repo, csum, &checksum, xattrs, &object)?;
                }
                "dirtree" | "dirmeta" | "commit" | "commitmeta" => {
                    let data = small_content(repo, csum, &object, MAX_METADATA)?;
                    if kind == "commitmeta" {
                        let v = variant(data, glib::VariantTy::VARDICT, &object)?;
                        found.commitmeta.push((checksum, v));
                        continue;
                    }
                    check_sha256(&data, &checksum, &object)?;
                    let (ty, otype) = match kind {
                        "dirtree" => ("(a(say)a(sayay))", ObjectType::DirTree),
                        "dirmeta" => ("(uuua(ayay))", ObjectType::DirMeta),
                        _ => ("(a{sv}aya(say)sstayay)", ObjectType::Commit),
                    };
                    let ty = glib::VariantTy::new(ty).expect("valid type string");
                    let v = variant(data, ty, &object)?;
                    if otype == ObjectType::Commit {
                        found.commits.push((checksum, v));
                        continue;
                    }
                    let written = repo
                        .write_metadata(otype, Some(&checksum), &v, gio::Cancellable::NONE)
                        .map_err(ostree_err(&object, "writing metadata object"))?
                        .to_hex();
                    if written != checksum {
                        return Err(bad(format!("stored as {written}")));
                    }
                }
                _ => {
                    return Err(bad(format!(
                        "unknown object kind {kind:?} (ostree-ext tar format v0 is not read)"
                    )));
                }
            }
        }
    }
    Ok(found)
}

fn check_sha256(data: &[u8], checksum: &str, object: &str) -> Result<(), LayerError> {
    let found = Digest::sha256_of(data);
    if found.encoded() != checksum {
        return Err(LayerError::OstreeObject {
            object: object.to_string(),
            reason: format!("content hashes to {}, not to its name", found.encoded()),
        });
    }
    Ok(())
}

/// `data` as a normal-form variant of type `ty`.
fn variant(data: Vec<u8>, ty: &glib::VariantTy, object: &str) -> Result<glib::Variant, LayerError> {
    let v = glib::Variant::from_data_with_type(data, ty);
    if !v.is_normal_form() {
        return Err(LayerError::OstreeObject {
            object: object.to_string(),
            reason: format!("not a normal-form {ty} variant"),
        });
    }
    Ok(v)
}

/// Refuses xattrs (an `a(ayay)`, names NUL-terminated) that a checkout would set under
/// another name ([`crate::entries::xattrs::invalid`]): a NUL inside a name would set the
/// attribute named by the bytes before it.
fn check_xattrs(xattrs: &glib::Variant, object: &str) -> Result<(), LayerError> {
    for i in 0..xattrs.n_children() {
        let (name, _) = xattrs
            .child_value(i)
            .get::<(Vec<u8>, Vec<u8>)>()
            .expect("a normal-form a(ayay) holds (ayay) pairs");
        let name = name.strip_suffix(&[0]).unwrap_or(&name);
        if let Some(why) = crate::entries::xattrs::invalid(name) {
            let shown = crate::entries::path::escape_bytes(name);
            return Err(LayerError::OstreeObject {
                object: object.to_string(),
                reason: format!("extended attribute \"{shown}\": it {why}"),
            });
        }
    }
    Ok(())
}

/// Writes file object `checksum`: the layer's file `layer_csum` (content or symlink target,
/// owner, mode) with the xattrs `xattrs` (an `a(ayay)`'s bytes), streamed and checked.
fn write_file(
    repo: &Repo,
    layer_csum: &str,
    checksum: &str,
    xattrs: &[u8],
    object: &str,
) -> Result<(), LayerError> {
    if repo
        .has_object(ObjectType::File, checksum, gio::Cancellable::NONE)
        .map_err(ostree_err(object, "looking up file object"))?
    {
        return Ok(());
    }
    let xattrs = variant(
        xattrs.to_vec(),
        glib::VariantTy::new("a(ayay)").expect("valid type string"),
        object,
    )?;
    check_xattrs(&xattrs, object)?;
    let (input, info, _) = repo
        .load_file(layer_csum, gio::Cancellable::NONE)
        .map_err(ostree_err(object, "reading layer file"))?;
    let written = match (info.file_type(), input) {
        (gio::FileType::Regular, Some(input)) => {
            let (stream, len) = ostree::raw_file_to_content_stream(
                &input,
                &info,
                Some(&xattrs),
                gio::Cancellable::NONE,
            )
            .map_err(ostree_err(object, "preparing file object"))?;
            repo.write_content(Some(checksum), &stream, len, gio::Cancellable::NONE)
                .map_err(ostree_err(object, "writing file object"))?
                .to_hex()
        }
        (gio::FileType::SymbolicLink, _) => {
            let target = info.symlink_target().unwrap_or_default();
            let target = target.to_str().ok_or_else(|| LayerError::OstreeObject {
                object: object.to_string(),
                reason: "symlink target is not UTF-8".into(),
            })?;
            repo.write_symlink(
                Some(checksum),
                info.attribute_uint32("unix::uid"),
                info.attribute_uint32("unix::gid"),
                Some(&xattrs),
                target,
                gio::Cancellable::NONE,
            )
            .map_err(ostree_err(object, "writing symlink object"))?
            .to_string()
        }
        _ => {
            return Err(LayerError::OstreeObject {
                object: object.to_string(),
                reason: "neither a regular file nor a symlink".into(),
            });
        }
    };
    if written != checksum {
        return Err(LayerError::OstreeObject {
            object: object.to_string(),
            reason: format!("file object checksum is {written}, not its name"),
        });
    }
    Ok(())
}
