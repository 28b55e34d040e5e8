//! The HTTPS client: trusts only the region CA, sends the bearer token, and turns the API's
//! error bodies and network failures into one-line errors.

use crate::settings::Settings;
use anyhow::{Context, anyhow, bail};
use plinth_common::api::ErrorBody;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Body, Method, RequestBuilder, StatusCode, Url};
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An upload of many GiB, then the coordinator's check of it, may take hours.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// An error the coordinator answered with; printed as `<message> (<code>, HTTP <status>)`.
#[derive(Debug)]
struct ApiFailure {
    status: StatusCode,
    code: String,
    message: String,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, HTTP {})",
            self.message,
            self.code,
            self.status.as_u16()
        )
    }
}

impl std::error::Error for ApiFailure {}

impl ApiFailure {
    /// Reads an error body; one that is not the API's shape is shown as text.
    fn from_body(status: StatusCode, body: &[u8]) -> ApiFailure {
        match serde_json::from_slice::<ErrorBody>(body) {
            Ok(parsed) => ApiFailure {
                status,
                code: parsed.error.code,
                message: parsed.error.message,
            },
            Err(_) => {
                let text = String::from_utf8_lossy(body)
                    .trim()
                    .chars()
                    .take(300)
                    .collect::<String>();
                let message = if text.is_empty() {
                    status.canonical_reason().unwrap_or("no body").to_string()
                } else {
                    text
                };
                ApiFailure {
                    status,
                    code: "unexpected_response".to_string(),
                    message,
                }
            }
        }
    }
}

pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: String,
    /// The region CA's TLS settings, HTTP/1.1 only: for WebSockets (the serial console).
    websocket_tls: std::sync::Arc<rustls::ClientConfig>,
}

/// The causes below reqwest's own message (which repeats the URL), joined with ": ".
fn causes(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}

impl Client {
    pub fn new(settings: &Settings) -> anyhow::Result<Client> {
        let tls = plinth_common::tls::client_config(&settings.ca_pem, None)
            .context("the region CA certificate is not usable")?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("plinth-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTPS client")?;
        let mut websocket_tls = plinth_common::tls::client_config(&settings.ca_pem, None)
            .context("the region CA certificate is not usable")?;
        websocket_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            http,
            base: settings.url.clone(),
            token: settings.token.clone(),
            websocket_tls: std::sync::Arc::new(websocket_tls),
        })
    }

    /// TLS for a WebSocket to the coordinator (trusting only the region CA).
    pub fn websocket_tls(&self) -> std::sync::Arc<rustls::ClientConfig> {
        self.websocket_tls.clone()
    }

    /// The coordinator's base URL without a trailing slash, for messages.
    pub fn base(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The base URL plus path segments, each percent-encoded (an id cannot add a segment).
    fn url(&self, segments: &[&str]) -> anyhow::Result<Url> {
        if let Some(bad) = segments
            .iter()
            .find(|s| s.is_empty() || **s == "." || **s == "..")
        {
            bail!("'{bad}' is not a valid ID");
        }
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow!("{} cannot be a base URL", self.base()))?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    fn request(&self, method: Method, segments: &[&str]) -> anyhow::Result<RequestBuilder> {
        Ok(self
            .http
            .request(method, self.url(segments)?)
            .bearer_auth(&self.token))
    }

    /// Sends the request; `None` for an empty success body (204), the JSON otherwise.
    async fn send(&self, request: RequestBuilder) -> anyhow::Result<Option<Value>> {
        self.send_within(request, TIMEOUT).await
    }

    /// [`Client::send`] for a request whose time limit is `limit`.
    async fn send_within(
        &self,
        request: RequestBuilder,
        limit: Duration,
    ) -> anyhow::Result<Option<Value>> {
        let response = request
            .send()
            .await
            .map_err(|e| self.network_error(&e, limit))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.network_error(&e, limit))?;
        if !status.is_success() {
            return Err(ApiFailure::from_body(status, &body).into());
        }
        if body.is_empty() {
            return Ok(None);
        }
        let value = serde_json::from_slice(&body)
            .context("the coordinator answered with something that is not JSON")?;
        Ok(Some(value))
    }

    fn network_error(&self, err: &reqwest::Error, limit: Duration) -> anyhow::Error {
        if err.is_builder() {
            anyhow!("cannot build the request: {}", causes(err))
        } else if err.is_timeout() {
            anyhow!(
                "the coordinator at {} did not answer within {} s",
                self.base(),
                limit.as_secs()
            )
        } else {
            anyhow!(
                "cannot reach the coordinator at {}: {}",
                self.base(),
                causes(err)
            )
        }
    }

    async fn expect_body(&self, request: RequestBuilder) -> anyhow::Result<Value> {
        self.send(request)
            .await?
            .context("the coordinator answered with an empty body")
    }

    /// `GET`.
    pub async fn get(&self, segments: &[&str]) -> anyhow::Result<Value> {
        self.get_with(segments, &[]).await
    }

    /// `GET` with query parameters.
    pub async fn get_with(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        self.expect_body(self.request(Method::GET, segments)?.query(query))
            .await
    }

    /// `GET` of something that may be gone: `None` when the coordinator answers 404.
    pub async fn get_if_exists(&self, segments: &[&str]) -> anyhow::Result<Option<Value>> {
        match self.get(segments).await {
            Ok(value) => Ok(Some(value)),
            Err(err)
                if err
                    .downcast_ref::<ApiFailure>()
                    .is_some_and(|f| f.status == StatusCode::NOT_FOUND) =>
            {
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, segments: &[&str], body: &impl Serialize) -> anyhow::Result<Value> {
        self.expect_body(self.request(Method::POST, segments)?.json(body))
            .await
    }

    /// `POST` without a body (an action such as lock).
    pub async fn post_empty(&self, segments: &[&str]) -> anyhow::Result<Value> {
        self.expect_body(self.request(Method::POST, segments)?)
            .await
    }

    /// `PATCH` with a JSON body.
    pub async fn patch(&self, segments: &[&str], body: &impl Serialize) -> anyhow::Result<Value> {
        self.expect_body(self.request(Method::PATCH, segments)?.json(body))
            .await
    }

    /// `PUT` with a JSON body.
    pub async fn put(&self, segments: &[&str], body: &impl Serialize) -> anyhow::Result<Value> {
        self.expect_body(self.request(Method::PUT, segments)?.json(body))
            .await
    }

    /// `PUT` of `len` bytes streamed from `body` (never held in memory), with a long time limit.
    pub async fn put_stream(
        &self,
        segments: &[&str],
        body: Body,
        len: u64,
    ) -> anyhow::Result<Value> {
        let request = self
            .request(Method::PUT, segments)?
            .timeout(UPLOAD_TIMEOUT)
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, len)
            .body(body);
        self.send_within(request, UPLOAD_TIMEOUT)
            .await?
            .context("the coordinator answered with an empty body")
    }

    /// `DELETE`; the body, if any.
    pub async fn delete(&self, segments: &[&str]) -> anyhow::Result<Option<Value>> {
        self.delete_with(segments, &[]).await
    }

    /// `DELETE` with query parameters; the body, if any.
    pub async fn delete_with(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> anyhow::Result<Option<Value>> {
        self.send(self.request(Method::DELETE, segments)?.query(query))
            .await
    }

    /// `POST` of a text body (a CSV file): the status and JSON body whatever the status, for
    /// answers whose refusal carries a report.
    pub async fn post_text(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
        content_type: &str,
        text: String,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let request = self
            .request(Method::POST, segments)?
            .query(query)
            .header(CONTENT_TYPE, content_type)
            .body(text);
        let response = request
            .send()
            .await
            .map_err(|e| self.network_error(&e, TIMEOUT))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.network_error(&e, TIMEOUT))?;
        match serde_json::from_slice(&body) {
            Ok(value) => Ok((status, value)),
            Err(_) => Err(ApiFailure::from_body(status, &body).into()),
        }
    }
}
