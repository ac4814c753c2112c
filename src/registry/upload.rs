//! One blob upload (after `POST /v2/REPO/blobs/uploads/` answered 202 with a `Location`), able
//! to survive a failure mid-way.
//!
//! A blob up to [`CHUNK`] bytes goes in one streamed `PUT ?digest=`; a larger one in `PATCH`
//! chunks of [`CHUNK`] bytes (`Content-Range: FROM-TO`), then an empty `PUT ?digest=`. Each
//! of these requests is sent once. When one fails (connection dropped, timeout, 5xx, or a
//! refusal such as 416), the registry is asked where the upload stands (`GET` on the upload
//! URL: 204 with `Range: 0-LAST` and a fresh `Location`), and the upload **resumes** from byte
//! `LAST + 1` ("0-0" counts as nothing received). When the registry no longer knows the
//! upload (distribution cancels an upload whose stored size differs from the offset its
//! upload URL carries, as after a partly received chunk), the upload **restarts** with a new
//! `POST`. At most 5 failures per blob (the client's attempt count).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use ureq::http::Method;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::registry::client::{ATTEMPTS, Client, Payload, backoff};

/// Blobs up to this size go in one PUT; larger ones in PATCH chunks of this size (the chunk
/// is the only part held in memory).
pub const CHUNK: u64 = 16 << 20;

/// What it took to upload one blob.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Uploaded {
    /// Bytes of the blob.
    pub bytes: u64,
    /// Failures after which the upload continued where the registry said it stood.
    pub resumed: usize,
    /// Failures after which the upload started over.
    pub restarted: usize,
}

/// Why one request of the upload did not get the answer expected.
struct Failed(Error);

/// Uploads `path` (the blob `digest`) to the upload at `location`; `start` is the URL that
/// starts a new upload.
///
/// # Errors
/// The file cannot be read, or the upload failed 5 times.
pub(crate) fn upload(
    client: &Client,
    digest: &Digest,
    path: &Path,
    start: &str,
    mut location: String,
) -> Result<Uploaded> {
    let io_err = || Error::io(format!("reading {}", path.display()));
    let size = std::fs::metadata(path).map_err(io_err())?.len();
    let mut file = File::open(path).map_err(io_err())?;
    let mut done = Uploaded {
        bytes: size,
        ..Uploaded::default()
    };
    let mut offset = 0u64;
    let mut failures = 0u32;
    loop {
        let attempt = if offset == 0 && size <= CHUNK {
            put_whole(client, digest, path, &location)
        } else {
            patch_from(client, digest, &mut file, size, offset, &mut location)
        };
        let Failed(err) = match attempt? {
            Ok(()) => return Ok(done),
            Err(f) => f,
        };
        failures += 1;
        if failures >= ATTEMPTS {
            return Err(err);
        }
        std::thread::sleep(backoff(failures));
        match status(client, &location) {
            Some((loc, stored)) if stored <= size => {
                location = loc;
                offset = stored;
                done.resumed += 1;
            }
            _ => {
                location = restart(client, digest, start)?;
                offset = 0;
                done.restarted += 1;
            }
        }
    }
}

/// The monolithic upload: one `PUT ?digest=` with the whole file.
fn put_whole(
    client: &Client,
    digest: &Digest,
    path: &Path,
    location: &str,
) -> Result<std::result::Result<(), Failed>> {
    let put = with_digest(location, digest);
    let octet = ("Content-Type", "application/octet-stream");
    Ok(
        match client.send_no_retry(Method::PUT, &put, &[octet], Payload::File(path)) {
            Ok(resp) if resp.status() == 201 => Ok(()),
            Ok(resp) => Err(Failed(client.status_error(
                &put,
                &format!("uploading {digest}"),
                resp,
            ))),
            Err(e) => Err(Failed(e)),
        },
    )
}

/// The chunked upload from byte `offset` on, then the closing `PUT ?digest=`. `location`
/// follows the registry's answers.
fn patch_from(
    client: &Client,
    digest: &Digest,
    file: &mut File,
    size: u64,
    mut offset: u64,
    location: &mut String,
) -> Result<std::result::Result<(), Failed>> {
    let io_err = || Error::io(format!("reading the blob {digest}"));
    file.seek(SeekFrom::Start(offset)).map_err(io_err())?;
    let octet = ("Content-Type", "application/octet-stream");
    let mut buf = Vec::with_capacity(CHUNK.min(size) as usize);
    while offset < size {
        buf.clear();
        (&mut *file)
            .take(CHUNK)
            .read_to_end(&mut buf)
            .map_err(io_err())?;
        if buf.is_empty() {
            return Err(Error::InvalidImage {
                image: digest.to_string(),
                reason: "blob file shrank while uploading".into(),
            });
        }
        let range = format!("{offset}-{}", offset + buf.len() as u64 - 1);
        let resp = match client.send_no_retry(
            Method::PATCH,
            location,
            &[octet, ("Content-Range", &range)],
            Payload::Bytes(&buf),
        ) {
            Ok(r) => r,
            Err(e) => return Ok(Err(Failed(e))),
        };
        if resp.status() != 202 {
            let e = client.status_error(location, &format!("uploading {digest}"), resp);
            return Ok(Err(Failed(e)));
        }
        *location = self::location(client, location, &resp)?;
        offset += buf.len() as u64;
    }
    let put = with_digest(location, digest);
    Ok(
        match client.send_no_retry(Method::PUT, &put, &[], Payload::Empty) {
            Ok(resp) if resp.status() == 201 => Ok(()),
            Ok(resp) => Err(Failed(client.status_error(
                &put,
                &format!("finishing {digest}"),
                resp,
            ))),
            Err(e) => Err(Failed(e)),
        },
    )
}

/// Where the upload at `location` stands: its new location and the bytes the registry holds;
/// `None` when the registry does not say (the upload is unknown, or the answer is no status).
fn status(client: &Client, location: &str) -> Option<(String, u64)> {
    let resp = client
        .send(Method::GET, location, &[], Payload::Empty)
        .ok()?;
    if resp.status() != 204 {
        return None;
    }
    let stored = parse_range(resp.headers().get("range")?.to_str().ok()?)?;
    let loc = self::location(client, location, &resp).unwrap_or_else(|_| location.to_string());
    Some((loc, stored))
}

/// The bytes an upload's `Range: 0-LAST` says the registry holds (`0-0`: none, as
/// distribution answers for an empty upload).
fn parse_range(range: &str) -> Option<u64> {
    let (first, last) = range.trim().split_once('-')?;
    let (first, last): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
    match (first, last) {
        (0, 0) => Some(0),
        (0, l) => l.checked_add(1),
        _ => None,
    }
}

/// A new upload for `digest`: its location.
fn restart(client: &Client, digest: &Digest, start: &str) -> Result<String> {
    let resp = client.send(Method::POST, start, &[], Payload::Empty)?;
    if resp.status() != 202 {
        return Err(client.status_error(start, &format!("restarting upload of {digest}"), resp));
    }
    location(client, start, &resp)
}

/// The absolute upload URL of a 202/204 answer's `Location`.
pub(crate) fn location(
    client: &Client,
    url: &str,
    resp: &ureq::http::Response<ureq::Body>,
) -> Result<String> {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(|l| client.absolute(url, resp, l))
        .ok_or_else(|| Error::Registry {
            url: url.to_string(),
            reason: "upload answer without a Location".into(),
        })
}

fn with_digest(location: &str, digest: &Digest) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_urls_get_the_digest() {
        let d = Digest::sha256_of(b"");
        assert_eq!(
            with_digest("http://r/u/1", &d),
            format!("http://r/u/1?digest={d}")
        );
        assert_eq!(
            with_digest("http://r/u/1?_state=x", &d),
            format!("http://r/u/1?_state=x&digest={d}")
        );
    }

    #[test]
    fn upload_ranges() {
        assert_eq!(parse_range("0-0"), Some(0));
        assert_eq!(parse_range("0-16777215"), Some(16 << 20));
        assert_eq!(parse_range(" 0-9 "), Some(10));
        assert_eq!(parse_range("5-9"), None);
        assert_eq!(parse_range("bytes=0-9"), None);
        assert_eq!(parse_range("0-"), None);
    }
}
