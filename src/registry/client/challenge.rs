//! Answering a registry's 401 challenge: Basic credentials remembered, or a Bearer token
//! fetched from the realm the challenge names (with the Basic credentials, if any).

use ureq::Body;
use ureq::http::{self, Response};

use super::{
    ATTEMPTS, Access, Client, ERROR_BODY_LIMIT, Payload, backoff, error_message, transient,
};
use crate::error::{Error, Result};
use crate::registry::auth::Challenge;
use crate::registry::credentials::Credentials;
use crate::registry::redirect;

impl Client {
    /// Answers a 401 challenge: remembers Basic credentials or fetches a Bearer token.
    pub(super) fn authenticate(&self, url: &str, resp: Response<Body>) -> Result<()> {
        let registry = self.reference.registry.clone();
        let unauthorized = |reason: String| Error::Unauthorized {
            registry: registry.clone(),
            reason,
        };
        let header = resp
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let challenge = Challenge::parse(&header).ok_or_else(|| {
            unauthorized(format!(
                "{url} answered 401 without a WWW-Authenticate challenge"
            ))
        })?;
        let value = match challenge.scheme.as_str() {
            "basic" => match &self.creds {
                Some(c) => c.basic_header(),
                None => {
                    return Err(unauthorized(
                        "the registry needs credentials: give --creds USER:PASS or log in \
                         (auth.json)"
                            .into(),
                    ));
                }
            },
            "bearer" => format!("Bearer {}", self.fetch_token(&challenge)?),
            other => {
                return Err(unauthorized(format!(
                    "unsupported authentication scheme {other:?}"
                )));
            }
        };
        *self
            .authorization
            .lock()
            .expect("lock poisoned only by a panic") = Some(value);
        Ok(())
    }

    /// The bearer token flow: GET realm?service=…&scope=… (with Basic credentials if any).
    fn fetch_token(&self, c: &Challenge) -> Result<String> {
        let registry = self.reference.registry.clone();
        let unauthorized = |reason: String| Error::Unauthorized {
            registry: registry.clone(),
            reason,
        };
        let realm = c
            .params
            .get("realm")
            .ok_or_else(|| unauthorized("bearer challenge without a realm".into()))?;
        let actions = match self.access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        let mut scopes = vec![format!(
            "repository:{}:{actions}",
            self.reference.repository
        )];
        scopes.extend(
            self.extra_scopes
                .lock()
                .expect("lock poisoned only by a panic")
                .iter()
                .cloned(),
        );
        let mut query: Vec<(&str, &str)> = c
            .params
            .get("service")
            .map(|s| ("service", s.as_str()))
            .into_iter()
            .collect();
        query.extend(scopes.iter().map(|s| ("scope", s.as_str())));
        let url = redirect::with_query(realm, &query);
        let basic = self.creds.as_ref().map(Credentials::basic_header);
        let mut attempt = 0;
        let mut resp = loop {
            attempt += 1;
            let get = &http::Method::GET;
            match self.follow(get, &url, &[], Payload::Empty, basic.as_deref()) {
                Ok(r) if r.status().is_server_error() && attempt < ATTEMPTS => {}
                Ok(r) => break r,
                Err(f) if transient(&f.error) && attempt < ATTEMPTS => {}
                Err(f) => {
                    return Err(Error::Registry {
                        url: realm.clone(),
                        reason: format!(
                            "fetching a token{}: {}",
                            self.failed_at(realm, &f),
                            f.error
                        ),
                    });
                }
            }
            std::thread::sleep(backoff(attempt));
        };
        if resp.status() == 401 || resp.status() == 403 {
            let msg = error_message(&mut resp);
            return Err(unauthorized(format!(
                "token server {realm} refused the credentials ({}){msg}",
                resp.status()
            )));
        }
        if !resp.status().is_success() {
            let msg = error_message(&mut resp);
            return Err(Error::Registry {
                url: realm.clone(),
                reason: format!("token request answered {}{msg}", resp.status()),
            });
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(ERROR_BODY_LIMIT)
            .read_to_vec()
            .map_err(|e| Error::Registry {
                url: realm.clone(),
                reason: format!("reading the token: {e}"),
            })?;
        let t: Token = serde_json::from_slice(&body).map_err(|e| Error::Registry {
            url: realm.clone(),
            reason: format!("token answer is not JSON: {e}"),
        })?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Registry {
                url: realm.clone(),
                reason: "token answer holds no token".into(),
            })
    }
}
