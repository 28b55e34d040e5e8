//! The coordinator's mTLS client to agents: it presents the `coordinator` certificate and
//! trusts only the region's CA, which names each agent by its address. Every call goes through
//! [`AgentClient::call`] (URL, deadline, body, answer decoding); the typed calls are in one
//! file per area of the agent API, their paths from `plinth_common::api::agent_routes`.

mod bmc;
mod devices;
mod endpoint;
mod host;
mod instances;
mod migration;

pub use devices::UsbVerb;
pub use endpoint::{AgentEndpoint, socket_host};

use plinth_common::api::ErrorBody;
use plinth_common::tls::{Revocations, checked_client_config};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the agent has not reported its API port yet")]
    NoEndpoint,
    #[error("request to the agent failed")]
    Http(#[from] reqwest::Error),
    #[error("TLS setup failed")]
    Tls(#[from] plinth_common::tls::TlsError),
    #[error("the agent's answer could not be read")]
    Decode(#[from] serde_json::Error),
    /// The agent answered with an error. Callers match on `code` (agent/src/api/error.rs
    /// lists the stable ones); `status` is for the operator's message only.
    #[error("the agent answered {status}: {message}")]
    Refused {
        status: u16,
        /// The agent's error code; empty when the answer was not the agent's JSON error.
        code: String,
        message: String,
    },
}

impl AgentError {
    /// A message for an operator: the agent's own words when it answered, else the cause
    /// chain of the transport error.
    pub fn explain(&self) -> String {
        use std::error::Error as _;
        let mut text = self.to_string();
        let mut source = self.source();
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }

    /// The agent's error code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AgentError::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A call that answers from the agent's memory or one quick look at the host.
const CALL: Duration = Duration::from_secs(10);
/// Long agent calls: a create fetches an image, an export uploads one.
const LONG_CALL: Duration = Duration::from_secs(3600);
/// For [`AgentClient::call`] without a body.
const NO_BODY: Option<&()> = None;

#[derive(Clone, Debug)]
pub struct AgentClient {
    ca_pem: Arc<str>,
    /// Agent certificates refused as servers (the store keeps it current).
    revoked: Arc<Revocations>,
    /// Rebuilt when the coordinator's own certificate is rotated ([`AgentClient::reload`]).
    http: Arc<RwLock<reqwest::Client>>,
}

impl AgentClient {
    pub fn new(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<AgentClient, AgentError> {
        Self::with_revocations(ca_pem, cert_pem, key_pem, Revocations::new())
    }

    /// A client that also refuses agents presenting a certificate in `revoked`.
    pub fn with_revocations(
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
        revoked: Arc<Revocations>,
    ) -> Result<AgentClient, AgentError> {
        let http = Self::build(ca_pem, cert_pem, key_pem, &revoked)?;
        Ok(AgentClient {
            ca_pem: ca_pem.into(),
            revoked,
            http: Arc::new(RwLock::new(http)),
        })
    }

    fn build(
        ca_pem: &str,
        cert_pem: &str,
        key_pem: &str,
        revoked: &Arc<Revocations>,
    ) -> Result<reqwest::Client, AgentError> {
        let tls = checked_client_config(ca_pem, Some((cert_pem, key_pem)), revoked.clone())?;
        Ok(reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(Duration::from_secs(3))
            .timeout(CALL)
            .build()?)
    }

    /// Presents a new client certificate from now on; connections open with the old one are
    /// dropped with the old client.
    pub fn reload(&self, cert_pem: &str, key_pem: &str) -> Result<(), AgentError> {
        let next = Self::build(&self.ca_pem, cert_pem, key_pem, &self.revoked)?;
        // A poisoned lock means a panic mid-swap; the client in it is still whole.
        *self.http.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(())
    }

    fn http(&self) -> reqwest::Client {
        self.http.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// One call to the agent at `ep`: `method` on `path` (with `query`), `body` as JSON, all
    /// of it within `deadline`; answers as [`decode`] does.
    async fn call<T: DeserializeOwned>(
        &self,
        ep: &AgentEndpoint,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(impl Serialize + ?Sized)>,
        deadline: Duration,
    ) -> Result<T, AgentError> {
        let port = ep.port.ok_or(AgentError::NoEndpoint)?;
        let url = format!("https://{}:{port}{path}", socket_host(&ep.ip));
        let mut req = self.http().request(method, url).timeout(deadline);
        // A job's call carries its term: the agent refuses it once a later term called.
        if let Some(epoch) = crate::jobs::fence() {
            req = req.header(plinth_common::api::agent_routes::EPOCH_HEADER, epoch);
        }
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        decode(req.send().await?).await
    }
}

/// The answer's body decoded (204 decodes as JSON `null`), or the agent's error as
/// [`AgentError::Refused`].
async fn decode<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, AgentError> {
    let status = resp.status();
    if status == StatusCode::NO_CONTENT {
        return Ok(serde_json::from_value(serde_json::Value::Null)?);
    }
    if status.is_success() {
        return Ok(resp.json().await?);
    }
    let text = resp.text().await.unwrap_or_default();
    let (code, message) = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => (body.error.code, body.error.message),
        Err(_) => (String::new(), text),
    };
    Err(AgentError::Refused {
        status: status.as_u16(),
        code,
        message,
    })
}

#[cfg(test)]
mod tests {
    //! `call()` against a plain local server standing in for an agent's answers (the TLS of
    //! the real client is covered by the e2e tests).

    use super::*;
    use axum::Router;
    use axum::http::StatusCode as Status;
    use axum::routing::get;
    use serde_json::json;

    #[tokio::test]
    async fn refusals_carry_the_agents_code() {
        let app = Router::new()
            .route(
                "/coded",
                get(|| async {
                    (
                        Status::NOT_FOUND,
                        axum::Json(json!({"error": {"code": "instance_not_found", "message": "no instance i-1 on this host"}})),
                    )
                }),
            )
            .route("/plain", get(|| async { (Status::BAD_GATEWAY, "upstream broke") }))
            .route("/empty", get(|| async { Status::NO_CONTENT }))
            .route("/json", get(|| async { axum::Json(json!({"n": 3})) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let http = reqwest::Client::new();
        // The same decoding as call(), over plain HTTP.
        let get = |path: &str| {
            let http = http.clone();
            let url = format!("{base}{path}");
            async move { decode::<serde_json::Value>(http.get(url).send().await.expect("send")).await }
        };

        let checks = async {
            let err = get("/coded").await.expect_err("refused");
            assert_eq!(err.code(), Some("instance_not_found"));
            assert!(
                err.explain().contains("no instance i-1"),
                "{}",
                err.explain()
            );
            let err = get("/plain").await.expect_err("refused");
            assert_eq!(err.code(), Some(""));
            assert!(
                err.explain().contains("upstream broke"),
                "{}",
                err.explain()
            );
            assert_eq!(get("/empty").await.expect("204"), serde_json::Value::Null);
            assert_eq!(get("/json").await.expect("200"), json!({"n": 3}));
        };
        tokio::select! {
            served = axum::serve(listener, app) => panic!("the server stopped: {served:?}"),
            () = checks => {}
        }
    }
}
