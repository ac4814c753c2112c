//! The registry transport, `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: the OCI distribution
//! API over HTTP(S), natively (no skopeo).
//!
//! ```text
//! pull:  reference -> registries_conf     mirrors tried in order, then the origin
//!          -> places                      the one serving the manifest, then those after
//!                                          it for the blobs it fails on
//!          -> client (auth: anonymous | basic | bearer token; retries; timeouts;
//!                     redirects followed hop by hop, each on its own route)
//!          -> GET /v2/REPO/manifests/REF   manifest or index (OCI or docker v2 schema 2)
//!          -> source::registry             the Source the import reads, with an index.json
//!                                          synthesized around that one manifest
//!          -> fetch::Prefetch              missing layer blobs downloaded by a few threads
//!                                          into REPO/tmp/ocitree-blobs (resumable, verified)
//!                                          while earlier layers are imported
//! push:  an OCI layout (export::push writes one in REPO/tmp) -> HEAD each blob, mount or upload the
//!          missing ones, PUT the manifest
//! ```
//!
//! Every request has a connect and a per-read/write timeout ([`RegistryOptions::timeout`]);
//! connection failures, timeouts, 5xx and 429 answers are retried with exponential backoff.

pub(crate) mod agents;
pub mod auth;
pub mod client;
pub mod cred_helper;
pub mod credentials;
pub mod fetch;
pub mod places;
pub mod proxy;
pub mod push;
pub(crate) mod redirect;
pub mod reference;
pub mod registries_conf;
pub mod tls;
pub mod upload;

use std::path::PathBuf;
use std::time::Duration;

pub use client::Client;
pub use credentials::Credentials;
pub use push::{PushReport, push_index, push_layout};
pub use reference::ImageReference;

/// How to talk to the registry's HTTP endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tls {
    /// HTTPS with certificate verification (the default).
    #[default]
    Verify,
    /// `--tls-verify=false`, as containers/image means it: HTTPS without verifying the
    /// registry's certificate, and plain HTTP when the registry does not speak TLS (its answer
    /// to the TLS handshake is not TLS, and the same request over HTTP gets an HTTP answer).
    NoVerify,
}

/// Transport options of the registry source and destination.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RegistryOptions {
    /// Credentials that override every auth file (`--creds`).
    pub creds: Option<Credentials>,
    /// The one auth file to read (`--authfile`); default: the search list of [`auth`].
    pub auth_file: Option<PathBuf>,
    /// Whether the registry's certificate is verified.
    pub tls: Tls,
    /// Whether [`RegistryOptions::tls`] was set by the user (`--tls-verify`): it then wins
    /// over `insecure = true` in registries.conf, as in containers/image; left unset, an
    /// insecure registry is not verified.
    pub tls_set: bool,
    /// The certificate directory (`--cert-dir`), replacing the certs.d search of [`tls`].
    pub cert_dir: Option<PathBuf>,
    /// The one registries.conf to read (`--registries-conf`); default: the search list of
    /// [`registries_conf`].
    pub registries_conf: Option<PathBuf>,
    /// Connect timeout and the longest wait for any read or write of a request.
    pub timeout: Duration,
    /// Blob downloads running at once.
    pub parallel: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            creds: None,
            auth_file: None,
            tls: Tls::Verify,
            tls_set: false,
            cert_dir: None,
            registries_conf: None,
            timeout: Duration::from_secs(60),
            parallel: 3,
        }
    }
}

impl RegistryOptions {
    /// Options with every default.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The manifest media types a pull accepts, for the `Accept` header.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";
