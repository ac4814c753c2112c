//! [`Storage`]: the blob store a registry redirects downloads to (S3, a CDN). It serves what
//! the registry it stands for holds, refuses every request that carries an `Authorization`
//! header (S3 answers 400 to a presigned URL sent with one), and logs each request's head.

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use super::registry::{header, read_head, relay, reply};

/// A blob store on 127.0.0.1 in front of the registry on `upstream`.
pub struct Storage {
    pub port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl Storage {
    pub fn start(upstream: u16) -> Storage {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                let log = Arc::clone(&log2);
                std::thread::spawn(move || serve(client, upstream, &log));
            }
        });
        Storage { port, log }
    }

    /// `http://0.0.0.0:PORT`: the store at an address that is not loopback, so that the
    /// proxy variables apply to it.
    pub fn base(&self) -> String {
        format!("http://0.0.0.0:{}", self.port)
    }

    /// The heads of the requests it got.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(mut client: TcpStream, upstream: u16, log: &Mutex<Vec<String>>) {
    let Some(head) = read_head(&mut client) else {
        return;
    };
    log.lock().unwrap().push(head.clone());
    if header(&head, "authorization").is_some() {
        let body = r#"{"Code":"InvalidArgument","Message":"Only one auth mechanism allowed"}"#;
        reply(&mut client, "400 Bad Request", "", body);
        return;
    }
    // the presigned URL's signature means nothing to the registry
    relay(&head.replacen("?sig=1 ", " ", 1), upstream, &mut client);
}
