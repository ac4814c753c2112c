//! [`Proxy`], a loopback TCP proxy in front of a test registry that can cut or corrupt what
//! the registry sends, or drop what the client sends.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a [`Proxy`] does to the bytes the registry sends back.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Nothing: a plain relay (its log shows what the client asked).
    None,
    /// Once in the proxy's life, close the connection after it carried this many response
    /// bytes (the other connections are untouched).
    CutOnce(usize),
    /// On every connection, invert the response byte at this offset.
    Flip(usize),
    /// Never answer: responses are swallowed (the connection stays open).
    Stall,
    /// Close every connection after it carried this many response bytes.
    CutEvery(usize),
    /// Once in the proxy's life, hold a connection's responses for this many seconds after
    /// it carried this many bytes.
    PauseOnce(usize, u64),
    /// As `CutOnce`, and hide `Range` headers from the registry (it then answers 200 with
    /// the whole blob, as servers without range support do).
    CutOnceNoRange(usize),
    /// Once in the proxy's life, close a connection after the client sent this many request
    /// bytes on it (an upload dropped mid-request).
    DropRequestOnce(usize),
    /// Close the connection carrying the Nth (1-based, over the proxy's life) request line
    /// starting with this text, in the middle of that line (the registry gets none of it).
    DropRequestLine(&'static str, usize),
    /// Answer the Nth (1-based, over the proxy's life) request whose line starts with this
    /// text with this HTTP status, after reading the whole request (head and
    /// `Content-Length` body), then close the connection: the registry never sees it. Only
    /// its head is logged.
    AnswerLine(&'static str, usize, u16),
    /// As `AnswerLine`, for every request whose line starts with this text (a mirror that
    /// does not hold those blobs).
    AnswerAll(&'static str, u16),
    /// Once a connection carried this many response bytes, close it, and from then on close
    /// every connection and every further request at once (a mirror that went down).
    CutThenDown(usize),
    /// Rewrite each upload `Location` header to a path relative to the request
    /// (`UUID?_state=…`, as the distribution spec allows).
    RelativeUploadLocation,
}

/// A loopback TCP proxy in front of a registry, with a log of every request byte sent.
pub struct Proxy {
    pub port: u16,
    log: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16, fault: Fault) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let cut_done = Arc::new(AtomicBool::new(false));
        let lines_seen = Arc::new(AtomicUsize::new(0));
        let (log2, stop2) = (Arc::clone(&log), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = conn else { continue };
                if matches!(fault, Fault::CutThenDown(_)) && cut_done.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (log, cut_done) = (Arc::clone(&log2), Arc::clone(&cut_done));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                // requests: relayed as they are, and logged
                let dropped = Arc::clone(&cut_done);
                let seen = Arc::clone(&lines_seen);
                std::thread::spawn(move || {
                    let (mut from, mut to) = (c2, s2);
                    let mut buf = [0u8; 16384];
                    let mut sent = 0usize;
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if matches!(fault, Fault::CutThenDown(_)) && dropped.load(Ordering::SeqCst)
                        {
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            return;
                        }
                        if let Fault::DropRequestOnce(at) = fault
                            && sent + n > at
                            && !dropped.swap(true, Ordering::SeqCst)
                        {
                            let _ = to.write_all(&buf[..at - sent]);
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            return;
                        }
                        if let Fault::DropRequestLine(text, nth) = fault
                            && let Some(i) = find_nth(&buf[..n], text.as_bytes(), &seen, nth)
                        {
                            let _ = to.write_all(&buf[..i + 2]);
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            return;
                        }
                        let answer = match fault {
                            Fault::AnswerLine(text, nth, status) => {
                                find_nth(&buf[..n], text.as_bytes(), &seen, nth)
                                    .map(|i| (i, status))
                            }
                            Fault::AnswerAll(text, status) => {
                                find_line(&buf[..n], text.as_bytes()).map(|i| (i, status))
                            }
                            _ => None,
                        };
                        if let Some((i, status)) = answer {
                            let _ = to.write_all(&buf[..i]);
                            log.lock().unwrap().extend_from_slice(&buf[..i]);
                            let head = read_request(&mut from, buf[i..n].to_vec());
                            log.lock().unwrap().extend_from_slice(&head);
                            let reply = format!(
                                "HTTP/1.1 {status} Injected\r\nContent-Length: 0\r\n\
                                 Connection: close\r\n\r\n"
                            );
                            let _ = from.write_all(reply.as_bytes());
                            let _ = to.shutdown(Shutdown::Both);
                            let _ = from.shutdown(Shutdown::Both);
                            return;
                        }
                        sent += n;
                        log.lock().unwrap().extend_from_slice(&buf[..n]);
                        if let Fault::CutOnceNoRange(_) = fault {
                            // same length, so framing is unchanged
                            for i in 0..n.saturating_sub(6) {
                                if buf[i..i + 6].eq_ignore_ascii_case(b"range:") {
                                    buf[i..i + 6].copy_from_slice(b"xange:");
                                }
                            }
                        }
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(Shutdown::Write);
                });
                // responses: relayed with the fault
                std::thread::spawn(move || {
                    let (mut from, mut to) = (server, client);
                    let mut buf = [0u8; 16384];
                    let mut sent = 0usize;
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if let Fault::RelativeUploadLocation = fault {
                            let rewritten = relative_upload_location(&buf[..n]);
                            if to.write_all(&rewritten).is_err() {
                                break;
                            }
                            continue;
                        }
                        let chunk = &mut buf[..n];
                        match fault {
                            Fault::None
                            | Fault::DropRequestOnce(_)
                            | Fault::DropRequestLine(..)
                            | Fault::AnswerLine(..)
                            | Fault::AnswerAll(..)
                            | Fault::RelativeUploadLocation => {}
                            Fault::Stall => continue,
                            Fault::PauseOnce(at, secs) => {
                                if sent + n > at && !cut_done.swap(true, Ordering::SeqCst) {
                                    if to.write_all(&chunk[..at - sent]).is_err() {
                                        break;
                                    }
                                    std::thread::sleep(Duration::from_secs(secs));
                                    if to.write_all(&chunk[at - sent..]).is_err() {
                                        break;
                                    }
                                    sent += n;
                                    continue;
                                }
                            }
                            Fault::CutEvery(at) => {
                                if sent + n > at {
                                    let _ = to.write_all(&chunk[..at - sent]);
                                    let _ = to.shutdown(Shutdown::Both);
                                    let _ = from.shutdown(Shutdown::Both);
                                    return;
                                }
                            }
                            Fault::CutOnce(at)
                            | Fault::CutOnceNoRange(at)
                            | Fault::CutThenDown(at) => {
                                if sent + n > at && !cut_done.swap(true, Ordering::SeqCst) {
                                    let _ = to.write_all(&chunk[..at - sent]);
                                    let _ = to.shutdown(Shutdown::Both);
                                    let _ = from.shutdown(Shutdown::Both);
                                    return;
                                }
                            }
                            Fault::Flip(at) => {
                                if (sent..sent + n).contains(&at) {
                                    chunk[at - sent] ^= 0xff;
                                }
                            }
                        }
                        if to.write_all(chunk).is_err() {
                            break;
                        }
                        sent += n;
                    }
                    if let Fault::Stall = fault {
                        // the registry closed (it does on a TLS handshake): stay silent
                        std::thread::sleep(Duration::from_secs(120));
                    }
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
        });
        Proxy { port, log, stop }
    }

    pub fn url(&self, repo: &str) -> String {
        format!("docker://127.0.0.1:{}/{repo}", self.port)
    }

    /// The request lines and headers the client sent, as text.
    pub fn requests(&self) -> String {
        String::from_utf8_lossy(&self.log.lock().unwrap()).into_owned()
    }

    /// Request lines (`GET /v2/... HTTP/1.1`) that fetched blob `digest`, with their headers.
    pub fn blob_requests(&self, digest: &str) -> Vec<String> {
        self.requests()
            .split("\r\n\r\n")
            .filter(|r| r.contains(&format!("/blobs/{digest}")))
            .map(String::from)
            .collect()
    }
}

/// `response` with a `Location: …/blobs/uploads/REST` header cut to `REST`.
fn relative_upload_location(response: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(response);
    let Some(start) = text.find("\r\nLocation: ") else {
        return response.to_vec();
    };
    let value = start + "\r\nLocation: ".len();
    let end = value + text[value..].find("\r\n").unwrap_or(0);
    match text[value..end].rfind("/blobs/uploads/") {
        Some(i) => {
            let rest = &text[value + i + "/blobs/uploads/".len()..end];
            let mut out = response[..value].to_vec();
            out.extend_from_slice(rest.as_bytes());
            out.extend_from_slice(&response[end..]);
            out
        }
        None => response.to_vec(),
    }
}

/// The offsets in `buf` where `line` starts a line.
fn line_starts<'a>(buf: &'a [u8], line: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    (0..buf.len().saturating_sub(line.len()))
        .filter(move |&i| (i == 0 || buf[i - 1] == b'\n') && buf[i..].starts_with(line))
}

/// The offset in `buf` of the occurrence of `line` (at a line start) that is the `nth` one
/// counted in `seen` over the proxy's life, if it is in `buf`.
fn find_nth(buf: &[u8], line: &[u8], seen: &AtomicUsize, nth: usize) -> Option<usize> {
    line_starts(buf, line).find(|_| seen.fetch_add(1, Ordering::SeqCst) + 1 == nth)
}

/// The offset in `buf` of the first occurrence of `line` at a line start, if any.
fn find_line(buf: &[u8], line: &[u8]) -> Option<usize> {
    line_starts(buf, line).next()
}

/// Reads the rest of one request from `from`, `got` being its start: the head up to the
/// blank line, then as many body bytes as its `Content-Length` says. Returns the head.
fn read_request(from: &mut TcpStream, mut got: Vec<u8>) -> Vec<u8> {
    let mut buf = [0u8; 16384];
    let end = loop {
        if let Some(e) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break e + 4;
        }
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = got.len() - end;
    while body < length {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body += n,
        }
    }
    got.truncate(end);
    got
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // wake the accept loop so it sees the flag
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
