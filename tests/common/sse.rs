//! A small Server-Sent Events reader for the change feed's tests and benchmark.

use std::time::Duration;

/// One SSE event as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<i64>,
    pub event: String,
    pub data: serde_json::Value,
}

/// A `GET /v1/events` response being read.
pub struct Feed {
    resp: reqwest::Response,
    buf: String,
}

impl Feed {
    /// Opens `GET {url}/v1/events{query}` with `token`, and `last` as `Last-Event-ID`.
    pub async fn open(
        http: &reqwest::Client,
        url: &str,
        query: &str,
        token: &str,
        last: Option<i64>,
    ) -> anyhow::Result<Feed> {
        let mut req = http
            .get(format!("{url}/v1/events{query}"))
            .bearer_auth(token)
            .timeout(Duration::from_secs(3600));
        if let Some(last) = last {
            req = req.header("last-event-id", last.to_string());
        }
        let resp = req.send().await?;
        anyhow::ensure!(resp.status() == 200, "GET /v1/events: {}", resp.status());
        Ok(Feed {
            resp,
            buf: String::new(),
        })
    }

    /// The next event (keep-alive comments skipped); `None` when the stream ended.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                if let Some(ev) = parse(&block) {
                    return Ok(Some(ev));
                }
                continue;
            }
            match self.resp.chunk().await? {
                Some(bytes) => self.buf.push_str(&String::from_utf8_lossy(&bytes)),
                None => return Ok(None),
            }
        }
    }

    /// [`Feed::next`] within `deadline`.
    pub async fn next_within(&mut self, deadline: Duration) -> anyhow::Result<SseEvent> {
        match tokio::time::timeout(deadline, self.next()).await {
            Ok(Ok(Some(ev))) => Ok(ev),
            Ok(Ok(None)) => anyhow::bail!("the feed ended"),
            Ok(Err(e)) => Err(e),
            Err(_) => anyhow::bail!("no event within {deadline:?}"),
        }
    }

    /// Every event until the stream ends (for `?follow=false`).
    pub async fn collect(mut self) -> anyhow::Result<Vec<SseEvent>> {
        let mut out = Vec::new();
        while let Some(ev) = tokio::time::timeout(Duration::from_secs(30), self.next()).await?? {
            out.push(ev);
        }
        Ok(out)
    }
}

/// Every event of the backlog that `token` may see, read to its end
/// (`?backlog=true&follow=false`).
pub async fn backlog(region: &crate::Region, token: &str) -> anyhow::Result<Vec<SseEvent>> {
    Feed::open(
        &region.http,
        &region.url,
        "?backlog=true&follow=false",
        token,
        None,
    )
    .await?
    .collect()
    .await
}

fn parse(block: &str) -> Option<SseEvent> {
    let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
    let mut any = false;
    for line in block.lines() {
        if let Some(v) = line.strip_prefix("id:") {
            id = v.trim().parse().ok();
            any = true;
        } else if let Some(v) = line.strip_prefix("event:") {
            event = v.trim().to_string();
            any = true;
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push_str(v.strip_prefix(' ').unwrap_or(v));
            any = true;
        }
    }
    any.then(|| SseEvent {
        id,
        event,
        data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
    })
}
