//! Upload resumption (issue 12): a chunked push whose connection drops mid-upload, or whose
//! chunk gets a 5xx answer, continues from the range the registry reports, or starts the blob
//! over when the registry dropped the upload; either way the pushed image is the local one.

use super::*;

/// `n` bytes of incompressible data (xorshift).
pub(super) fn noise(n: usize) -> Vec<u8> {
    let mut data = vec![0u8; n];
    let mut x = 0x9e3779b97f4a7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    data
}

/// A repository holding `big`: one uncompressed 20 MiB layer (two PATCH chunks); and the
/// image's manifest digest.
fn big_image(tmp: &std::path::Path) -> (Repo, String) {
    let layer = Layer::with(
        tar_of(&[file("big.bin", &noise(20 << 20))]),
        Comp::None,
        false,
    );
    let layout = Layout::single(&tmp.join("img"), &[layer]);
    let repo = Repo::new();
    let r = repo.import(&Repo::oci(&layout.dir, "latest"), "big");
    (repo, r.field("Manifest"))
}

/// Pushes `big` through a proxy with `fault`; checks the pushed digest (ours, and skopeo's)
/// and the blob read back; returns the push's output and the upload requests the proxy
/// relayed, one line each: method, path without query, Content-Range.
fn push_through(fault: Fault) -> (Run, Vec<String>) {
    let reg = Registry::start();
    let tmp = tempdir();
    let (repo, manifest) = big_image(tmp.path());
    let proxy = Proxy::start(reg.port, fault);
    let r = repo.ok(&[
        "export",
        "--tls-verify=false",
        "big",
        &format!("{}:1", proxy.url("big/img")),
    ]);
    assert_eq!(r.field("Pushed"), manifest, "{r:?}");
    let out = tools::run(
        std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--format", "{{.Digest}}"])
            .arg(format!("{}:1", reg.url("big/img"))),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), manifest);
    let other = Repo::new();
    other.ok(&[
        "import",
        "--tls-verify=false",
        &format!("{}:1", reg.url("big/img")),
        "back",
    ]);
    let back = other
        .cmd()
        .args(["cat", "back", "/big.bin"])
        .output()
        .unwrap();
    assert!(back.stdout == noise(20 << 20), "big.bin differs");
    (r, upload_requests(&proxy.requests()))
}

/// The upload requests of a proxy log: `METHOD /v2/…/uploads/ [Content-Range]`.
fn upload_requests(log: &str) -> Vec<String> {
    let re = regex::Regex::new(
        r"(?m)(POST|PATCH|PUT|GET) (/v2/big/img/blobs/uploads/)\S* HTTP/1.1\r\n((?:[^\r\n]+\r\n)*)\r\n",
    )
    .unwrap();
    re.captures_iter(log)
        .map(|c| {
            let range = c[3]
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-range: ")
                        .or(l.strip_prefix("Content-Range: "))
                })
                .map(|r| format!(" {r}"))
                .unwrap_or_default();
            format!("{} {}{range}", &c[1], &c[2])
        })
        .collect()
}

const UPLOADS: &str = "/v2/big/img/blobs/uploads/";

/// The upload requests from the first PATCH on are `expected`.
fn assert_uploads(requests: &[String], expected: &[String]) {
    let layer: Vec<&String> = requests
        .iter()
        .skip_while(|q| !q.starts_with("PATCH"))
        .collect();
    assert_eq!(layer, expected.iter().collect::<Vec<_>>(), "{requests:#?}");
}

#[test]
fn upload_dropped_between_chunks_resumes_from_the_registrys_range() {
    // the connection drops as the second chunk starts: the registry holds the first 16 MiB
    // and says so; the upload goes on from there
    let (r, requests) = push_through(Fault::DropRequestLine("PATCH /v2/big/img/", 2));
    assert_eq!(r.field("Uploads"), "1 resumed, 0 restarted after a failure");
    assert_uploads(
        &requests,
        &[
            format!("PATCH {UPLOADS} 0-16777215"),
            format!("GET {UPLOADS}"),
            format!("PATCH {UPLOADS} 16777216-20973055"),
            format!("PUT {UPLOADS}"),
        ],
    );
}

#[test]
fn upload_dropped_mid_chunk_restarts_when_the_registry_dropped_it() {
    // 2 MiB into the second chunk: distribution stored part of it, so its upload no longer
    // matches the offset in our upload URL and it cancels the upload: the blob starts over
    let (r, requests) = push_through(Fault::DropRequestOnce(18 << 20));
    assert_eq!(r.field("Uploads"), "0 resumed, 1 restarted after a failure");
    assert_uploads(
        &requests,
        &[
            format!("PATCH {UPLOADS} 0-16777215"),
            format!("PATCH {UPLOADS} 16777216-20973055"),
            format!("GET {UPLOADS}"),
            format!("POST {UPLOADS}"),
            format!("PATCH {UPLOADS} 0-16777215"),
            format!("PATCH {UPLOADS} 16777216-20973055"),
            format!("PUT {UPLOADS}"),
        ],
    );
}

#[test]
fn a_chunk_answered_with_a_5xx_continues_from_the_registrys_range() {
    // the second chunk is answered 503 without reaching the registry, which still holds the
    // first 16 MiB: the upload asks for the range and sends the second chunk again
    let (r, requests) = push_through(Fault::AnswerLine("PATCH /v2/big/img/", 2, 503));
    assert_eq!(r.field("Uploads"), "1 resumed, 0 restarted after a failure");
    assert_uploads(
        &requests,
        &[
            format!("PATCH {UPLOADS} 0-16777215"),
            format!("PATCH {UPLOADS} 16777216-20973055"),
            format!("GET {UPLOADS}"),
            format!("PATCH {UPLOADS} 16777216-20973055"),
            format!("PUT {UPLOADS}"),
        ],
    );
}
