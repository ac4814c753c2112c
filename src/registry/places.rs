//! The places one pull reads from, in order: the mirrors registries.conf names for the
//! reference, then the origin. The manifest comes from the first place that serves it; a blob
//! from that place, or, when it fails there (missing, refused, down mid-transfer), from the
//! places after it. Blobs are named by their digest and verified, so any place may serve them:
//! a mirror that holds the manifest but not every blob, or dies half way through one, does not
//! fail the pull while the origin still serves.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::registry::client::Client;

/// Clients for the places of one pull, in the order they are tried.
#[derive(Debug, Clone)]
pub struct Places {
    clients: Vec<Arc<Client>>,
}

impl Places {
    /// The places in order; there is at least one (the origin).
    ///
    /// # Panics
    /// `clients` is empty.
    pub fn new(clients: Vec<Arc<Client>>) -> Places {
        assert!(!clients.is_empty(), "a pull has at least its origin");
        Places { clients }
    }

    /// The first place: the one that serves the image once [`Places::keep_from`] chose it.
    pub fn first(&self) -> &Arc<Client> {
        &self.clients[0]
    }

    /// Forgets the places before `i` (they did not serve the manifest, so they are not asked
    /// for its blobs either).
    pub fn keep_from(&mut self, i: usize) {
        self.clients.drain(..i.min(self.clients.len() - 1));
    }

    /// Runs `f` on each place in turn until it succeeds; returns the place's index and the
    /// result. A failure on this machine (an I/O error outside the registry conversation)
    /// is returned at once: another place would fail the same way. When every place
    /// failed, the last error is returned with the others named in it.
    ///
    /// # Errors
    /// `f` failed at every place, or failed locally.
    pub fn first_ok<T>(&self, mut f: impl FnMut(&Arc<Client>) -> Result<T>) -> Result<(usize, T)> {
        let mut failed = Vec::new();
        for (i, client) in self.clients.iter().enumerate() {
            let err = match f(client) {
                Ok(found) => return Ok((i, found)),
                Err(e @ Error::Io { .. }) => return Err(e),
                Err(e) => e,
            };
            if i + 1 == self.clients.len() {
                return Err(with_tried(err, client, &failed));
            }
            failed.push(format!("{}: {err}", client.reference()));
        }
        unreachable!("there is at least one place")
    }
}

/// `err`, from the last place, naming what the places before it answered.
fn with_tried(err: Error, last: &Client, failed: &[String]) -> Error {
    if failed.is_empty() {
        return err;
    }
    let tried = format!("{err}; tried first: {}", failed.join("; "));
    match err {
        Error::NotFound(_) => Error::NotFound(tried),
        _ => Error::Registry {
            url: format!("docker://{}", last.reference()),
            reason: tried,
        },
    }
}
