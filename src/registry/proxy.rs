//! HTTP proxies from the environment, read the way skopeo and podman read them (Go's
//! `net/http`), so that one set of variables routes every container tool alike:
//!
//! - `HTTPS_PROXY` (else `https_proxy`) for `https://` requests, `HTTP_PROXY` (else
//!   `http_proxy`) for `http://` ones; a value without a scheme is `http://`; `socks5://`
//!   and `socks5h://` proxies work too. `ALL_PROXY` is not read (Go does not).
//! - `NO_PROXY` (else `no_proxy`): a comma-separated list of exemptions: `*` (everything),
//!   an IP address or a CIDR block (`10.0.0.0/8`), a domain name, which exempts itself and
//!   its subdomains (`corp.example` exempts `registry.corp.example`), or, with a leading `.`
//!   or `*.`, only its subdomains; an address or name may end in `:PORT`.
//! - Requests to `localhost` and loopback addresses are never proxied.
//!
//! The route is chosen per request (registry, token server); a redirect is followed along the
//! route of the request that got it.

use std::net::IpAddr;
use std::sync::OnceLock;

/// One `NO_PROXY` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Exempt {
    /// `*`.
    All,
    /// An address, with a port if the entry named one.
    Ip(IpAddr, Option<u16>),
    /// A CIDR block.
    Block(IpAddr, u8),
    /// `.NAME` (lower case): hosts ending with it; `itself` also the name without the dot.
    Domain {
        suffix: String,
        itself: bool,
        port: Option<u16>,
    },
}

impl Exempt {
    /// The entry `p` (trimmed, lower case, not empty), or `None` when it is malformed.
    fn parse(p: &str) -> Option<Exempt> {
        if p == "*" {
            return Some(Exempt::All);
        }
        if let Some((ip, bits)) = p.split_once('/') {
            let ip: IpAddr = ip.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            return (bits <= max).then_some(Exempt::Block(ip, bits));
        }
        let (host, port) = split_port(p)?;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Exempt::Ip(ip, port));
        }
        // Only `*.` is taken off (as Go does): `*name` stays a name nothing matches.
        let host = if host.starts_with("*.") {
            &host[1..]
        } else {
            host
        };
        if host.is_empty() || host == "." {
            return None;
        }
        let (suffix, itself) = match host.strip_prefix('.') {
            Some(_) => (host.to_string(), false),
            None => (format!(".{host}"), true),
        };
        Some(Exempt::Domain {
            suffix,
            itself,
            port,
        })
    }

    fn matches(&self, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
        let port_ok = |p: &Option<u16>| p.is_none_or(|p| p == port);
        match (self, ip) {
            (Exempt::All, _) => true,
            (Exempt::Ip(a, p), Some(ip)) => *a == ip && port_ok(p),
            (Exempt::Block(net, bits), Some(ip)) => in_block(ip, *net, *bits),
            (
                Exempt::Domain {
                    suffix,
                    itself,
                    port: p,
                },
                _,
            ) => {
                (host.ends_with(suffix.as_str()) || (*itself && host == &suffix[1..])) && port_ok(p)
            }
            _ => false,
        }
    }
}

/// `HOST[:PORT]` or `[V6][:PORT]` split; `None` when the port is not a number.
fn split_port(p: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = p.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(port) => Some((host, Some(port.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match p.rsplit_once(':') {
        // A bare IPv6 address has colons and no port.
        Some((host, _)) if host.contains(':') => Some((p, None)),
        Some((host, port)) => Some((host, Some(port.parse().ok()?))),
        None => Some((p, None)),
    }
}

/// Whether `ip` is in the block `net`/`bits` (of the same family).
fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `proxy` with the password of its user part shown as `***` (as Go's `URL.Redacted`).
pub(crate) fn redacted(proxy: &str) -> String {
    let (scheme, rest) = proxy.split_once("://").unwrap_or(("http", proxy));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => proxy.to_string(),
    }
}

/// The proxy settings of the environment.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    http: Option<String>,
    https: Option<String>,
    exempt: Vec<Exempt>,
}

impl std::fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |p: &Option<String>| p.as_deref().map(redacted);
        f.debug_struct("ProxyEnv")
            .field("http", &shown(&self.http))
            .field("https", &shown(&self.https))
            .field("exempt", &self.exempt)
            .finish()
    }
}

impl ProxyEnv {
    /// The settings of this process's environment, read once.
    pub fn get() -> &'static ProxyEnv {
        static ENV: OnceLock<ProxyEnv> = OnceLock::new();
        ENV.get_or_init(|| ProxyEnv::from_vars(|k| std::env::var(k).ok()))
    }

    /// The settings `var` gives (the first non-empty of each pair of names).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> ProxyEnv {
        let any = |names: [&str; 2]| names.iter().find_map(|n| var(n).filter(|v| !v.is_empty()));
        let url = |v: String| {
            let v = v.trim().to_string();
            if v.contains("://") {
                v
            } else {
                format!("http://{v}")
            }
        };
        let exempt = any(["NO_PROXY", "no_proxy"])
            .unwrap_or_default()
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .filter_map(|p| Exempt::parse(&p))
            .collect();
        ProxyEnv {
            http: any(["HTTP_PROXY", "http_proxy"]).map(url),
            https: any(["HTTPS_PROXY", "https_proxy"]).map(url),
            exempt,
        }
    }

    /// The proxy URL a request to `url` goes through; `None`: straight to the host.
    pub fn route(&self, url: &str) -> Option<&str> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return None;
        };
        let proxy = if https { &self.https } else { &self.http };
        let proxy = proxy.as_deref()?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = split_port(authority)?;
        let host = host.to_ascii_lowercase();
        let port = port.unwrap_or(if https { 443 } else { 80 });
        let ip = host.parse::<IpAddr>().ok();
        if host == "localhost" || ip.is_some_and(|ip| ip.to_canonical().is_loopback()) {
            return None;
        }
        if self.exempt.iter().any(|e| e.matches(&host, ip, port)) {
            return None;
        }
        Some(proxy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_vars(|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn the_scheme_picks_the_variable_and_upper_case_wins() {
        let e = env(&[
            ("HTTPS_PROXY", "proxy.corp:3128"),
            ("https_proxy", "http://other:1"),
            ("http_proxy", "socks5://s:1080"),
        ]);
        assert_eq!(
            e.route("https://quay.io/v2/"),
            Some("http://proxy.corp:3128")
        );
        assert_eq!(e.route("http://quay.io/v2/"), Some("socks5://s:1080"));
        assert_eq!(
            env(&[("ALL_PROXY", "http://p:1")]).route("https://quay.io/"),
            None
        );
        assert_eq!(env(&[("HTTPS_PROXY", "")]).route("https://quay.io/"), None);
    }

    #[test]
    fn loopback_is_never_proxied() {
        let e = env(&[("HTTPS_PROXY", "http://p:1"), ("HTTP_PROXY", "http://p:1")]);
        for url in [
            "https://localhost:5000/v2/",
            "http://127.0.0.1:5000/v2/",
            "http://127.9.9.9/v2/",
            "https://[::1]:5000/v2/",
            "https://[::ffff:127.0.0.1]:5000/v2/",
        ] {
            assert_eq!(e.route(url), None, "{url}");
        }
        assert_eq!(e.route("https://10.0.0.1:5000/v2/"), Some("http://p:1"));
    }

    #[test]
    fn no_proxy_entries_as_go_reads_them() {
        let e = env(&[
            ("HTTPS_PROXY", "http://p:1"),
            (
                "no_proxy",
                "corp.example, .only-subs.example,*.star.example,*glob.example,10.0.0.0/8,192.168.1.5:5000,[fd00::1],bad:port:x,*.",
            ),
        ]);
        let direct = [
            "https://corp.example/v2/",
            "https://registry.corp.example:5000/v2/",
            "https://a.only-subs.example/",
            "https://a.star.example/",
            "https://10.20.30.40:5000/",
            "https://192.168.1.5:5000/",
            "https://[fd00::1]:443/",
        ];
        for url in direct {
            assert_eq!(e.route(url), None, "{url}");
        }
        let proxied = [
            "https://notcorp.example/",
            "https://only-subs.example/",
            "https://star.example/",
            "https://11.0.0.1/",
            "https://192.168.1.5/",
            "https://[fd00::2]/",
            "https://glob.example/",
            "https://a.glob.example/",
        ];
        for url in proxied {
            assert_eq!(e.route(url), Some("http://p:1"), "{url}");
        }
        let all = env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "x, *")]);
        assert_eq!(all.route("https://quay.io/"), None);
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redacted("http://me:s3cret@proxy:3128/x"),
            "http://me:***@proxy:3128/x"
        );
        assert_eq!(redacted("http://me@proxy:3128"), "http://me@proxy:3128");
        assert_eq!(redacted("http://proxy:3128"), "http://proxy:3128");
        let e = env(&[("HTTPS_PROXY", "http://me:s3cret@p:1")]);
        assert!(!format!("{e:?}").contains("s3cret"), "{e:?}");
    }

    #[test]
    fn blocks_and_ports_parse() {
        assert!(in_block(
            "10.1.2.3".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert!(in_block(
            "1.2.3.4".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0
        ));
        assert!(!in_block(
            "fd00::1".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            8
        ));
        assert_eq!(Exempt::parse("10.0.0.0/33"), None);
        assert_eq!(split_port("[::1]:80"), Some(("::1", Some(80))));
        assert_eq!(split_port("::1"), Some(("::1", None)));
        assert_eq!(split_port("h:x"), None);
    }
}
