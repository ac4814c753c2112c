//! An existing OCI layout directory that an export adds to: held locked while its
//! `index.json` is read, extended and replaced.

use std::fs;
use std::path::Path;

use serde_json::Value;

use super::io;
use crate::error::{Error, Result};

/// Holds the layout directory `dir` locked (`flock` on the directory itself: no file is added
/// to the layout; released however the process ends) while an export reads, extends and
/// replaces its `index.json`: concurrent exports of different tags each keep theirs.
///
/// # Errors
/// `dir` cannot be opened or locked.
pub(super) fn lock_layout(dir: &Path) -> Result<fs::File> {
    let f = fs::File::open(dir).map_err(io(dir))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| io(dir)(e.into()))?;
    Ok(f)
}

/// The `index.json` of the layout `dest`, if it has one.
///
/// # Errors
/// It is there but malformed.
pub(super) fn read_index(dest: &Path) -> Result<Option<Value>> {
    let path = dest.join("index.json");
    let bad = |reason: String| Error::InvalidImage {
        image: format!("oci:{}", dest.display()),
        reason,
    };
    let index: Value = match fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| bad(format!("index.json: {e}")))?,
        Err(_) => return Ok(None),
    };
    if !index["manifests"].is_array() {
        return Err(bad("index.json has no manifests list".into()));
    }
    Ok(Some(index))
}
