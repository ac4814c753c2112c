//! Registry flags shared by `import`, `check` and `export`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{ArgAction, Args};
use ocitree::registry::{Credentials, RegistryOptions, Tls};

/// How to reach a registry (used by docker:// sources and destinations only).
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Registry credentials, overriding every auth file and credential helper.
    #[arg(long, value_name = "USER:PASS")]
    creds: Option<String>,
    /// Read credentials from this auth file only (default: $REGISTRY_AUTH_FILE, then $XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json); its credHelpers and credsStore run docker-credential-NAME.
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// Verify the registry's HTTPS certificate; false skips verification, and talks plain HTTP to a registry that does not speak TLS (default: true, unless registries.conf marks the registry insecure; given, it wins over registries.conf).
    #[arg(long, value_name = "BOOL", action = ArgAction::Set)]
    tls_verify: Option<bool>,
    /// Certificate directory for the registry: *.crt are extra trusted CAs, NAME.cert + NAME.key a client certificate (default: the first existing of ~/.config/containers/certs.d/HOST[:PORT], /etc/containers/certs.d/HOST[:PORT], /etc/docker/certs.d/HOST[:PORT]; $OCITREE_CERTS_D replaces the base directory).
    #[arg(long, value_name = "DIR")]
    cert_dir: Option<PathBuf>,
    /// Read mirrors, insecure and blocked registries from this registries.conf (v2 TOML) only (default: $CONTAINERS_REGISTRIES_CONF, else ~/.config/containers/registries.conf or /etc/containers/registries.conf, plus the *.conf of /etc/containers/registries.conf.d and ~/.config/containers/registries.conf.d).
    #[arg(long, value_name = "FILE")]
    registries_conf: Option<PathBuf>,
    /// Connect timeout, and the longest a registry may stay silent during a request, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    timeout: u64,
}

impl RegistryArgs {
    pub fn options(&self) -> Result<RegistryOptions> {
        let mut o = RegistryOptions::new();
        o.creds = self.creds.as_deref().map(Credentials::parse).transpose()?;
        o.auth_file = self.authfile.clone();
        o.tls = match self.tls_verify {
            Some(false) => Tls::NoVerify,
            _ => Tls::Verify,
        };
        o.tls_set = self.tls_verify.is_some();
        o.cert_dir = self.cert_dir.clone();
        o.registries_conf = self.registries_conf.clone();
        o.timeout = Duration::from_secs(self.timeout.max(1));
        Ok(o)
    }
}
