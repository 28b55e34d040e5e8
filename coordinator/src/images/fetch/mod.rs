//! Where imported bytes come from: an HTTP(S) or FTP URL, opened as one stream the ingest
//! pipeline reads once. Nothing here buffers a whole image.

pub mod ftp;
pub mod http;

use std::pin::Pin;
use tokio::io::AsyncRead;

/// An opened source: its length when the server says it, and the bytes.
pub struct Source {
    pub total_bytes: Option<u64>,
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not one plinth can import from; the message says why.
    #[error("{0}")]
    BadUrl(String),
    /// The server could not be reached, refused, or answered with an error.
    #[error("{0}")]
    Unreachable(String),
}
