#!/usr/bin/env python3
"""bench/split-image.py ROOTFS_TAR OUT_DIR N - an OCI layout whose image is ROOTFS_TAR cut into
N gzip layers: every directory in layer 1, the other entries in N contiguous runs by tar order
(a hardlink stays with its target), so the layers are independent, like an OS image's chunks."""
import gzip, hashlib, io, json, os, sys, tarfile

src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with tarfile.open(src) as t:
    members = t.getmembers()
    dirs = [m for m in members if m.isdir()]
    rest = [m for m in members if not m.isdir()]
    per = -(-len(rest) // n)
    chunk_of, chunks = {}, [list(dirs)] + [[] for _ in range(n - 1)]
    for i, m in enumerate(rest):
        c = chunk_of.get(m.linkname, min(i // per, n - 1)) if m.islnk() else min(i // per, n - 1)
        chunk_of[m.name] = c
        chunks[c].append(m)
    os.makedirs(f"{out}/blobs/sha256", exist_ok=True)

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        with open(f"{out}/blobs/sha256/{d}", "wb") as f:
            f.write(data)
        return {"digest": f"sha256:{d}", "size": len(data)}

    layers, diff_ids = [], []
    for chunk in chunks:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as o:
            for m in chunk:
                o.addfile(m, t.extractfile(m) if m.isreg() else None)
        raw = buf.getvalue()
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                       **put(gzip.compress(raw, compresslevel=6, mtime=0))})
config = {"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
          "rootfs": {"type": "layers", "diff_ids": diff_ids}}
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       **put(json.dumps(config).encode())},
            "layers": layers}
m = put(json.dumps(manifest).encode())
with open(f"{out}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **m,
         "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
with open(f"{out}/oci-layout", "w") as f:
    f.write('{"imageLayoutVersion": "1.0.0"}')
