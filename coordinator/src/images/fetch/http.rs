//! HTTP and HTTPS sources, streamed with reqwest. Only a 200 answer is content; anything else
//! is an error that says what the server said.

use super::{Fault, FetchError, Source, connect_fault};
use futures_util::TryStreamExt;
use tokio_util::io::StreamReader;

pub async fn open(client: &reqwest::Client, url: &reqwest::Url) -> Result<Source, FetchError> {
    let host = url.host_str().unwrap_or_default().to_string();
    let resp = client.get(url.clone()).send().await.map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        FetchError::unreachable(fault(&e), format!("cannot fetch from {host}{cause}"))
    })?;
    let status = resp.status();
    if status != reqwest::StatusCode::OK {
        return Err(FetchError::unreachable(
            Fault::Status(status.as_u16()),
            format!("{host} answered {status}"),
        ));
    }
    let total_bytes = resp.content_length();
    let stream = resp.bytes_stream().map_err(|e| {
        if e.is_body() || e.is_decode() {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the transfer ended early{cause}"),
            )
        } else {
            std::io::Error::other(e)
        }
    });
    Ok(Source {
        total_bytes,
        reader: Box::pin(StreamReader::new(stream)),
    })
}

/// What a failed request means: a refused or timed-out connection is told apart from the rest
/// by the I/O error under reqwest's.
fn fault(err: &reqwest::Error) -> Fault {
    if err.is_timeout() {
        return Fault::TimedOut;
    }
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            return connect_fault(io);
        }
        cause = c.source();
    }
    Fault::Connect
}
