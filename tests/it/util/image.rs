//! Builds OCI image layouts in code: layers from entry lists, any compression, OCI or docker
//! media types, indexes with tags, platforms and nesting.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// One tar entry of a test layer.
#[derive(Clone, Debug)]
pub enum E {
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
        uid: u64,
        gid: u64,
        xattrs: Vec<(String, Vec<u8>)>,
    },
    Dir {
        path: String,
        mode: u32,
        uid: u64,
        gid: u64,
        xattrs: Vec<(String, Vec<u8>)>,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    Char {
        path: String,
        major: u32,
        minor: u32,
    },
    Fifo {
        path: String,
    },
    /// Raw header bytes path (non-UTF-8 names).
    RawFile {
        path: Vec<u8>,
        data: Vec<u8>,
    },
}

pub fn file(path: &str, data: &[u8]) -> E {
    E::File {
        path: path.into(),
        data: data.to_vec(),
        mode: 0o644,
        uid: 0,
        gid: 0,
        xattrs: vec![],
    }
}
pub fn file_mode(path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> E {
    E::File {
        path: path.into(),
        data: data.to_vec(),
        mode,
        uid,
        gid,
        xattrs: vec![],
    }
}
pub fn file_xattrs(path: &str, data: &[u8], xattrs: &[(&str, &[u8])]) -> E {
    E::File {
        path: path.into(),
        data: data.to_vec(),
        mode: 0o644,
        uid: 0,
        gid: 0,
        xattrs: xattrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect(),
    }
}
pub fn dir(path: &str) -> E {
    E::Dir {
        path: path.into(),
        mode: 0o755,
        uid: 0,
        gid: 0,
        xattrs: vec![],
    }
}
pub fn dir_meta(path: &str, mode: u32, uid: u64, gid: u64, xattrs: &[(&str, &[u8])]) -> E {
    E::Dir {
        path: path.into(),
        mode,
        uid,
        gid,
        xattrs: xattrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect(),
    }
}
pub fn symlink(path: &str, target: &str) -> E {
    E::Symlink {
        path: path.into(),
        target: target.into(),
    }
}
pub fn hardlink(path: &str, target: &str) -> E {
    E::Hardlink {
        path: path.into(),
        target: target.into(),
    }
}
pub fn whiteout(path: &str) -> E {
    let (d, n) = path.rsplit_once('/').map_or(("", path), |(d, n)| (d, n));
    let p = if d.is_empty() {
        format!(".wh.{n}")
    } else {
        format!("{d}/.wh.{n}")
    };
    file(&p, b"")
}
pub fn opaque(dir: &str) -> E {
    file(&format!("{}/.wh..wh..opq", dir.trim_end_matches('/')), b"")
}

/// Sets type, mode, owner and xattr records of a file or directory header.
fn owned(
    h: &mut tar::Header,
    pax: &mut Vec<(String, Vec<u8>)>,
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    xattrs: &[(String, Vec<u8>)],
) {
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    for (k, v) in xattrs {
        pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
    }
}

/// Writes entries as a PAX tar (so long names and xattrs are expressible).
pub fn tar_of(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mtime(1_700_000_000);
        h.set_uid(0);
        h.set_gid(0);
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        let (path, data): (Vec<u8>, &[u8]) = match e {
            E::File {
                path,
                data,
                mode,
                uid,
                gid,
                xattrs,
            } => {
                owned(
                    &mut h,
                    &mut pax,
                    tar::EntryType::Regular,
                    *mode,
                    *uid,
                    *gid,
                    xattrs,
                );
                h.set_size(data.len() as u64);
                (path.as_bytes().to_vec(), data)
            }
            E::Dir {
                path,
                mode,
                uid,
                gid,
                xattrs,
            } => {
                owned(
                    &mut h,
                    &mut pax,
                    tar::EntryType::Directory,
                    *mode,
                    *uid,
                    *gid,
                    xattrs,
                );
                h.set_size(0);
                (path.as_bytes().to_vec(), &[][..])
            }
            E::Symlink { path, target } | E::Hardlink { path, target } => {
                h.set_entry_type(if matches!(e, E::Symlink { .. }) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                h.set_mode(0o777);
                h.set_size(0);
                if target.len() > 100 {
                    pax.push(("linkpath".into(), target.as_bytes().to_vec()));
                } else {
                    h.set_link_name(target).unwrap();
                }
                (path.as_bytes().to_vec(), &[][..])
            }
            E::Char { path, major, minor } => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_size(0);
                h.set_device_major(*major).unwrap();
                h.set_device_minor(*minor).unwrap();
                (path.as_bytes().to_vec(), &[][..])
            }
            E::Fifo { path } => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                h.set_size(0);
                (path.as_bytes().to_vec(), &[][..])
            }
            E::RawFile { path, data } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(data.len() as u64);
                (path.clone(), data)
            }
        };
        if path.len() > 100 {
            pax.push(("path".into(), path.clone()));
            h.as_ustar_mut().unwrap().name[..10].copy_from_slice(b"longname.x");
        } else {
            let name = &mut h.as_ustar_mut().unwrap().name;
            name[..path.len()].copy_from_slice(&path);
        }
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .unwrap();
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comp {
    None,
    Gzip,
    /// Two gzip members.
    GzipMulti,
    /// A skippable frame, then two zstd frames.
    ZstdMulti,
}

pub fn compress(data: &[u8], c: Comp) -> Vec<u8> {
    let gz = |d: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(d).unwrap();
        e.finish().unwrap()
    };
    match c {
        Comp::None => data.to_vec(),
        Comp::Gzip => gz(data),
        Comp::GzipMulti => {
            let mid = data.len() / 2;
            [gz(&data[..mid]), gz(&data[mid..])].concat()
        }
        Comp::ZstdMulti => {
            let mid = data.len() / 3;
            let mut out = vec![0x5a, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 9, 9, 9, 9];
            out.extend(zstd::encode_all(&data[..mid], 3).unwrap());
            out.extend(zstd::encode_all(&data[mid..], 3).unwrap());
            out
        }
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A layer blob as written into a layout.
#[derive(Clone, Debug)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub blob: Vec<u8>,
    pub media_type: String,
}

impl Layer {
    pub fn new(entries: &[E]) -> Layer {
        Layer::with(tar_of(entries), Comp::Gzip, false)
    }
    pub fn with(tar: Vec<u8>, comp: Comp, docker: bool) -> Layer {
        let blob = compress(&tar, comp);
        let media_type = match (docker, comp) {
            (true, Comp::None) => "application/vnd.docker.image.rootfs.diff.tar",
            (true, _) => "application/vnd.docker.image.rootfs.diff.tar.gzip",
            (false, Comp::None) => "application/vnd.oci.image.layer.v1.tar",
            (false, Comp::ZstdMulti) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (false, _) => "application/vnd.oci.image.layer.v1.tar+gzip",
        };
        Layer {
            tar,
            blob,
            media_type: media_type.into(),
        }
    }
}

/// An OCI layout being written.
#[derive(Debug)]
pub struct Layout {
    pub dir: PathBuf,
    pub manifests: Vec<Value>,
}

impl Layout {
    pub fn new(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        Layout {
            dir: dir.to_path_buf(),
            manifests: vec![],
        }
    }

    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"))
    }

    /// Writes a blob; returns its descriptor (without media type).
    pub fn put(&self, data: &[u8]) -> (String, u64) {
        let d = sha256(data);
        std::fs::write(self.blob_path(&d), data).unwrap();
        (d, data.len() as u64)
    }

    /// Writes config + layers + manifest; returns the manifest descriptor.
    pub fn image(&self, layers: &[Layer], docker: bool) -> Value {
        let config = json!({
            "created": "2023-11-14T22:13:20Z",
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| sha256(&l.tar)).collect::<Vec<_>>()},
        });
        self.image_with_config(layers, docker, config)
    }

    pub fn image_with_config(&self, layers: &[Layer], docker: bool, config: Value) -> Value {
        let (cd, cs) = self.put(&serde_json::to_vec(&config).unwrap());
        let ldescs: Vec<Value> = layers
            .iter()
            .map(|l| {
                let (d, s) = self.put(&l.blob);
                json!({"mediaType": l.media_type, "digest": d, "size": s})
            })
            .collect();
        let (mt, cmt) = if docker {
            (
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.container.image.v1+json",
            )
        } else {
            (
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.config.v1+json",
            )
        };
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": {"mediaType": cmt, "digest": cd, "size": cs},
            "layers": ldescs,
        });
        let (md, ms) = self.put(&serde_json::to_vec(&manifest).unwrap());
        json!({"mediaType": mt, "digest": md, "size": ms})
    }

    /// Writes an index blob listing `manifests`; returns its descriptor.
    pub fn nested_index(&self, manifests: Vec<Value>) -> Value {
        let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests});
        let (d, s) = self.put(&serde_json::to_vec(&idx).unwrap());
        json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": d, "size": s})
    }

    /// Adds a descriptor to index.json, with an optional tag and platform.
    pub fn add(&mut self, mut desc: Value, tag: Option<&str>, platform: Option<&str>) -> &mut Self {
        if let Some(t) = tag {
            desc["annotations"] = json!({"org.opencontainers.image.ref.name": t});
        }
        if let Some(p) = platform {
            desc["platform"] = platform_json(p);
        }
        self.manifests.push(desc);
        self.write_index();
        self
    }

    pub fn write_index(&self) {
        let idx = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": self.manifests});
        std::fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec(&idx).unwrap(),
        )
        .unwrap();
    }

    /// A layout with one image of `layers`, tagged `latest`.
    pub fn single(dir: &Path, layers: &[Layer]) -> Layout {
        let mut l = Layout::new(dir);
        let m = l.image(layers, false);
        l.add(m, Some("latest"), None);
        l
    }
}

pub fn platform_json(p: &str) -> Value {
    let parts: Vec<&str> = p.split('/').collect();
    let mut v = json!({"os": parts[0], "architecture": parts[1]});
    if let Some(var) = parts.get(2) {
        v["variant"] = json!(var);
    }
    v
}

/// Packs a layout directory into an oci-archive tar.
pub fn archive_of(layout: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    b.append_dir_all(".", layout).unwrap();
    b.finish().unwrap();
}
