//! The coordinators an agent reports to: a list of URLs (or one, a load balancer's), the one
//! in use first. A call that cannot reach it, or that it answers as unavailable (502, 503,
//! 504: a coordinator stopping, or a proxy with no coordinator behind it), is tried on the
//! next, and the first that answers is used from then on. Every coordinator of a region serves
//! the agent API on the one store, so heartbeats and renewals work through any.

use std::sync::atomic::{AtomicUsize, Ordering};
use tracing::{info, warn};

pub struct Coordinators {
    urls: Vec<String>,
    current: AtomicUsize,
}

/// Whether an answer means "try another coordinator".
fn unavailable(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

impl Coordinators {
    /// `urls` in order of preference (without a trailing `/`); the first is used first.
    pub fn new(urls: Vec<String>) -> anyhow::Result<Coordinators> {
        anyhow::ensure!(!urls.is_empty(), "no coordinator URL");
        Ok(Coordinators {
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_string())
                .collect(),
            current: AtomicUsize::new(0),
        })
    }

    /// The coordinator in use.
    pub fn current(&self) -> &str {
        &self.urls[self.current.load(Ordering::Relaxed) % self.urls.len()]
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    /// Sends the request `build` makes for a coordinator's base URL to the one in use, then to
    /// each other in turn while they cannot be reached or answer 502-504. Answers the first
    /// other answer (whatever its status), or the last failure.
    pub async fn send(
        &self,
        build: impl Fn(&str) -> reqwest::RequestBuilder,
    ) -> anyhow::Result<reqwest::Response> {
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for step in 0..self.urls.len() {
            let at = (start + step) % self.urls.len();
            let url = &self.urls[at];
            let failure = match build(url).send().await {
                Ok(resp) if !unavailable(resp.status()) => {
                    if at != start % self.urls.len() {
                        self.current.store(at, Ordering::Relaxed);
                        info!(coordinator = %url, "Reporting to this coordinator now.");
                    }
                    return Ok(resp);
                }
                Ok(resp) => anyhow::anyhow!("{url} answered {}", resp.status()),
                Err(err) => anyhow::Error::new(err).context(format!("reaching {url}")),
            };
            if self.urls.len() > 1 {
                warn!(coordinator = %url, error = %format!("{failure:#}"), "A coordinator does not answer; trying the next.");
            }
            last = Some(failure);
        }
        Err(last.expect("at least one URL"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    /// A local server answering every request with `status`; its base URL.
    async fn answering(status: StatusCode) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("ok");
        let addr = listener.local_addr().expect("ok");
        let app = axum::Router::new().fallback(move || async move { status });
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    /// An address nothing listens on.
    async fn closed() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("ok");
        let addr = listener.local_addr().expect("ok");
        drop(listener);
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn a_call_moves_past_the_unreachable_and_the_unavailable_and_stays() {
        let (down, stopping, up) = (
            closed().await,
            answering(StatusCode::SERVICE_UNAVAILABLE).await,
            answering(StatusCode::OK).await,
        );
        let list =
            Coordinators::new(vec![down.clone(), format!("{stopping}/"), up.clone()]).expect("ok");
        assert_eq!(list.current(), down);
        let client = reqwest::Client::new();
        let resp = list
            .send(|base| client.get(format!("{base}/x")))
            .await
            .expect("ok");
        assert_eq!(resp.status(), 200);
        assert_eq!(list.current(), up);
        // A refusal is an answer: it is returned, and the coordinator kept.
        let refusing = answering(StatusCode::CONFLICT).await;
        let list = Coordinators::new(vec![refusing.clone(), up]).expect("ok");
        let resp = list.send(|base| client.get(base)).await.expect("ok");
        assert_eq!(resp.status(), 409);
        assert_eq!(list.current(), refusing);
    }

    #[tokio::test]
    async fn when_none_answers_the_last_failure_is_returned() {
        let list = Coordinators::new(vec![closed().await, closed().await]).expect("ok");
        let client = reqwest::Client::new();
        let err = list.send(|base| client.get(base)).await.expect_err("fails");
        assert!(format!("{err:#}").contains("reaching"), "{err:#}");
        assert!(Coordinators::new(Vec::new()).is_err());
    }
}
