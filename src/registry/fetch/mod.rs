//! Pulling blobs: one streamed GET for small blobs, and a bounded pool of download threads
//! ([`Prefetch`]) that spools layer blobs into the repository's tmp directory while earlier
//! layers are imported. A layer whose download started from nothing is imported while it
//! downloads: its reader follows the growing file and ends only once the download is
//! complete and verified (so the import's own digest check and the download's agree).
//!
//! A download writes `<spool>/<alg>-<hex>.partial`, hashing as it goes; when the size and
//! digest match it is renamed to `<alg>-<hex>`. An interrupted transfer is resumed with an
//! HTTP `Range` request from the partial file's length, within the run (after a backoff) and
//! across runs (the partial file stays; `ocitree prune` removes it). A resumed blob whose final
//! digest does not match is discarded and fetched once more from zero.
//!
//! `spool` names and locks the files, `download` fetches one blob into them, and
//! `prefetch` runs downloads on a few threads ahead of the import.

mod download;
mod prefetch;
mod spool;

pub use download::{Progress, download};
pub use prefetch::Prefetch;
pub use spool::{Spooled, spool_paths};

use ureq::http::Method;

use crate::blob::BlobReader;
use crate::digest::Digest;
use crate::error::Result;
use crate::registry::client::{Client, Payload};

/// Read and copy buffer size of downloads.
pub(crate) const BUF: usize = 256 << 10;

/// Opens blob `digest` as one streamed GET (not verified: the caller wraps it).
///
/// # Errors
/// The request fails or the registry does not have the blob.
pub fn open_blob(client: &Client, digest: &Digest) -> Result<BlobReader> {
    let url = client.url(&format!("/blobs/{digest}"));
    let resp = client.send(Method::GET, &url, &[], Payload::Empty)?;
    if !resp.status().is_success() {
        return Err(client.status_error(&url, &format!("blob {digest}"), resp));
    }
    Ok(Box::new(resp.into_body().into_reader()))
}
