//! HTTP redirects, followed as Go's `net/http` client (and so skopeo and podman) follows
//! them, one hop at a time so that each hop takes its own route ([`ProxyEnv`]): registries
//! send blob downloads to storage hosts (a CDN, S3) that often need another route than the
//! registry itself.
//!
//! - 301, 302 and 303 turn any method but `GET` and `HEAD` into a `GET` without body;
//!   307 and 308 send the same request again, body included.
//! - The registry's `Authorization` goes only to the first request's host name and its
//!   subdomains, and not from HTTPS to plain HTTP; once a hop left them it is not sent again
//!   (a storage host that gets a bearer token meant for the registry leaks it, and S3
//!   refuses such a request).
//! - At most [`MAX_HOPS`] redirects; a 3xx answer without `Location` is the answer.
//!
//! [`ProxyEnv`]: super::proxy::ProxyEnv

use ureq::http::{Method, StatusCode, Uri};

/// The most redirects one request follows (as Go's client).
pub(crate) const MAX_HOPS: u32 = 10;

/// What to send after a redirect answer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    /// The next URL, absolute.
    pub url: String,
    /// The next method.
    pub method: Method,
    /// Whether the request's body is sent again (else the next request has none).
    pub body: bool,
}

/// The next request after an answer `status` with header `location` to `method url`, or
/// `None` when the answer is not a redirect to follow.
pub(crate) fn next(
    status: StatusCode,
    location: Option<&str>,
    method: &Method,
    url: &str,
) -> Option<Hop> {
    let body = match status.as_u16() {
        301..=303 => false,
        307 | 308 => true,
        _ => return None,
    };
    let url = resolve(url, location?)?;
    let method = if body || *method == Method::GET || *method == Method::HEAD {
        method.clone()
    } else {
        Method::GET
    };
    Some(Hop { url, method, body })
}

/// `location` (a URL reference: absolute, `//host/path`, `/path`, `?query` or a relative
/// path with `.` and `..` segments) resolved against the absolute URL `base` as RFC 3986
/// section 5.2 says (fragments dropped); `None` when either is not an HTTP(S) URL.
pub(crate) fn resolve(base: &str, location: &str) -> Option<String> {
    let base_uri: Uri = base.parse().ok()?;
    let scheme = base_uri.scheme_str()?;
    let authority = base_uri.authority()?;
    let location = location.split('#').next().unwrap_or_default();
    let resolved = if has_scheme(location) {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else {
        let (path, query) = match location.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (location, None),
        };
        let path = if path.is_empty() {
            base_uri.path().to_string()
        } else if path.starts_with('/') {
            remove_dots(path)
        } else {
            let base_path = base_uri.path();
            let dir = &base_path[..base_path.rfind('/').map_or(0, |i| i + 1)];
            remove_dots(&format!("/{}{path}", dir.trim_start_matches('/')))
        };
        let query = match (query, path == base_uri.path() && location.is_empty()) {
            (Some(q), _) => format!("?{q}"),
            // an empty reference is the base itself, query included
            (None, true) => base_uri
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default(),
            (None, false) => String::new(),
        };
        format!("{scheme}://{authority}{path}{query}")
    };
    let uri: Uri = resolved.parse().ok()?;
    (matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some()).then_some(resolved)
}

/// Whether URL reference `r` starts with a scheme (`ALPHA *(ALPHA / DIGIT / + / - / .) :`).
fn has_scheme(r: &str) -> bool {
    r.split_once(':').is_some_and(|(s, _)| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    })
}

/// An absolute path without its `.` and `..` segments (RFC 3986 section 5.2.4).
fn remove_dots(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." if last => out.push(""),
            "." => {}
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

/// `url` with `query` appended to its query string, names and values percent-encoded.
pub(crate) fn with_query(url: &str, query: &[(&str, &str)]) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode as enc};
    /// All but RFC 3986's unreserved characters.
    const VALUE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let mut out = url.to_string();
    for (i, (k, v)) in query.iter().enumerate() {
        let sep = match (i, url.contains('?')) {
            (0, false) => '?',
            _ => '&',
        };
        out.push_str(&format!("{sep}{}={}", enc(k, VALUE), enc(v, VALUE)));
    }
    out
}

/// Whether credentials for `initial`'s host go to `next`: its host name is the same or a
/// subdomain of it (ports not compared, as in Go), and it is not plain HTTP after HTTPS
/// (as curl, unlike Go: they would cross the network in the clear).
pub(crate) fn keeps_credentials(initial: &str, next: &str) -> bool {
    let parts = |u: &str| {
        let u = u.parse::<Uri>().ok()?;
        let host = u.host()?.trim_end_matches('.').to_ascii_lowercase();
        Some((u.scheme_str() == Some("https"), host))
    };
    match (parts(initial), parts(next)) {
        (Some((tls, i)), Some((next_tls, n))) => {
            (next_tls || !tls) && (n == i || n.strip_suffix(&i).is_some_and(|s| s.ends_with('.')))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(status: u16, loc: &str, method: Method) -> Option<Hop> {
        next(
            StatusCode::from_u16(status).unwrap(),
            Some(loc),
            &method,
            "https://reg.example:5000/v2/a/blobs/sha256:1?x=1",
        )
    }

    #[test]
    fn locations_resolve_against_the_request() {
        let base = "https://reg.example:5000/v2/a/blobs/sha256:1?x=1";
        for (loc, want) in [
            ("https://cdn.example/b?sig=2", "https://cdn.example/b?sig=2"),
            ("http://cdn.example/b", "http://cdn.example/b"),
            ("//cdn.example/b", "https://cdn.example/b"),
            (
                "/v2/a/blobs/other",
                "https://reg.example:5000/v2/a/blobs/other",
            ),
            ("other?y=2", "https://reg.example:5000/v2/a/blobs/other?y=2"),
        ] {
            assert_eq!(resolve(base, loc).as_deref(), Some(want), "{loc}");
        }
        for (loc, want) in [
            (
                "/download?src=https://cdn/x",
                "https://reg.example:5000/download?src=https://cdn/x",
            ),
            ("?y=2", "https://reg.example:5000/v2/a/blobs/sha256:1?y=2"),
            ("", "https://reg.example:5000/v2/a/blobs/sha256:1?x=1"),
            ("../b", "https://reg.example:5000/v2/a/b"),
            ("./c/../d", "https://reg.example:5000/v2/a/blobs/d"),
            ("../../../../../e", "https://reg.example:5000/e"),
            ("/x/./y/../z#frag", "https://reg.example:5000/x/z"),
            ("HTTPS://cdn.example/b", "HTTPS://cdn.example/b"),
        ] {
            assert_eq!(resolve(base, loc).as_deref(), Some(want), "{loc}");
        }
        assert_eq!(resolve(base, "ftp://x/y"), None);
        assert_eq!(resolve(base, "http://"), None);
        assert_eq!(resolve("not a url", "/x"), None);
    }

    #[test]
    fn methods_follow_go() {
        let h = hop(302, "/x", Method::PUT).unwrap();
        assert_eq!((h.method, h.body), (Method::GET, false));
        let h = hop(303, "/x", Method::HEAD).unwrap();
        assert_eq!((h.method, h.body), (Method::HEAD, false));
        let h = hop(307, "/x", Method::PUT).unwrap();
        assert_eq!((h.method, h.body), (Method::PUT, true));
        let h = hop(308, "/x", Method::GET).unwrap();
        assert_eq!(h.url, "https://reg.example:5000/x");
        assert_eq!(hop(304, "/x", Method::GET), None);
        assert_eq!(hop(200, "/x", Method::GET), None);
        let none = next(StatusCode::FOUND, None, &Method::GET, "https://r/x");
        assert_eq!(none, None);
    }

    #[test]
    fn queries_are_encoded() {
        let q = [("service", "reg x"), ("scope", "repository:a/b:pull")];
        assert_eq!(
            with_query("https://auth/token", &q),
            "https://auth/token?service=reg%20x&scope=repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(
            with_query("https://auth/t?a=1", &q[..1]),
            "https://auth/t?a=1&service=reg%20x"
        );
        assert_eq!(with_query("https://auth/t", &[]), "https://auth/t");
    }

    #[test]
    fn credentials_stay_with_the_host_and_its_subdomains() {
        let reg = "https://Reg.Example:5000/v2/";
        assert!(keeps_credentials(reg, "https://reg.example/x"));
        assert!(
            !keeps_credentials(reg, "http://reg.example/x"),
            "downgraded"
        );
        assert!(keeps_credentials(
            "http://reg.example/v2/",
            "http://reg.example:1/x"
        ));
        assert!(keeps_credentials(reg, "https://blobs.reg.example:443/x"));
        assert!(!keeps_credentials(reg, "https://cdn.example/x"));
        assert!(!keeps_credentials(reg, "https://evilreg.example/x"));
        assert!(!keeps_credentials(
            "https://127.0.0.1:5000/v2/",
            "http://0.0.0.0:5000/x"
        ));
    }
}
