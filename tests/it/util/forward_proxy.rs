//! Real forward proxies on 127.0.0.1, logging what they carry for the tests to read: Debian's
//! tinyproxy (HTTP; in the foreground with a configuration of its own; request lines such as
//! `CONNECT host:port HTTP/1.1`) and microsocks (SOCKS5; `connected to host:port`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::registry::serve_on_free_port;
use super::tools;

/// Which proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// tinyproxy, `http://`.
    Http,
    /// microsocks, `socks5://`.
    Socks5,
}

pub struct ForwardProxy {
    pub port: u16,
    kind: Kind,
    child: Child,
    log: PathBuf,
    _tmp: tempfile::TempDir,
}

impl ForwardProxy {
    /// An HTTP proxy (tinyproxy).
    pub fn start() -> ForwardProxy {
        ForwardProxy::start_kind(Kind::Http)
    }

    pub fn start_kind(kind: Kind) -> ForwardProxy {
        let tool = match kind {
            Kind::Http => "tinyproxy",
            Kind::Socks5 => "microsocks",
        };
        tools::require(tool);
        let tmp = super::tempdir();
        let log = tmp.path().join("log");
        let started = serve_on_free_port(
            |port| {
                let mut cmd = Command::new(tool);
                match kind {
                    Kind::Http => {
                        let conf = tmp.path().join("tinyproxy.conf");
                        // No ConnectPort line: CONNECT to any port (registries are not on 443).
                        std::fs::write(
                            &conf,
                            format!(
                                "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 100\n\
                                 LogFile \"{}\"\nLogLevel Info\nAllow 127.0.0.1\n",
                                log.display()
                            ),
                        )
                        .unwrap();
                        cmd.args(["-d", "-c"]).arg(&conf);
                        cmd.stdout(Stdio::null()).stderr(Stdio::null());
                    }
                    Kind::Socks5 => {
                        // microsocks logs to standard error.
                        let out = std::fs::File::create(&log).unwrap();
                        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
                        cmd.stdout(Stdio::null()).stderr(out);
                    }
                }
                cmd.stdin(Stdio::null()).spawn().unwrap()
            },
            |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        );
        if let Some((child, port)) = started {
            return ForwardProxy {
                port,
                kind,
                child,
                log,
                _tmp: tmp,
            };
        }
        panic!(
            "{tool} did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// `http://127.0.0.1:PORT` or `socks5://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self.kind {
            Kind::Http => format!("http://127.0.0.1:{}", self.port),
            Kind::Socks5 => format!("socks5://127.0.0.1:{}", self.port),
        }
    }

    /// What the proxy was asked to carry, one a line: request lines (`GET http://…`,
    /// `CONNECT host:port HTTP/1.1`) of tinyproxy, `connected to host:port` of microsocks.
    pub fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        match self.kind {
            Kind::Http => log
                .lines()
                .filter_map(|l| l.split_once("): ").map(|(_, r)| r.to_string()))
                .filter(|r| r.ends_with(" HTTP/1.1") || r.ends_with(" HTTP/1.0"))
                .collect(),
            Kind::Socks5 => log
                .split("client[")
                .filter_map(|l| l.split_once(": connected to ").map(|(_, r)| r.trim()))
                .map(|r| format!("connected to {r}"))
                .collect(),
        }
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
