//! Integration tests: the `ocitree` binary against real libostree repos, checked with the real
//! `ostree` CLI and with `umoci unpack` as the oracle for layer application.

mod util;

// umoci-built images (util/wild.rs), dedup, re-import, archive repos, oci-archive and stdin.
mod import;
// Layers read at once: same commits, deterministic errors
mod jobs;
// Whiteouts, opaque directories, type changes, symlinked parents, directory metadata.
mod whiteouts;
// Entries of one layer in tar order: hardlinks before their targets are replaced, directories
// over non-directories; what the layer cannot place is refused.
mod tar_order;
// Layer edges (issue 9): truncated tars, invalid whiteouts, markers that create nothing,
// skipped entries owning their path, sparse files, AUFS metadata.
mod layer_edges;
// Hardlinks, xattrs, special modes, owners, long names, path prefixes, devices and FIFOs.
mod entries;
// gzip (multi-member), zstd (multi-frame, skippable), none, docker media types, truncated tars.
mod compression;
// docker-archive import (archives written by skopeo) and export (read back by skopeo).
mod docker_archive;
// Index resolution: tags, digests, nested indexes, platforms, ambiguity.
mod index;
// Artifacts: non-tar layers as files, layer selection, per-dir layers, artifact types.
mod artifacts;
// Bad input: every failure exits 2, names image and layer, and leaves the repo unchanged.
mod bad_input;
// Export: same config and diff_ids, checked with skopeo, umoci, oci-image-tool.
mod export;
// Export faults: SIGKILL at random points, a full disk, a closed stdout under an archive.
mod export_faults;
// Round trips of random inputs (proptest): any ostree commit → encapsulate → import gives the
// identical commit or a documented refusal; any image → import → export gives its config and
// layer tars back.
mod roundtrip;
// Encapsulate: ostree commits → OCI → import gives the identical commit; stable layers.
mod encapsulate;
// Directory trees as nested indexes (encapsulate --format file-tree): round trips, registry
// pushes and pulls of only the changed blobs, skopeo interop, hostile documents.
mod file_tree;
// Image formats: plain, ocitree-encapsulated, ostree-native; detection and --format.
mod formats;
// Ostree native containers (ostree-ext, bootc): the identical commit, chunks reused, bad objects.
mod ostree_native;
// Ostree native export: ocitree's output read by the real ostree-ext as the identical commit.
mod ostree_native_export;
// Derived images on ostree native containers: the tree ostree-ext's `image pull` gives.
mod ostree_derived;
// Exact gzip export (feature exact-gzip): original blob and manifest digests kept.
#[cfg(feature = "exact-gzip")]
mod exact_gzip;
// images, inspect, ls, cat, checkout, rm, prune, --repo / OCITREE_REPO, man pages.
mod cli;
// Archive repos: objects compressed on all cores, same commits, configured zlib level.
mod archive_repo;
// flatpak remotes: a runtime bundled by flatpak, imported, installed and updated by flatpak.
mod flatpak_remote;
// Serving archive repos: GPG and ed25519 signatures, summaries, checked by ostree pull and OpenSSL.
mod serve;
// refs an image's commit is bound to: ocitree moves and deletes only those it made
mod bound_refs;
// Signing on import, verifying the signatures of encapsulated commits (GPG, ed25519, remotes).
mod verify;
// docker:// pull and push against a real docker-registry, auth, resume, corruption.
mod registry;
// Faults: import, rm and prune killed at random points, full disk, concurrent imports.
mod faults;
// Hostile sizes: decompression bombs, huge PAX records and index.json, long names, many layers.
mod hostile;
// Random layer stacks (files, directories, symlinks, hardlinks, whiteouts, opaque markers,
// type changes, tar orders) imported and compared with `umoci unpack`, or refused cleanly.
mod differential;
// Whole-image mutation: every mutated image imports or fails cleanly, never panics or hangs.
mod fuzz;
// Tar headers tar readers disagree on (GNU tar, Go's archive/tar): read as umoci reads them
// where they agree, refused where they do not.
mod tar_headers;
