#!/usr/bin/env python3
"""bench/hostile-images.py - writes the hostile OCI layouts bench/hostile.sh imports.

Usage: hostile-images.py KIND OUT [N]
  gzip-bomb N   one layer: a one-file tar, then N GiB of zeros (1 GiB per gzip member)
  zstd-bomb N   the same with zstd frames
  files N       one gzip layer of N one-byte files, 1000 per directory
  layers N      N gzip layers of one file each
  pax N         one layer whose file has an N MiB PAX xattr record
Layer digests and diff_ids are computed while streaming: memory stays small.
"""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile, zlib

GIB = 1 << 30


class Blob:
    """A blob file written in pieces, hashed as it goes."""

    def __init__(self, out):
        self.dir = os.path.join(out, "blobs", "sha256")
        os.makedirs(self.dir, exist_ok=True)
        self.tmp = os.path.join(self.dir, "tmp")
        self.f = open(self.tmp, "wb")
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, b):
        self.f.write(b)
        self.h.update(b)
        self.size += len(b)

    def close(self):
        self.f.close()
        d = self.h.hexdigest()
        os.rename(self.tmp, os.path.join(self.dir, d))
        return "sha256:" + d, self.size


def put(out, data):
    b = Blob(out)
    b.write(data)
    return b.close()


def layout(out, layers, media="application/vnd.oci.image.layer.v1.tar+gzip"):
    """layers: [(digest, size, diff_id)]"""
    cfg = {"architecture": "amd64", "os": "linux",
           "rootfs": {"type": "layers", "diff_ids": [l[2] for l in layers]}}
    cd, cs = put(out, json.dumps(cfg).encode())
    m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
         "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
         "layers": [{"mediaType": media, "digest": d, "size": s} for d, s, _ in layers]}
    md, ms = put(out, json.dumps(m).encode())
    with open(os.path.join(out, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)


def small_tar(name=b"hello", data=b"hi\n", pax=None):
    t = io.BytesIO()
    with tarfile.open(fileobj=t, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo(name.decode())
        ti.size = len(data)
        if pax:
            ti.pax_headers = pax
        tf.addfile(ti, io.BytesIO(data))
    return t.getvalue()


def gz(data, level=6):
    return gzip.compress(data, level, mtime=0)


def zst(data):
    return subprocess.run(["zstd", "-q", "-3", "-c"], input=data, check=True,
                          stdout=subprocess.PIPE).stdout


def bomb(out, n, kind):
    tar = small_tar()
    pack = gz if kind == "gzip" else zst
    member = pack(b"\0" * GIB)
    b = Blob(out)
    b.write(pack(tar))
    diff = hashlib.sha256(tar)
    zeros = b"\0" * (1 << 24)
    for _ in range(n):
        b.write(member)
        for _ in range(GIB // len(zeros)):
            diff.update(zeros)
    d, s = b.close()
    media = "application/vnd.oci.image.layer.v1.tar+" + ("gzip" if kind == "gzip" else "zstd")
    layout(out, [(d, s, "sha256:" + diff.hexdigest())], media)


def many_files(out, n):
    b = Blob(out)
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    diff = hashlib.sha256()

    def emit(raw):
        diff.update(raw)
        b.write(z.compress(raw))

    for d in range((n + 999) // 1000):
        ti = tarfile.TarInfo("d%d" % d)
        ti.type = tarfile.DIRTYPE
        ti.mode = 0o755
        emit(ti.tobuf(tarfile.USTAR_FORMAT))
        for i in range(d * 1000, min(n, d * 1000 + 1000)):
            ti = tarfile.TarInfo("d%d/f%d" % (d, i))
            ti.size = 1
            ti.mode = 0o644
            emit(ti.tobuf(tarfile.USTAR_FORMAT) + bytes([i % 256]) + b"\0" * 511)
    emit(b"\0" * 1024)
    b.write(z.flush())
    d, s = b.close()
    layout(out, [(d, s, "sha256:" + diff.hexdigest())])


def many_layers(out, n):
    layers = []
    for i in range(n):
        tar = small_tar(b"f%d" % i, b"%d" % i)
        d, s = put(out, gz(tar, 1))
        layers.append((d, s, "sha256:" + hashlib.sha256(tar).hexdigest()))
    layout(out, layers)


def big_pax(out, mib):
    tar = small_tar(pax={"SCHILY.xattr.user.big": "a" * (mib << 20)})
    d, s = put(out, gz(tar, 1))
    layout(out, [(d, s, "sha256:" + hashlib.sha256(tar).hexdigest())])


if __name__ == "__main__":
    kind, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1
    {"gzip-bomb": lambda: bomb(out, n, "gzip"), "zstd-bomb": lambda: bomb(out, n, "zstd"),
     "files": lambda: many_files(out, n), "layers": lambda: many_layers(out, n),
     "pax": lambda: big_pax(out, n)}[kind]()
