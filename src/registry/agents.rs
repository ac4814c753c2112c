//! The HTTP agents of one [`Client`](super::Client): one straight to the hosts, and one per
//! proxy the environment routes requests through ([`ProxyEnv`]), made when a request first
//! takes that route. Each keeps its own connection pool; all share the timeouts and the TLS
//! configuration.

use std::sync::Mutex;
use std::time::Duration;

use ureq::tls::TlsConfig;
use ureq::{Agent, Proxy};

use crate::registry::proxy::{ProxyEnv, redacted};

/// `socks5://` as `socks5h://`: the proxy resolves the registry's name, as Go's SOCKS5
/// dialer has it do (ureq would look the name up here, which fails where only the proxy
/// can resolve names).
fn remote_names(proxy: &str) -> String {
    match proxy.strip_prefix("socks5://") {
        Some(rest) => format!("socks5h://{rest}"),
        None => proxy.to_string(),
    }
}

/// The agents of one client, by route.
#[derive(Debug)]
pub(crate) struct Agents {
    timeout: Duration,
    tls: TlsConfig,
    env: &'static ProxyEnv,
    /// `(proxy URL or None, agent)`, in the order the routes were first taken.
    made: Mutex<Vec<(Option<String>, Agent)>>,
}

impl Agents {
    /// Agents with these timeouts and TLS configuration, routed as the environment says.
    pub(crate) fn new(timeout: Duration, tls: TlsConfig) -> Agents {
        Agents {
            timeout,
            tls,
            env: ProxyEnv::get(),
            made: Mutex::new(Vec::new()),
        }
    }

    /// For error messages: `" (through the proxy URL)"` when a request to `url` goes through
    /// one, else nothing.
    pub(crate) fn route_note(&self, url: &str) -> String {
        self.env
            .route(url)
            .map(|p| format!(" (through the proxy {}, from the environment)", redacted(p)))
            .unwrap_or_default()
    }

    /// The agent for a request to `url`.
    ///
    /// # Errors
    /// The proxy the environment names for it is not a URL ureq can use.
    pub(crate) fn for_url(&self, url: &str) -> Result<Agent, ureq::Error> {
        let route = self.env.route(url);
        let mut made = self.made.lock().expect("lock poisoned only by a panic");
        if let Some((_, a)) = made.iter().find(|(r, _)| r.as_deref() == route) {
            return Ok(a.clone());
        }
        let proxy = route.map(|p| Proxy::new(&remote_names(p))).transpose()?;
        let t = Some(self.timeout);
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(t)
            .timeout_send_request(t)
            .timeout_recv_response(t)
            .timeout_per_read(t)
            .timeout_per_write(t)
            .user_agent(format!("ocitree/{}", env!("CARGO_PKG_VERSION")))
            // redirects are followed by the client, each hop on its own route
            .max_redirects(0)
            .tls_config(self.tls.clone())
            // Never ureq's own reading of the environment: the route is chosen above.
            .proxy(proxy)
            .build()
            .into();
        made.push((route.map(String::from), agent.clone()));
        Ok(agent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks5_resolves_at_the_proxy() {
        assert_eq!(remote_names("socks5://p:1080"), "socks5h://p:1080");
        assert_eq!(remote_names("http://p:1"), "http://p:1");
    }
}
