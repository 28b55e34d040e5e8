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

/// Why a source could not be opened. The `detail` names the server and quotes what it said,
/// for the log; `reason()` is what a tenant reads.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL is not one plinth can import from; the message says why (in terms of the URL the
    /// tenant wrote).
    #[error("{0}")]
    BadUrl(String),
    /// The server could not be reached, refused, or answered with an error.
    #[error("{detail}")]
    Unreachable { fault: Fault, detail: String },
}

/// What went wrong with a source, in words a tenant can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing accepted the connection.
    Refused,
    /// The source did not answer within the deadline.
    TimedOut,
    /// No connection for another reason: the name did not resolve, TLS failed, no route.
    Connect,
    /// An HTTP source answered this status instead of the content.
    Status(u16),
    /// An FTP server refused the login.
    Login,
    /// An FTP server refused to send the file.
    FileRefused,
    /// The server's answers made no sense for the protocol.
    Protocol,
}

impl FetchError {
    pub fn unreachable(fault: Fault, detail: impl Into<String>) -> FetchError {
        FetchError::Unreachable {
            fault,
            detail: detail.into(),
        }
    }

    /// The sentence a tenant reads.
    pub fn reason(&self) -> String {
        let fault = match self {
            FetchError::BadUrl(message) => return message.clone(),
            FetchError::Unreachable { fault, .. } => *fault,
        };
        let what = match fault {
            Fault::Refused => "the source refused the connection".to_string(),
            Fault::TimedOut => "the source did not answer in time".to_string(),
            Fault::Connect => "could not connect to the source".to_string(),
            Fault::Status(code) => {
                let phrase = reqwest::StatusCode::from_u16(code)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .map(|p| format!(" {p}"))
                    .unwrap_or_default();
                format!("the source answered {code}{phrase}")
            }
            Fault::Login => "the FTP server refused the login".to_string(),
            Fault::FileRefused => "the FTP server refused to send the file".to_string(),
            Fault::Protocol => "the server's answers could not be understood".to_string(),
        };
        format!("cannot fetch the image: {what}")
    }
}

/// The fault an I/O error of connecting means.
pub fn connect_fault(err: &std::io::Error) -> Fault {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => Fault::Refused,
        std::io::ErrorKind::TimedOut => Fault::TimedOut,
        _ => Fault::Connect,
    }
}
