//! Docker credential helpers: `docker-credential-NAME get`, the protocol of
//! docker-credential-helpers. The server URL goes to its stdin; it answers
//! `{"ServerURL","Username","Secret"}` on stdout, or exits non-zero with a message on stdout
//! (`credentials not found in native keychain` when it has none for that server).
//!
//! A `Username` of `<token>` means `Secret` is an identity token (an OAuth2 refresh token).
//! ocitree does not run the OAuth2 refresh-token flow: such an answer is an error telling to
//! give `--creds` instead, rather than a silent anonymous pull.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::registry::credentials::Credentials;
use crate::registry::reference::DOCKER_HUB;

/// Longest helper answer read.
const ANSWER_LIMIT: u64 = 64 << 10;

/// The server URL a helper is asked about: the registry host, docker's historical URL for
/// Docker Hub (where docker's helpers store its credentials).
fn server_url(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        "https://index.docker.io/v1/"
    } else {
        registry
    }
}

#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-NAME get` (found on `PATH`) for `registry` (`HOST[:PORT]`).
/// `Ok(None)` when the helper has no credentials for it.
///
/// # Errors
/// [`Error::Unauthorized`] naming the helper when it cannot be run, fails, answers something
/// else than its JSON, or gives an identity token.
pub fn get(name: &str, registry: &str) -> Result<Option<Credentials>> {
    let program = format!("docker-credential-{name}");
    let fail = |reason: String| Error::Unauthorized {
        registry: registry.to_string(),
        reason: format!("credential helper `{program} get`: {reason}"),
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("cannot run it ({e}); is it on PATH?")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // a helper that exits without reading its input is judged by its exit status below
        let _ = stdin.write_all(server_url(registry).as_bytes());
    }
    let mut out = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        let _ = stdout.take(ANSWER_LIMIT).read_to_end(&mut out);
    }
    let mut err = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        let _ = stderr.take(ANSWER_LIMIT).read_to_end(&mut err);
    }
    let status = child
        .wait()
        .map_err(|e| fail(format!("waiting for it: {e}")))?;
    let out_text = String::from_utf8_lossy(&out);
    if !status.success() {
        if out_text.contains("credentials not found") {
            return Ok(None);
        }
        let msg: String = format!(
            "{} {}",
            out_text.trim(),
            String::from_utf8_lossy(&err).trim()
        )
        .trim()
        .chars()
        .take(300)
        .collect();
        return Err(fail(format!("failed ({status}): {msg}")));
    }
    let a: Answer = serde_json::from_slice(&out)
        .map_err(|e| fail(format!("its answer is not the helper JSON: {e}")))?;
    if a.username == "<token>" {
        return Err(fail(
            "it gave an identity token (Username <token>), and ocitree does not run the OAuth2 \
             refresh-token flow; give --creds USER:PASS instead"
                .into(),
        ));
    }
    if a.username.is_empty() && a.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(Credentials {
        username: a.username,
        password: a.secret,
    }))
}
