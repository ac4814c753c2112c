//! The HTTP side of the distribution API: one [`Client`] per registry repository, holding the
//! connection pool and the current authorization, with timeouts on every request and retries
//! with backoff on transient failures. Redirects are followed hop by hop (`redirect`); a
//! 401 challenge is answered in `challenge`.

mod challenge;

use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use ureq::http::{self, Response};
use ureq::{Body, SendBody};

use crate::error::{Error, Result};
use crate::registry::agents::Agents;
use crate::registry::auth;
use crate::registry::credentials::Credentials;
use crate::registry::reference::ImageReference;
use crate::registry::{RegistryOptions, Tls, redirect, tls};

/// How often a request is tried when it fails transiently (connection reset, timeout, 5xx, 429).
pub(crate) const ATTEMPTS: u32 = 5;

/// Largest error body read to report a registry's message.
const ERROR_BODY_LIMIT: u64 = 64 << 10;

/// The access a client asks for: `pull`, or `pull,push`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    Pull,
    /// Read and write.
    Push,
}

/// A request body that can be produced again for a retry.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Payload<'a> {
    /// No body.
    Empty,
    /// Bytes in memory (manifests, chunks).
    Bytes(&'a [u8]),
    /// A whole file, streamed.
    File(&'a std::path::Path),
}

/// The scheme the registry is reached with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Https,
    Http,
    /// `--tls-verify=false` before the registry answered: HTTPS, unless it does not speak TLS.
    Unknown,
}

/// A client for one repository of one registry.
#[derive(Debug)]
pub struct Client {
    agents: Agents,
    /// `https://HOST[:PORT]` and `http://HOST[:PORT]`.
    https_base: String,
    http_base: String,
    scheme: Mutex<Scheme>,
    opts: RegistryOptions,
    reference: ImageReference,
    creds: Option<Credentials>,
    access: Access,
    /// The `Authorization` header value in force, once a challenge was answered.
    authorization: Mutex<Option<String>>,
    /// Extra repositories the token must grant `pull` on (cross-repository mounts).
    extra_scopes: Mutex<Vec<String>>,
}

/// The URL that gave an answer (the last hop of its redirects), kept in the response's
/// extensions for resolving its `Location`.
#[derive(Clone, Debug)]
struct Answered(String);

/// What [`Client::send_once`] gives: the final answer, or why there is none.
type Sent = std::result::Result<Response<Body>, Failed>;

/// A request that got no answer.
#[derive(Debug)]
struct Failed {
    error: ureq::Error,
    /// The URL it failed at, when a redirect led there.
    redirected: Option<String>,
}

/// Whether a ureq error is worth retrying.
fn transient(e: &ureq::Error) -> bool {
    use std::io::ErrorKind as K;
    match e {
        // TLS failures come as InvalidData and the like: retrying cannot help.
        ureq::Error::Io(io) => matches!(
            io.kind(),
            K::ConnectionReset
                | K::ConnectionAborted
                | K::ConnectionRefused
                | K::BrokenPipe
                | K::TimedOut
                | K::UnexpectedEof
                | K::Interrupted
                | K::WouldBlock
        ),
        ureq::Error::Timeout(_) | ureq::Error::ConnectionFailed | ureq::Error::Protocol(_) => true,
        _ => false,
    }
}

/// The backoff before attempt `n` (1-based): 0.25 s, 0.5 s, 1 s, 2 s…
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(250 << n.saturating_sub(1).min(5))
}

impl Client {
    /// A client for `reference`'s repository, looking credentials up as [`auth`] describes.
    ///
    /// # Errors
    /// An auth file is unreadable or malformed.
    pub fn new(
        reference: &ImageReference,
        opts: &RegistryOptions,
        access: Access,
    ) -> Result<Client> {
        let files = match &opts.auth_file {
            Some(f) => vec![f.clone()],
            None => auth::default_auth_files(),
        };
        let creds = auth::lookup(opts.creds.as_ref(), &files, reference)?;
        let agents = Agents::new(opts.timeout, tls::config(opts, &reference.registry)?);
        Ok(Client {
            agents,
            https_base: format!("https://{}", reference.api_host()),
            http_base: format!("http://{}", reference.api_host()),
            scheme: Mutex::new(match opts.tls {
                Tls::Verify => Scheme::Https,
                Tls::NoVerify => Scheme::Unknown,
            }),
            opts: opts.clone(),
            reference: reference.clone(),
            creds,
            access,
            authorization: Mutex::new(None),
            extra_scopes: Mutex::new(Vec::new()),
        })
    }

    /// The reference this client was made for.
    pub fn reference(&self) -> &ImageReference {
        &self.reference
    }

    fn scheme(&self) -> Scheme {
        *self.scheme.lock().expect("lock poisoned only by a panic")
    }

    fn set_scheme(&self, s: Scheme) {
        *self.scheme.lock().expect("lock poisoned only by a panic") = s;
    }

    /// `https://HOST[:PORT]`, or `http://…` once the registry turned out not to speak TLS.
    fn base(&self) -> &str {
        match self.scheme() {
            Scheme::Http => &self.http_base,
            Scheme::Https | Scheme::Unknown => &self.https_base,
        }
    }

    /// `url` on the registry with the scheme in force (URLs made before the registry turned
    /// out to speak plain HTTP start with `https://`).
    fn rebase(&self, url: &str) -> String {
        match url.strip_prefix(&self.https_base) {
            Some(rest) if self.scheme() == Scheme::Http => format!("{}{rest}", self.http_base),
            _ => url.to_string(),
        }
    }

    /// `BASE/v2/REPO/SUFFIX` (`suffix` starts with `/`).
    pub(crate) fn url(&self, suffix: &str) -> String {
        format!("{}/v2/{}{suffix}", self.base(), self.reference.repository)
    }

    /// Resolves the `Location` header of `resp`, the answer to a request to `url`, against
    /// the URL that answered (the last hop of a redirect), as Go does.
    pub(crate) fn absolute(&self, url: &str, resp: &Response<Body>, location: &str) -> String {
        let answered = match resp.extensions().get::<Answered>() {
            Some(Answered(at)) => at.clone(),
            None => self.rebase(url),
        };
        redirect::resolve(&answered, location)
            .unwrap_or_else(|| format!("{}{location}", self.base()))
    }

    /// Asks the token for `pull` on another repository too (for mounts from it).
    pub(crate) fn add_pull_scope(&self, repository: &str) {
        let scope = format!("repository:{repository}:pull");
        let mut s = self
            .extra_scopes
            .lock()
            .expect("lock poisoned only by a panic");
        if !s.contains(&scope) {
            s.push(scope);
            // the next request gets a challenge and a token with the new scope
            *self
                .authorization
                .lock()
                .expect("lock poisoned only by a panic") = None;
        }
    }

    /// Sends one request with the authorization in force ([`Client::follow`]).
    fn send_once(
        &self,
        method: &http::Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Sent {
        let authorization = self
            .authorization
            .lock()
            .expect("lock poisoned only by a panic")
            .clone();
        self.follow(method, url, headers, payload, authorization.as_deref())
    }

    /// Sends one request, following redirects hop by hop ([`redirect`]): each hop takes the
    /// route the environment gives its URL, and `authorization` goes only to `url`'s host.
    fn follow(
        &self,
        method: &http::Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
        authorization: Option<&str>,
    ) -> Sent {
        let (mut method, mut at, mut payload) = (method.clone(), url.to_string(), payload);
        let mut authorization = authorization;
        for _ in 0..=redirect::MAX_HOPS {
            let failed = |error| Failed {
                error,
                redirected: (at != url).then(|| at.clone()),
            };
            let resp = self
                .send_hop(&method, &at, headers, payload, authorization)
                .map_err(failed)?;
            let location = resp.headers().get("location").and_then(|v| v.to_str().ok());
            let Some(hop) = redirect::next(resp.status(), location, &method, &at) else {
                // A challenge from a host the registry's credentials do not go to (a storage
                // host it redirected to) is not the registry's: answering it would hand the
                // credentials to whatever realm that host names.
                if resp.status() == 401 && at != url && !redirect::keeps_credentials(url, &at) {
                    return Err(failed(ureq::Error::StatusCode(401)));
                }
                let mut resp = resp;
                resp.extensions_mut().insert(Answered(at));
                return Ok(resp);
            };
            authorization = authorization.filter(|_| redirect::keeps_credentials(url, &hop.url));
            if !hop.body {
                payload = Payload::Empty;
            }
            (method, at) = (hop.method, hop.url);
        }
        Err(Failed {
            error: ureq::Error::TooManyRedirects,
            redirected: Some(at),
        })
    }

    /// One request, redirects not followed.
    fn send_hop(
        &self,
        method: &http::Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
        authorization: Option<&str>,
    ) -> std::result::Result<Response<Body>, ureq::Error> {
        let mut b = http::Request::builder().method(method.clone()).uri(url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = authorization {
            b = b.header("Authorization", a);
        }
        let body = match payload {
            Payload::Empty => {
                if *method == http::Method::PUT
                    || *method == http::Method::POST
                    || *method == http::Method::PATCH
                {
                    b = b.header("Content-Length", "0");
                }
                SendBody::none()
            }
            Payload::Bytes(bytes) => {
                b = b.header("Content-Length", bytes.len().to_string());
                SendBody::from_owned_reader(std::io::Cursor::new(bytes.to_vec()))
            }
            Payload::File(p) => {
                let f = std::fs::File::open(p).map_err(ureq::Error::Io)?;
                let len = f.metadata().map_err(ureq::Error::Io)?.len();
                b = b.header("Content-Length", len.to_string());
                SendBody::from_owned_reader(f)
            }
        };
        let req = b.body(body).map_err(ureq::Error::Http)?;
        self.agents.for_url(url)?.run(req)
    }

    /// Sends a request, answering an authentication challenge once and retrying transient
    /// failures with backoff. Returns whatever status the registry finally answered.
    ///
    /// # Errors
    /// [`Error::Registry`] when every attempt failed; [`Error::Unauthorized`] when a challenge
    /// cannot be answered.
    pub(crate) fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        self.send_tries(method, url, headers, payload, ATTEMPTS)
    }

    /// As [`Client::send`], trying at most once: for requests whose retry must be decided by
    /// the caller (a chunk of an upload, after which the registry's state may have moved).
    /// An authentication challenge is still answered.
    pub(crate) fn send_no_retry(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
    ) -> Result<Response<Body>> {
        self.send_tries(method, url, headers, payload, 1)
    }

    fn send_tries(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
        tries: u32,
    ) -> Result<Response<Body>> {
        let mut authenticated = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let url = &self.rebase(url);
            let mut result = self.send_once(&method, url, headers, payload);
            if self.scheme() == Scheme::Unknown {
                result = self.settle_scheme(&method, url, headers, payload, result);
            }
            match result {
                Ok(resp) if resp.status() == 401 && !authenticated => {
                    authenticated = true;
                    attempt -= 1;
                    self.authenticate(url, resp)?;
                }
                Ok(resp)
                    if (resp.status().is_server_error() || resp.status() == 429)
                        && attempt < tries =>
                {
                    std::thread::sleep(backoff(attempt));
                }
                Ok(resp) => return Ok(resp),
                Err(f) if transient(&f.error) && attempt < tries => {
                    std::thread::sleep(backoff(attempt));
                }
                Err(f) => {
                    let hint =
                        tls::hint(&self.opts, &self.reference.registry, &f.error.to_string());
                    return Err(Error::Registry {
                        url: url.to_string(),
                        reason: format!(
                            "{method} failed after {attempt} attempt(s){}: {}{hint}",
                            self.failed_at(url, &f),
                            f.error
                        ),
                    });
                }
            }
        }
    }

    /// For an error message about a request to `url` that failed: where a redirect led it
    /// and which proxy carried it.
    fn failed_at(&self, url: &str, f: &Failed) -> String {
        match &f.redirected {
            Some(hop) => format!(", redirected to {hop}{}", self.agents.route_note(hop)),
            None => self.agents.route_note(url),
        }
    }

    /// With `--tls-verify=false`, decides the scheme from the first HTTPS attempt's `result`,
    /// as containers/image does: an HTTP answer means HTTPS; a failure after connecting (the
    /// handshake got something else than TLS, or nothing) is followed by a plain-HTTP ping of
    /// `/v2/`, and an answer 200 or 401 to it means HTTP (the request is then sent over HTTP).
    /// Refused connections decide nothing (they are retried).
    fn settle_scheme(
        &self,
        method: &http::Method,
        url: &str,
        headers: &[(&str, &str)],
        payload: Payload<'_>,
        result: Sent,
    ) -> Sent {
        let undecided = match &result {
            // an answer over HTTPS, even one redirecting elsewhere
            Ok(_)
            | Err(Failed {
                redirected: Some(_),
                ..
            }) => {
                self.set_scheme(Scheme::Https);
                return result;
            }
            Err(f) => match &f.error {
                ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
                ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
                _ => false,
            },
        };
        let Some(rest) = url.strip_prefix(&self.https_base).filter(|_| !undecided) else {
            return result;
        };
        let ping = format!("{}/v2/", self.http_base);
        match self.send_once(&http::Method::GET, &ping, &[], Payload::Empty) {
            Ok(resp) if resp.status() == 200 || resp.status() == 401 => {
                self.set_scheme(Scheme::Http);
                self.send_once(
                    method,
                    &format!("{}{rest}", self.http_base),
                    headers,
                    payload,
                )
            }
            _ => result,
        }
    }

    /// Turns a final non-success answer into an error naming the URL, the status and the
    /// registry's message.
    pub(crate) fn status_error(&self, url: &str, what: &str, mut resp: Response<Body>) -> Error {
        // the URL the request went to (made before the registry turned out to be plain HTTP)
        let url = &self.rebase(url);
        let status = resp.status();
        let msg = error_message(&mut resp);
        match status.as_u16() {
            401 | 403 => Error::Unauthorized {
                registry: self.reference.registry.clone(),
                reason: format!("{what}: {url} answered {status}{msg}"),
            },
            404 => Error::NotFound(format!("{what}: {url} ({status}{msg})")),
            _ => Error::Registry {
                url: url.to_string(),
                reason: format!("{what}: answered {status}{msg}"),
            },
        }
    }
}

/// The registry's error message (`{"errors":[{"code","message"}]}`), prefixed with `: `, or
/// an empty string.
fn error_message(resp: &mut Response<Body>) -> String {
    let mut body = Vec::new();
    let _ = resp
        .body_mut()
        .as_reader()
        .take(ERROR_BODY_LIMIT)
        .read_to_end(&mut body);
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorItem>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorItem {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(&body) {
        Ok(e) if !e.errors.is_empty() => format!(
            ": {}",
            e.errors
                .iter()
                .map(|i| format!("{} {}", i.code, i.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        _ => {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() {
                String::new()
            } else {
                format!(": {}", text.chars().take(200).collect::<String>())
            }
        }
    }
}
