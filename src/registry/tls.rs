//! TLS for one registry, as containers/image sets it up (containers-certs.d(5)).
//!
//! The certificate directory of a registry `HOST[:PORT]` is `--cert-dir DIR` when given, else
//! the first existing one of `~/.config/containers/certs.d/HOST[:PORT]`,
//! `/etc/containers/certs.d/HOST[:PORT]` and `/etc/docker/certs.d/HOST[:PORT]`. The
//! environment variable `OCITREE_CERTS_D=BASE` replaces that search list by `BASE/HOST[:PORT]`
//! (for tests and unprivileged setups). In the directory:
//!
//! - `*.crt`: extra CA certificates trusted for this registry, on top of the system's bundle
//!   (`$SSL_CERT_FILE`, else the first of `/etc/ssl/certs/ca-certificates.crt`,
//!   `/etc/pki/tls/certs/ca-bundle.crt`, `/etc/ssl/cert.pem`); without `*.crt` files the
//!   built-in Mozilla roots are used;
//! - `NAME.cert` + `NAME.key`: a client certificate (PEM chain) and its private key, presented
//!   when the registry asks for one; the first pair by name is used. A `.cert` without its
//!   `.key`, or the reverse, is an error.
//!
//! `--tls-verify=false` keeps the client certificate but does not verify the registry's.

use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

use crate::error::{Error, Result};
use crate::registry::{RegistryOptions, Tls};

/// The environment variable replacing the certs.d search list by one base directory.
pub const CERTS_D_ENV: &str = "OCITREE_CERTS_D";

/// The certs.d base directories searched, in order.
fn certs_d_bases() -> Vec<PathBuf> {
    if let Some(b) = std::env::var_os(CERTS_D_ENV).filter(|v| !v.is_empty()) {
        return vec![PathBuf::from(b)];
    }
    let mut bases = Vec::new();
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        bases.push(PathBuf::from(h).join(".config/containers/certs.d"));
    }
    bases.push("/etc/containers/certs.d".into());
    bases.push("/etc/docker/certs.d".into());
    bases
}

/// The certificate directory for `registry` (`HOST[:PORT]`), if one exists.
pub(crate) fn cert_dir(opts: &RegistryOptions, registry: &str) -> Option<PathBuf> {
    if let Some(d) = &opts.cert_dir {
        return Some(d.clone());
    }
    certs_d_bases()
        .into_iter()
        .map(|b| b.join(registry))
        .find(|d| d.is_dir())
}

/// Where a user would put certificates for `registry`, for error messages.
pub(crate) fn where_to_put(opts: &RegistryOptions, registry: &str) -> String {
    match cert_dir(opts, registry) {
        Some(d) => d.display().to_string(),
        None => certs_d_bases()
            .first()
            .map(|b| b.join(registry).display().to_string())
            .unwrap_or_default(),
    }
}

fn tls_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Registry {
        url: path.display().to_string(),
        reason: format!("TLS setup: {reason}"),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(Error::io(format!("reading {}", path.display())))
}

/// Every certificate in the PEM file at `path`.
fn pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>> {
    let bytes = read(path)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&bytes) {
        match item.map_err(|e| tls_error(path, e))? {
            ureq::tls::PemItem::Certificate(c) => certs.push(c),
            _ => return Err(tls_error(path, "holds something else than certificates")),
        }
    }
    if certs.is_empty() {
        return Err(tls_error(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// The system's CA bundle, if one is found.
fn system_bundle() -> Result<Vec<Certificate<'static>>> {
    let candidates: Vec<PathBuf> = match std::env::var_os("SSL_CERT_FILE") {
        Some(f) if !f.is_empty() => vec![f.into()],
        _ => [
            "/etc/ssl/certs/ca-certificates.crt",
            "/etc/pki/tls/certs/ca-bundle.crt",
            "/etc/ssl/cert.pem",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect(),
    };
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => {
            let bytes = read(p)?;
            Ok(ureq::tls::parse_pem(&bytes)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect())
        }
        None => Ok(Vec::new()),
    }
}

/// The files of `dir` with extension `ext`, sorted by name.
fn with_ext(entries: &[PathBuf], ext: &str) -> Vec<PathBuf> {
    entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .cloned()
        .collect()
}

/// The TLS configuration for `registry` (`HOST[:PORT]`).
///
/// # Errors
/// The certificate directory holds unreadable or malformed certificates or keys, or a client
/// certificate without its key (or the reverse).
pub(crate) fn config(opts: &RegistryOptions, registry: &str) -> Result<TlsConfig> {
    let mut b = TlsConfig::builder().disable_verification(opts.tls == Tls::NoVerify);
    let Some(dir) = cert_dir(opts, registry) else {
        return Ok(b.build());
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(Error::io(format!(
            "reading certificate directory {}",
            dir.display()
        )))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(Error::io(format!(
            "reading certificate directory {}",
            dir.display()
        )))?;
    entries.sort();
    let cas = with_ext(&entries, "crt");
    if !cas.is_empty() {
        let mut roots = system_bundle()?;
        for ca in &cas {
            roots.extend(pem_certs(ca)?);
        }
        b = b.root_certs(RootCerts::new_with_certs(&roots));
    }
    for key in with_ext(&entries, "key") {
        if !key.with_extension("cert").is_file() {
            return Err(tls_error(
                &key,
                format!(
                    "private key without its client certificate {}",
                    key.with_extension("cert").display()
                ),
            ));
        }
    }
    let mut client = None;
    for cert in with_ext(&entries, "cert") {
        let key = cert.with_extension("key");
        if !key.is_file() {
            return Err(tls_error(
                &cert,
                format!(
                    "client certificate without its key {} (CA certificates end in .crt)",
                    key.display()
                ),
            ));
        }
        if client.is_none() {
            let chain = pem_certs(&cert)?;
            let pem = read(&key)?;
            let k = PrivateKey::from_pem(&pem).map_err(|e| tls_error(&key, e))?;
            check_client_pair(&chain, &pem).map_err(|e| tls_error(&cert, e))?;
            client = Some(ClientCert::new_with_certs(&chain, k));
        }
    }
    Ok(b.client_cert(client).build())
}

/// Whether rustls takes `chain` and the PEM private key `key_pem` as a client certificate:
/// ureq hands them over when it connects and panics if rustls refuses them (an X.509 v1
/// certificate, as `openssl x509 -req` makes without extensions; a key of another
/// certificate).
fn check_client_pair(
    chain: &[Certificate<'static>],
    key_pem: &[u8],
) -> std::result::Result<(), String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = chain
        .iter()
        .map(|c| CertificateDer::from(c.der().to_vec()))
        .collect();
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| e.to_string())?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_client_auth_cert(certs, key)
        .map(|_| ())
        .map_err(|e| format!("the client certificate and its key cannot be used: {e}"))
}

/// A hint for a failed connection to `registry` whose error reads `message`: what to do about
/// an untrusted certificate or a refused handshake. Empty when it is not a TLS failure.
pub(crate) fn hint(opts: &RegistryOptions, registry: &str, message: &str) -> String {
    let place = |file: &str| match &opts.cert_dir {
        Some(d) => format!("{file} in --cert-dir {}", d.display()),
        None => format!(
            "{file} in {} (or in a --cert-dir DIR)",
            where_to_put(opts, registry)
        ),
    };
    if message.contains("CaUsedAsEndEntity") {
        " (the registry presents a CA certificate as its own certificate, as a self-signed \
         `openssl req -x509` one is: trusting it as ca.crt is not enough for TLS clients that \
         check certificate use; issue the registry a certificate signed by that CA, or give \
         --tls-verify=false to skip verification)"
            .to_string()
    } else if message.contains("InvalidContentType") || message.contains("corrupt message") {
        " (the registry did not answer TLS: if it speaks plain HTTP, give --tls-verify=false \
         or set `insecure = true` for it in registries.conf)"
            .to_string()
    } else if message.contains("invalid peer certificate") {
        format!(
            " (the registry's certificate is not trusted: put its CA certificate as {}, \
             or give --tls-verify=false to skip verification)",
            place("ca.crt")
        )
    } else if message.contains("alert") && message.contains("ertificate") {
        format!(
            " (the registry refused the TLS handshake: it may require a client certificate: \
             put {})",
            place("NAME.cert and NAME.key")
        )
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> RegistryOptions {
        let mut o = RegistryOptions::new();
        o.cert_dir = Some(dir.to_path_buf());
        o
    }

    #[test]
    fn malformed_cert_dirs_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(config(&opts(d), "r.example").is_ok());
        std::fs::write(d.join("client.key"), "x").unwrap();
        let e = config(&opts(d), "r.example").unwrap_err().to_string();
        assert!(
            e.contains("client.key") && e.contains("without its client certificate"),
            "{e}"
        );
        std::fs::remove_file(d.join("client.key")).unwrap();
        std::fs::write(d.join("ca.crt"), "not a certificate").unwrap();
        let e = config(&opts(d), "r.example").unwrap_err().to_string();
        assert!(
            e.contains("ca.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
    }

    #[test]
    fn hints_name_the_place_for_certificates() {
        let o = opts(Path::new("/certs"));
        let h = hint(
            &o,
            "r.example",
            "io: invalid peer certificate: UnknownIssuer",
        );
        assert!(h.contains("ca.crt in --cert-dir /certs"), "{h}");
        let h = hint(
            &o,
            "r.example",
            "io: received fatal alert: CertificateRequired",
        );
        assert!(
            h.contains("NAME.cert and NAME.key in --cert-dir /certs"),
            "{h}"
        );
        assert_eq!(hint(&o, "r.example", "timeout: connect"), "");
        let h = hint(
            &o,
            "r.example",
            "io: received corrupt message of type InvalidContentType",
        );
        assert!(
            h.contains("plain HTTP") && h.contains("--tls-verify=false"),
            "{h}"
        );
        let h = hint(
            &o,
            "r.example",
            "io: invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
        );
        assert!(h.contains("signed by that CA"), "{h}");
    }
}
