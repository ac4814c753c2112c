//! The places one pull reads from, in order: the mirrors registries.conf names for the
//! reference, then the origin. The manifest comes from the first place that serves it; a blob
//! from that place, or, when it fails there (missing, refused, down mid-transfer), from the
//! places after it. Blobs are named by their digest and verified, so any place may serve them:
//! a mirror that holds the manifest but not every blob, or dies half way through one, does not
//! fail the pull while the origin still serves. A place that failed otherwise than by not
//! having what was asked (down, broken, serving wrong bytes) is not asked again during the
//! pull, so that the blobs after the first do not each wait out its timeouts and retries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};
use crate::registry::client::Client;

/// Clients for the places of one pull, in the order they are tried.
#[derive(Debug, Clone)]
pub struct Places {
    clients: Vec<Arc<Client>>,
    /// Per place: it failed in a way that says nothing else would work there either (shared
    /// by the clones, which the download threads hold).
    down: Arc<Vec<AtomicBool>>,
}

impl Places {
    /// The places in order; there is at least one (the origin).
    ///
    /// # Panics
    /// `clients` is empty.
    pub fn new(clients: Vec<Arc<Client>>) -> Places {
        assert!(!clients.is_empty(), "a pull has at least its origin");
        let down = none_down(clients.len());
        Places { clients, down }
    }

    /// The first place: the one that serves the image once [`Places::keep_from`] chose it.
    pub fn first(&self) -> &Arc<Client> {
        &self.clients[0]
    }

    /// Forgets the places before `i` (they did not serve the manifest, so they are not asked
    /// for its blobs either).
    pub fn keep_from(&mut self, i: usize) {
        self.clients.drain(..i.min(self.clients.len() - 1));
        self.down = none_down(self.clients.len());
    }

    /// Runs `f` on each place in turn until it succeeds; returns the place's index and the
    /// result. A failure on this machine (an I/O error outside the registry conversation)
    /// is returned at once: another place would fail the same way. A place that failed
    /// otherwise than by not having the thing or refusing the credentials is skipped by later
    /// calls (unless it is the last). When every place failed, the last error is returned
    /// with the others named in it.
    ///
    /// # Errors
    /// `f` failed at every place, or failed locally.
    pub fn first_ok<T>(&self, f: impl FnMut(&Arc<Client>) -> Result<T>) -> Result<(usize, T)> {
        self.first_ok_with(f, |e| matches!(e, Error::Io { .. }))
    }

    /// As [`Places::first_ok`], with `stop` deciding which failures end the search at once
    /// (for [`Places::first_ok`]: I/O errors).
    ///
    /// # Errors
    /// `f` failed at every place, or failed in a way `stop` accepts.
    pub fn first_ok_with<T>(
        &self,
        mut f: impl FnMut(&Arc<Client>) -> Result<T>,
        stop: impl Fn(&Error) -> bool,
    ) -> Result<(usize, T)> {
        let mut failed = Vec::new();
        let last = self.clients.len() - 1;
        for (i, client) in self.clients.iter().enumerate() {
            if i < last && self.down[i].load(Ordering::Relaxed) {
                failed.push(format!("{}: skipped, failed earlier", client.reference()));
                continue;
            }
            let err = match f(client) {
                Ok(found) => return Ok((i, found)),
                Err(e) if stop(&e) => return Err(with_tried(e, client, &failed)),
                Err(e) => e,
            };
            if i == last {
                return Err(with_tried(err, client, &failed));
            }
            if !matches!(err, Error::NotFound(_) | Error::Unauthorized { .. }) {
                self.down[i].store(true, Ordering::Relaxed);
            }
            failed.push(format!("{}: {err}", client.reference()));
        }
        unreachable!("there is at least one place")
    }
}

/// No place marked down, for `n` places.
fn none_down(n: usize) -> Arc<Vec<AtomicBool>> {
    Arc::new((0..n).map(|_| AtomicBool::new(false)).collect())
}

/// `err`, from the place `last`, naming what the places before it answered (a local I/O
/// error is kept as it is).
fn with_tried(err: Error, last: &Client, failed: &[String]) -> Error {
    if failed.is_empty() || matches!(err, Error::Io { .. }) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::client::Access;
    use crate::registry::{ImageReference, RegistryOptions};

    fn places() -> Places {
        let client = |r: &str| {
            let reference = ImageReference::parse(r).unwrap();
            Arc::new(Client::new(&reference, &RegistryOptions::new(), Access::Pull).unwrap())
        };
        Places::new(vec![
            client("mirror.example/a:1"),
            client("mirror2.example/a:1"),
            client("origin.example/a:1"),
        ])
    }

    fn failing(place: usize, err: fn() -> Error) -> impl FnMut(&Arc<Client>) -> Result<usize> {
        let mut n = 0;
        move |_| {
            n += 1;
            if n == place + 1 {
                Err(err())
            } else {
                Ok(n - 1)
            }
        }
    }

    #[test]
    fn a_place_that_broke_is_skipped_one_that_lacked_a_blob_is_not() {
        let p = places();
        let broken = || Error::Registry {
            url: "u".into(),
            reason: "GET failed after 5 attempt(s)".into(),
        };
        assert_eq!(p.first_ok(failing(0, broken)).unwrap().0, 1);
        // the first mirror is skipped from now on, the second still asked first
        let asked = std::cell::RefCell::new(Vec::new());
        let (i, _) = p
            .first_ok(|c| {
                asked.borrow_mut().push(c.reference().to_string());
                Ok(())
            })
            .unwrap();
        assert_eq!(
            (i, asked.into_inner()),
            (1, vec!["mirror2.example/a:1".to_string()])
        );
        // a missing blob does not mark the second mirror
        let missing = || Error::NotFound("blob".into());
        assert_eq!(p.first_ok(failing(0, missing)).unwrap().0, 2);
        assert_eq!(p.first_ok(|_| Ok(())).unwrap().0, 1);
        // the last place is always asked, and the error names what was skipped
        let all = |_: &Arc<Client>| -> Result<()> { Err(broken()) };
        let err = p.first_ok(all).unwrap_err().to_string();
        assert!(
            err.contains("mirror.example/a:1: skipped, failed earlier"),
            "{err}"
        );
        assert!(err.contains("tried first"), "{err}");
    }

    #[test]
    fn local_failures_are_not_tried_elsewhere() {
        let p = places();
        let mut calls = 0;
        let err = p
            .first_ok(|_| -> Result<()> {
                calls += 1;
                Err(Error::Io {
                    context: "spooling".into(),
                    cause: std::io::Error::other("disk full"),
                })
            })
            .unwrap_err();
        assert!(matches!(err, Error::Io { .. }));
        assert_eq!(calls, 1);
    }
}
