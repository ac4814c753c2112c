//! A real registry for tests: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1 at a
//! free port, storage in a temporary directory, optionally behind htpasswd; killed on drop.
//! And [`TokenGateway`], a bearer-token front for it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use super::proxy::{Fault, Proxy};
use super::tools;

pub struct Registry {
    child: Child,
    pub tmp: tempfile::TempDir,
    pub port: u16,
    /// For a registry behind a private CA: the CA certificate and a client pair it signed.
    pub pki: Option<Pki>,
}

/// How a test registry serves HTTPS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsMode {
    /// Plain HTTP.
    Off,
    /// A self-signed certificate for 127.0.0.1.
    SelfSigned,
    /// A certificate signed by a private CA ([`Pki`]); with `clients`, a client certificate
    /// signed by that CA is required (`http.tls.clientcas`).
    PrivateCa { clients: bool },
}

/// The files of a private CA made by `openssl` (EC P-256 keys, valid two days).
pub struct Pki {
    /// The CA certificate (PEM).
    pub ca: PathBuf,
    /// The registry's certificate for IP 127.0.0.1 and its key.
    pub server: (PathBuf, PathBuf),
    /// A client certificate (extendedKeyUsage clientAuth) and its key.
    pub client: (PathBuf, PathBuf),
}

impl Pki {
    fn make(dir: &Path) -> Pki {
        tools::require("openssl");
        let p = |n: &str| dir.join(n);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        tools::run(
            Command::new("openssl")
                .args(["req", "-x509", "-days", "2"])
                .args(ec)
                .args(["-subj", "/CN=ocitree test CA"])
                .args(["-addext", "basicConstraints=critical,CA:TRUE"])
                .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
                .arg("-keyout")
                .arg(p("ca.key"))
                .arg("-out")
                .arg(p("ca.pem")),
        );
        let leaf = |name: &str, cn: &str, ext: &str| {
            let (key, csr, cert, extfile) = (
                p(&format!("{name}.key")),
                p(&format!("{name}.csr")),
                p(&format!("{name}.pem")),
                p(&format!("{name}.ext")),
            );
            std::fs::write(&extfile, ext).unwrap();
            tools::run(
                Command::new("openssl")
                    .arg("req")
                    .args(ec)
                    .args(["-subj", &format!("/CN={cn}")])
                    .arg("-keyout")
                    .arg(&key)
                    .arg("-out")
                    .arg(&csr),
            );
            tools::run(
                Command::new("openssl")
                    .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
                    .arg("-in")
                    .arg(&csr)
                    .arg("-CA")
                    .arg(p("ca.pem"))
                    .arg("-CAkey")
                    .arg(p("ca.key"))
                    .arg("-extfile")
                    .arg(&extfile)
                    .arg("-out")
                    .arg(&cert),
            );
            (cert, key)
        };
        let server = leaf(
            "server",
            "127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        );
        let client = leaf(
            "client",
            "ocitree test client",
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        );
        Pki {
            ca: p("ca.pem"),
            server,
            client,
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a server with `spawn(port)` on a free port and waits (up to 10 s) until `ready(port)`;
/// a server that exits meanwhile (the port was taken since) is started again on another port,
/// five times at most. Returns the running server and its port.
pub fn serve_on_free_port(
    mut spawn: impl FnMut(u16) -> Child,
    ready: impl Fn(u16) -> bool,
) -> Option<(Child, u16)> {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(port);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if ready(port) {
                return Some((child, port));
            }
            if child.try_wait().unwrap().is_some() {
                break; // port taken meanwhile: try another
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    None
}

/// The status code of `GET /v2/` on 127.0.0.1:port, if anything answers.
fn probe(port: u16) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).ok()?;
    std::str::from_utf8(&buf[9..12]).ok()?.parse().ok()
}

impl Registry {
    /// An open registry.
    pub fn start() -> Registry {
        Registry::start_with(None, TlsMode::Off)
    }

    /// A registry requiring basic auth for `user` / `password` (bcrypt htpasswd).
    pub fn with_htpasswd(user: &str, password: &str) -> Registry {
        Registry::start_with(Some((user, password)), TlsMode::Off)
    }

    /// A registry behind htpasswd `alice:s3cret` holding the `small` test image as
    /// `test/small:latest`.
    pub fn small_behind_htpasswd() -> Registry {
        let reg = Registry::with_htpasswd("alice", "s3cret");
        reg.skopeo_push(
            &super::wild_images().join("small"),
            "latest",
            "test/small",
            Some("alice:s3cret"),
        );
        reg
    }

    /// A registry serving HTTPS with a self-signed certificate for 127.0.0.1.
    pub fn with_self_signed_tls() -> Registry {
        Registry::start_with(None, TlsMode::SelfSigned)
    }

    /// A registry serving HTTPS as `tls` says.
    pub fn with_tls(tls: TlsMode) -> Registry {
        Registry::start_with(None, tls)
    }

    fn start_with(auth: Option<(&str, &str)>, tls: TlsMode) -> Registry {
        tools::require("docker-registry");
        let tmp = super::tempdir();
        let mut extra_cfg = String::new();
        let mut pki = None;
        if let TlsMode::PrivateCa { clients } = tls {
            let made = Pki::make(tmp.path());
            extra_cfg = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                made.server.0.display(),
                made.server.1.display()
            );
            if clients {
                extra_cfg += &format!("    clientcas:\n      - {}\n", made.ca.display());
            }
            pki = Some(made);
        }
        if tls == TlsMode::SelfSigned {
            tools::require("openssl");
            let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
            tools::run(
                Command::new("openssl")
                    .args([
                        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    ])
                    .args([
                        "-subj",
                        "/CN=127.0.0.1",
                        "-addext",
                        "subjectAltName=IP:127.0.0.1",
                    ])
                    .arg("-keyout")
                    .arg(&key)
                    .arg("-out")
                    .arg(&cert),
            );
            extra_cfg = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            );
        }
        if let Some((u, p)) = auth {
            tools::require("htpasswd");
            let out = tools::run(Command::new("htpasswd").args(["-Bbn", u, p]));
            let file = tmp.path().join("htpasswd");
            std::fs::write(&file, out.stdout).unwrap();
            extra_cfg += &format!(
                "auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                file.display()
            );
        }
        let started = serve_on_free_port(
            |port| {
                let cfg = tmp.path().join("config.yml");
                std::fs::write(
                    &cfg,
                    format!(
                        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{extra_cfg}",
                        tmp.path().join("data").display()
                    ),
                )
                .unwrap();
                let log = std::fs::File::create(tmp.path().join("log")).unwrap();
                Command::new("docker-registry")
                    .arg("serve")
                    .arg(&cfg)
                    .stdin(Stdio::null())
                    .stdout(log.try_clone().unwrap())
                    .stderr(log)
                    .spawn()
                    .unwrap()
            },
            |port| probe(port).is_some(),
        );
        if let Some((child, port)) = started {
            return Registry {
                child,
                tmp,
                port,
                pki,
            };
        }
        panic!(
            "docker-registry did not start: {}",
            std::fs::read_to_string(tmp.path().join("log")).unwrap_or_default()
        );
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `docker://127.0.0.1:PORT/REPO`.
    pub fn url(&self, repo: &str) -> String {
        format!("docker://{}/{repo}", self.host())
    }

    /// A certs.d-style directory `TMP/NAME` holding the private CA as `ca.crt` (with `ca`)
    /// and the client pair as `client.cert` + `client.key` (with `client`).
    pub fn cert_dir(&self, name: &str, ca: bool, client: bool) -> PathBuf {
        let pki = self.pki.as_ref().expect("a registry behind a private CA");
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        if ca {
            std::fs::copy(&pki.ca, dir.join("ca.crt")).unwrap();
        }
        if client {
            std::fs::copy(&pki.client.0, dir.join("client.cert")).unwrap();
            std::fs::copy(&pki.client.1, dir.join("client.key")).unwrap();
        }
        dir
    }

    /// Pushes an OCI layout image with skopeo.
    pub fn skopeo_push(&self, layout: &Path, tag: &str, repo: &str, creds: Option<&str>) {
        tools::require("skopeo");
        let mut c = Command::new("skopeo");
        c.args(["copy", "-q", "--dest-tls-verify=false"]);
        if self.pki.is_some() {
            c.arg("--dest-cert-dir")
                .arg(self.cert_dir("skopeo", true, true));
        }
        if let Some(cr) = creds {
            c.arg(format!("--dest-creds={cr}"));
        }
        c.arg(format!("oci:{}:{tag}", layout.display()))
            .arg(self.url(repo));
        tools::run(&mut c);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bearer-token front for an open registry, as registries with a token server work: `/v2/`
/// requests without `Authorization: Bearer TOKEN` get a 401 challenge pointing at `/token` on
/// the same port, which hands out TOKEN for the right Basic credentials. One request per
/// connection (`Connection: close`); bodies are not relayed, so it serves pulls only.
/// [`TokenGateway::redirecting`] sends blob downloads elsewhere, as registries with their
/// blobs in S3 or behind a CDN do.
pub struct TokenGateway {
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

const TOKEN: &str = "test-token-123";

impl TokenGateway {
    pub fn start(upstream: u16, user: &str, password: &str) -> TokenGateway {
        TokenGateway::start_with(upstream, user, password, None)
    }

    /// As [`TokenGateway::start`], answering every authorized blob `GET` with a
    /// `307 Temporary Redirect` to `to` followed by the request's path (and `?sig=1`, as a
    /// presigned URL has). `{port}` in `to` stands for the gateway's own port.
    pub fn redirecting(upstream: u16, user: &str, password: &str, to: &str) -> TokenGateway {
        TokenGateway::start_with(upstream, user, password, Some(to.to_string()))
    }

    fn start_with(upstream: u16, user: &str, pass: &str, to: Option<String>) -> TokenGateway {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let basic = {
            use base64::Engine as _;
            let raw = format!("{user}:{pass}");
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            )
        };
        let front = Arc::new(Front {
            upstream,
            port,
            basic,
            redirect: to,
        });
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                let (log, front) = (Arc::clone(&log2), Arc::clone(&front));
                std::thread::spawn(move || front.serve(client, &log));
            }
        });
        TokenGateway { port, log }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo}", self.port)
    }

    /// Request lines seen, token requests included.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// One [`TokenGateway`]'s settings.
struct Front {
    upstream: u16,
    port: u16,
    basic: String,
    redirect: Option<String>,
}

impl Front {
    fn serve(&self, mut client: TcpStream, log: &Mutex<Vec<String>>) {
        let Some(head) = read_head(&mut client) else {
            return;
        };
        let request_line = head.split("\r\n").next().unwrap_or_default().to_string();
        let auth = header(&head, "authorization").unwrap_or_default();
        log.lock().unwrap().push(request_line.clone());
        let path = request_line.split(' ').nth(1).unwrap_or_default();
        if path.starts_with("/token") {
            if auth == self.basic {
                let token = format!("{{\"token\":\"{TOKEN}\"}}");
                reply(&mut client, "200 OK", "", &token);
            } else {
                reply(
                    &mut client,
                    "401 Unauthorized",
                    "",
                    r#"{"details":"bad credentials"}"#,
                );
            }
            return;
        }
        if auth != format!("Bearer {TOKEN}") {
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{}/token\",service=\"test-registry\"\r\n",
                self.port
            );
            reply(
                &mut client,
                "401 Unauthorized",
                &challenge,
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
            );
            return;
        }
        if let Some(to) = &self.redirect
            && request_line.starts_with("GET ")
            && path.contains("/blobs/sha256:")
        {
            let to = to.replace("{port}", &self.port.to_string());
            let location = format!("Location: {to}{path}?sig=1\r\n");
            reply(&mut client, "307 Temporary Redirect", &location, "");
            return;
        }
        relay(&head, self.upstream, &mut client);
    }
}

/// Reads a request's head (up to the blank line) from `client`; `None` when it is not HTTP
/// (a TLS handshake) or the connection ends first.
pub fn read_head(client: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match client.read(&mut byte) {
            // not HTTP (a TLS handshake): close, as HTTP servers do
            Ok(1) if head.is_empty() && !byte[0].is_ascii_uppercase() => return None,
            Ok(1) => head.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// The value of header `name` (lower case) in request head `head`.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|l| {
        l.split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    })
}

/// Answers with `status`, the header lines `extra` and a JSON `body`; one request a
/// connection.
pub fn reply(c: &mut TcpStream, status: &str, extra: &str, body: &str) {
    let _ = write!(
        c,
        "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Replays request `head` (no body) to the registry on 127.0.0.1:`upstream`, without its
/// `Authorization` and `Connection` headers, and relays the answer.
pub fn relay(head: &str, upstream: u16, client: &mut TcpStream) {
    let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
        return;
    };
    let mut lines = head.split("\r\n");
    let mut out = format!("{}\r\n", lines.next().unwrap_or_default());
    for l in lines.filter(|l| !l.is_empty()) {
        let name = l.split(':').next().unwrap_or_default().to_ascii_lowercase();
        if name != "authorization" && name != "connection" {
            out.push_str(l);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    if server.write_all(out.as_bytes()).is_err() {
        return;
    }
    let _ = std::io::copy(&mut server, client);
}
