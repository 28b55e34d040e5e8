//! The FTP source: logs in (anonymously unless the URL names a user), asks SIZE, and streams
//! RETR in binary passive mode. The reader owns the session and reports a transfer the server
//! did not confirm with 226 as an error, never as a short image.

use std::io;
use std::mem;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use reqwest::Url;
use suppaftp::tokio::{AsyncFtpStream, AsyncNoTlsStream, TransferStream};
use suppaftp::types::FileType;
use suppaftp::{FtpError, Mode};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::{Fault, FetchError, Source, connect_fault};

const DEFAULT_PORT: u16 = 21;
const ANONYMOUS_USER: &str = "anonymous";
const ANONYMOUS_PASSWORD: &str = "anonymous@";

/// Opens `ftp://[user[:password]@]host[:port]/path` for reading (binary mode, passive mode).
///
/// The path is relative to the login directory, as RFC 1738 has it; `%2F` at its start makes
/// it absolute (`ftp://host/%2Fsrv/disk.qcow2` reads `/srv/disk.qcow2`). Connecting, logging
/// in, SIZE and RETR each get `timeout`; so does every wait of the returned reader for data.
pub async fn open(url: &Url, timeout: Duration) -> Result<Source, FetchError> {
    let target = Target::parse(url)?;
    let session = Session {
        target: &target,
        timeout,
    };

    let mut ftp = session
        .step("connecting", Fault::Protocol, connect(&target))
        .await?;
    session
        .step(
            &format!("logging in as {}", target.user),
            Fault::Login,
            ftp.login(target.user.as_str(), target.password.as_str()),
        )
        .await?;
    session
        .step(
            "switching to binary mode",
            Fault::Protocol,
            ftp.transfer_type(FileType::Binary),
        )
        .await?;
    let ipv6 = ftp
        .get_ref()
        .await
        .peer_addr()
        .is_ok_and(|peer| peer.is_ipv6());
    if ipv6 {
        // PASV can only name an IPv4 address; EPSV (RFC 2428) names just a port.
        ftp.set_mode(Mode::ExtendedPassive);
    } else {
        // Connect data to the control peer, not the address PASV announces (as curl does):
        // servers behind NAT announce private addresses, and a hostile one could aim the
        // coordinator at any host of its choosing.
        ftp.set_mode(Mode::Passive);
        ftp.set_passive_nat_workaround(true);
    }

    // After TYPE I, so that the size is in bytes as RETR will send them.
    let total_bytes = match tokio::time::timeout(timeout, ftp.size(target.path.as_str())).await {
        Ok(Ok(size)) => u64::try_from(size).ok(),
        // SIZE is an extension (RFC 3659); a server without it still serves the file.
        Ok(Err(FtpError::UnexpectedResponse(_) | FtpError::BadResponse)) => None,
        Ok(Err(error)) => {
            return Err(session.fail(
                "asking the size",
                fault_of(&error, Fault::Protocol),
                &describe(&error),
            ));
        }
        // A late reply would answer the next command, so the session cannot go on.
        Err(_) => {
            return Err(session.fail("asking the size", Fault::TimedOut, &session.no_answer()));
        }
    };

    let data = session
        .step(
            &format!("retrieving {}", target.path),
            Fault::FileRefused,
            ftp.retr_as_stream(target.path.as_str()),
        )
        .await?;
    tracing::debug!(
        server = %target.origin,
        path = %target.path,
        ?total_bytes,
        "FTP transfer started."
    );

    Ok(Source {
        total_bytes,
        reader: Box::pin(Transfer {
            state: State::Reading { ftp, data },
            label: format!("FTP server {}, file {}", target.origin, target.path),
            timeout,
            waiting_since: None,
            idle: Box::pin(tokio::time::sleep(timeout)),
        }),
    })
}

/// What an FTP URL names, percent-decoded. Holds a password, so it has no `Debug`.
struct Target {
    /// Host name or address without IPv6 brackets, for resolving.
    host: String,
    port: u16,
    /// `host:port` as messages show it, IPv6 in brackets.
    origin: String,
    user: String,
    password: String,
    path: String,
}

impl Target {
    fn parse(url: &Url) -> Result<Self, FetchError> {
        if url.scheme() != "ftp" {
            return Err(FetchError::BadUrl(format!(
                "{}:// is not an FTP URL; it must start with ftp://",
                url.scheme()
            )));
        }
        let Some(shown_host) = url.host_str().filter(|host| !host.is_empty()) else {
            return Err(FetchError::BadUrl("the FTP URL names no host".to_string()));
        };
        let port = url.port().unwrap_or(DEFAULT_PORT);
        let host = shown_host
            .strip_prefix('[')
            .and_then(|host| host.strip_suffix(']'))
            .unwrap_or(shown_host);

        let path = decode("path", url.path().strip_prefix('/').unwrap_or(url.path()))?;
        if path.is_empty() {
            return Err(FetchError::BadUrl(
                "the FTP URL names no file: its path is empty".to_string(),
            ));
        }
        if path.ends_with('/') {
            return Err(FetchError::BadUrl(format!(
                "the FTP URL names a directory ({path}), not a file"
            )));
        }

        let (user, password) = if url.username().is_empty() {
            (ANONYMOUS_USER.to_string(), ANONYMOUS_PASSWORD.to_string())
        } else {
            (
                decode("user name", url.username())?,
                decode("password", url.password().unwrap_or(""))?,
            )
        };

        Ok(Self {
            host: host.to_string(),
            port,
            origin: format!("{shown_host}:{port}"),
            user,
            password,
            path,
        })
    }
}

/// Percent-decodes one part of the URL. CR, LF and NUL are refused: decoded, they would end the
/// FTP command early and let the URL smuggle in a command of its own.
fn decode(part: &str, encoded: &str) -> Result<String, FetchError> {
    let mut bytes = Vec::with_capacity(encoded.len());
    let mut rest = encoded.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        let escaped = match tail {
            [high, low, ..] if first == b'%' => hex_digit(*high).zip(hex_digit(*low)),
            _ => None,
        };
        match escaped {
            Some((high, low)) => {
                bytes.push(high << 4 | low);
                rest = tail.get(2..).unwrap_or_default();
            }
            None => {
                bytes.push(first);
                rest = tail;
            }
        }
    }
    let decoded = String::from_utf8(bytes).map_err(|_| {
        FetchError::BadUrl(format!(
            "the {part} in the FTP URL is not UTF-8 once percent-decoded"
        ))
    })?;
    if decoded.contains(['\r', '\n', '\0']) {
        return Err(FetchError::BadUrl(format!(
            "the {part} in the FTP URL contains a line break or NUL"
        )));
    }
    Ok(decoded)
}

fn hex_digit(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|digit| u8::try_from(digit).ok())
}

/// Tries each address the host resolves to, then waits for the server's greeting.
async fn connect(target: &Target) -> Result<AsyncFtpStream, FtpError> {
    let addresses = tokio::net::lookup_host((target.host.as_str(), target.port))
        .await
        .map_err(FtpError::ConnectionError)?;
    let mut last_error = io::Error::new(
        io::ErrorKind::NotFound,
        "the host name resolves to no address",
    );
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return AsyncFtpStream::connect_with_stream(stream).await,
            Err(error) => last_error = error,
        }
    }
    Err(FtpError::ConnectionError(last_error))
}

/// The steps of opening one URL: each bounded by the timeout, each failure worded without the
/// password.
struct Session<'a> {
    target: &'a Target,
    timeout: Duration,
}

impl Session<'_> {
    /// Runs one step; `refused` is what a server's refusal of it means.
    async fn step<T>(
        &self,
        what: &str,
        refused: Fault,
        step: impl Future<Output = Result<T, FtpError>>,
    ) -> Result<T, FetchError> {
        match tokio::time::timeout(self.timeout, step).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.fail(what, fault_of(&error, refused), &describe(&error))),
            Err(_) => Err(self.fail(what, Fault::TimedOut, &self.no_answer())),
        }
    }

    fn no_answer(&self) -> String {
        format!("no answer within {:?}", self.timeout)
    }

    fn fail(&self, what: &str, fault: Fault, cause: &str) -> FetchError {
        let message = format!("FTP server {}: {what}: {cause}", self.target.origin);
        // Servers may quote what they were sent; the password must not reach a log or a client.
        let password = &self.target.password;
        FetchError::unreachable(
            fault,
            if password.is_empty() {
                message
            } else {
                message.replace(password.as_str(), "***")
            },
        )
    }
}

/// What an FTP error means for the tenant: a connection's own failure, else `refused`.
fn fault_of(error: &FtpError, refused: Fault) -> Fault {
    match error {
        FtpError::ConnectionError(error) => connect_fault(error),
        FtpError::BadResponse => Fault::Protocol,
        _ => refused,
    }
}

/// Words an FTP error for a message; a server's reply is quoted on one line.
fn describe(error: &FtpError) -> String {
    match error {
        FtpError::ConnectionError(error) => error.to_string(),
        FtpError::UnexpectedResponse(response) => {
            let text = String::from_utf8_lossy(&response.body);
            format!(
                "the server answered \"{}\"",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            )
        }
        FtpError::BadResponse => "the server's reply could not be parsed".to_string(),
        other => other.to_string(),
    }
}

/// The reader handed out by [`open`]: the data connection, then the server's verdict on it.
struct Transfer {
    state: State,
    /// Names the server and file in errors.
    label: String,
    timeout: Duration,
    /// When the reader last started waiting for data that has not come yet.
    waiting_since: Option<Instant>,
    idle: Pin<Box<Sleep>>,
}

enum State {
    Reading {
        ftp: AsyncFtpStream,
        data: TransferStream<AsyncNoTlsStream>,
    },
    /// The data connection ended; reading the 226 and quitting.
    Finishing(Pin<Box<dyn Future<Output = io::Result<()>> + Send>>),
    Done,
    /// Every later read repeats the error, so no caller mistakes a failed transfer for EOF.
    Failed {
        kind: io::ErrorKind,
        message: String,
    },
}

impl Transfer {
    fn fail(&mut self, kind: io::ErrorKind, message: String) -> io::Error {
        let error = io::Error::new(kind, message.clone());
        self.state = State::Failed { kind, message };
        error
    }

    /// Fails the read once the server has sent nothing for the whole timeout.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let deadline = *self.waiting_since.get_or_insert_with(Instant::now) + self.timeout;
        if self.idle.deadline() != deadline {
            self.idle.as_mut().reset(deadline);
        }
        match self.idle.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => {
                let message = format!("{}: no data for {:?}", self.label, self.timeout);
                Poll::Ready(Err(self.fail(io::ErrorKind::TimedOut, message)))
            }
        }
    }
}

/// Reads the transfer's completion reply, then quits. EOF on the data connection is all a
/// server that gave up mid-file sends; only the 226 says the file is whole.
fn finish(
    mut ftp: AsyncFtpStream,
    data: TransferStream<AsyncNoTlsStream>,
    timeout: Duration,
    label: String,
) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>> {
    Box::pin(async move {
        match tokio::time::timeout(timeout, data.finish()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                let kind = match &error {
                    FtpError::ConnectionError(error) => error.kind(),
                    _ => io::ErrorKind::UnexpectedEof,
                };
                return Err(io::Error::new(
                    kind,
                    format!(
                        "{label}: the transfer did not complete: {}",
                        describe(&error)
                    ),
                ));
            }
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "{label}: the data connection closed but the server did not confirm \
                         the transfer within {timeout:?}"
                    ),
                ));
            }
        }
        // The file is whole once 226 came; a failed QUIT only leaves the server to time out.
        match tokio::time::timeout(timeout, ftp.quit()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                let error = describe(&error);
                tracing::debug!(%error, "{label}: QUIT failed after the transfer.");
            }
            Err(_) => tracing::debug!("{label}: no answer to QUIT after the transfer."),
        }
        Ok(())
    })
}

impl AsyncRead for Transfer {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            match mem::replace(&mut this.state, State::Done) {
                State::Reading { ftp, mut data } => {
                    let before = buf.filled().len();
                    match Pin::new(&mut data).poll_read(cx, buf) {
                        Poll::Ready(Ok(())) if buf.filled().len() > before => {
                            this.waiting_since = None;
                            this.state = State::Reading { ftp, data };
                            return Poll::Ready(Ok(()));
                        }
                        Poll::Ready(Ok(())) => {
                            let label = this.label.clone();
                            this.state = State::Finishing(finish(ftp, data, this.timeout, label));
                        }
                        Poll::Ready(Err(error)) => {
                            let message =
                                format!("{}: the data connection failed: {error}", this.label);
                            return Poll::Ready(Err(this.fail(error.kind(), message)));
                        }
                        Poll::Pending => {
                            this.state = State::Reading { ftp, data };
                            return this.poll_idle(cx);
                        }
                    }
                }
                State::Finishing(mut finishing) => {
                    return match finishing.as_mut().poll(cx) {
                        Poll::Pending => {
                            this.state = State::Finishing(finishing);
                            Poll::Pending
                        }
                        Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
                        Poll::Ready(Err(error)) => {
                            Poll::Ready(Err(this.fail(error.kind(), error.to_string())))
                        }
                    };
                }
                State::Done => return Poll::Ready(Ok(())),
                State::Failed { kind, message } => {
                    return Poll::Ready(Err(this.fail(kind, message)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).expect("test URLs parse")
    }

    #[test]
    fn parses_urls() {
        struct Case {
            label: &'static str,
            url: &'static str,
            host: &'static str,
            port: u16,
            origin: &'static str,
            user: &'static str,
            password: &'static str,
            path: &'static str,
        }
        let cases = [
            Case {
                label: "anonymous, default port",
                url: "ftp://mirror.example/pub/disk.qcow2",
                host: "mirror.example",
                port: 21,
                origin: "mirror.example:21",
                user: ANONYMOUS_USER,
                password: ANONYMOUS_PASSWORD,
                path: "pub/disk.qcow2",
            },
            Case {
                label: "encoded user, password and path",
                url: "ftp://us%40er:s3cr%3Aet%40x@10.0.0.5:2121/my%20images/d%C3%A9bian.raw",
                host: "10.0.0.5",
                port: 2121,
                origin: "10.0.0.5:2121",
                user: "us@er",
                password: "s3cr:et@x",
                path: "my images/débian.raw",
            },
            Case {
                label: "user without password",
                url: "ftp://plinth@host/file",
                host: "host",
                port: 21,
                origin: "host:21",
                user: "plinth",
                password: "",
                path: "file",
            },
            Case {
                label: "IPv6 literal",
                url: "ftp://[::1]:2100/disk.img",
                host: "::1",
                port: 2100,
                origin: "[::1]:2100",
                user: ANONYMOUS_USER,
                password: ANONYMOUS_PASSWORD,
                path: "disk.img",
            },
            Case {
                label: "absolute path via %2F",
                url: "ftp://host/%2Fsrv/disk.img",
                host: "host",
                port: 21,
                origin: "host:21",
                user: ANONYMOUS_USER,
                password: ANONYMOUS_PASSWORD,
                path: "/srv/disk.img",
            },
            Case {
                label: "stray percent kept",
                url: "ftp://host/100%25%zz",
                host: "host",
                port: 21,
                origin: "host:21",
                user: ANONYMOUS_USER,
                password: ANONYMOUS_PASSWORD,
                path: "100%%zz",
            },
        ];
        for case in cases {
            let target = match Target::parse(&url(case.url)) {
                Ok(target) => target,
                Err(error) => panic!("{}: {error}", case.label),
            };
            assert_eq!(target.host, case.host, "{}", case.label);
            assert_eq!(target.port, case.port, "{}", case.label);
            assert_eq!(target.origin, case.origin, "{}", case.label);
            assert_eq!(target.user, case.user, "{}", case.label);
            assert_eq!(target.password, case.password, "{}", case.label);
            assert_eq!(target.path, case.path, "{}", case.label);
        }
    }

    #[test]
    fn rejects_bad_urls() {
        let cases = [
            (
                "http scheme",
                "http://host/disk.img",
                "http:// is not an FTP URL",
            ),
            (
                "ftps scheme",
                "ftps://host/disk.img",
                "ftps:// is not an FTP URL",
            ),
            ("no path", "ftp://host", "path is empty"),
            ("root path", "ftp://host/", "path is empty"),
            ("directory", "ftp://host/pub/", "names a directory"),
            (
                "CRLF in path",
                "ftp://host/a%0D%0ADELE%20b",
                "path in the FTP URL contains",
            ),
            (
                "CRLF in password",
                "ftp://u:p%0D%0A@host/a",
                "password in the FTP URL contains",
            ),
            (
                "not UTF-8",
                "ftp://host/%FF",
                "path in the FTP URL is not UTF-8",
            ),
        ];
        for (label, text, expected) in cases {
            match Target::parse(&url(text)) {
                Err(FetchError::BadUrl(message)) => {
                    assert!(message.contains(expected), "{label}: {message}");
                }
                Err(other) => panic!("{label}: expected BadUrl, got {other:?}"),
                Ok(_) => panic!("{label}: expected BadUrl, got a target"),
            }
        }
    }

    /// How the fake server in these tests misbehaves.
    #[derive(Clone, Copy)]
    enum Fake {
        /// Accepts the connection and never greets.
        Mute,
        /// Refuses the login, quoting the password it was sent.
        EchoPassword,
        /// Sends three bytes of the file, then neither more nor a reply.
        StallData,
    }

    /// A one-connection FTP server just big enough for `open`, on 127.0.0.1.
    async fn fake_server(fake: Fake) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind control");
        let address = listener.local_addr().expect("control address");
        tokio::spawn(async move {
            let (control, _) = listener.accept().await.expect("accept control");
            let mut control = BufReader::new(control);
            if matches!(fake, Fake::Mute) {
                let _ = control.read_u8().await;
                return;
            }
            control.write_all(b"220 fake\r\n").await.expect("greet");
            let mut data_listener = None;
            let mut held = Vec::new();
            let mut line = String::new();
            while control.read_line(&mut line).await.unwrap_or(0) > 0 {
                let (verb, argument) = line
                    .trim_end()
                    .split_once(' ')
                    .unwrap_or((line.trim_end(), ""));
                let reply = match verb {
                    "USER" => "331 password please".to_string(),
                    "PASS" if matches!(fake, Fake::EchoPassword) => {
                        format!("530 wrong password {argument}")
                    }
                    "PASS" => "230 in".to_string(),
                    "TYPE" => "200 ok".to_string(),
                    "SIZE" => "213 1000".to_string(),
                    "PASV" => {
                        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind data");
                        let port = listener.local_addr().expect("data address").port();
                        data_listener = Some(listener);
                        format!("227 passive (127,0,0,1,{},{})", port / 256, port % 256)
                    }
                    "RETR" => {
                        let (mut data, _) = data_listener
                            .take()
                            .expect("PASV before RETR")
                            .accept()
                            .await
                            .expect("accept data");
                        control
                            .write_all(b"150 sending\r\n")
                            .await
                            .expect("reply 150");
                        data.write_all(b"abc").await.expect("send data");
                        held.push(data);
                        line.clear();
                        continue;
                    }
                    _ => "502 no".to_string(),
                };
                control
                    .write_all(format!("{reply}\r\n").as_bytes())
                    .await
                    .expect("reply");
                line.clear();
            }
        });
        address
    }

    #[tokio::test]
    async fn failures_never_name_the_password() {
        let password = "s3cr:et@x";
        let encoded = "s3cr%3Aet%40x";
        let closed_port = {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listener.local_addr().expect("address").port()
        };
        let echo = fake_server(Fake::EchoPassword).await;
        let cases = [
            (
                "login refused, password quoted",
                echo.port(),
                "wrong password ***",
                Fault::Login,
            ),
            (
                "connection refused",
                closed_port,
                "connecting",
                Fault::Refused,
            ),
        ];
        for (label, port, expected, want) in cases {
            let url = url(&format!("ftp://plinth:{encoded}@127.0.0.1:{port}/disk.img"));
            match open(&url, Duration::from_secs(5)).await {
                Err(err @ FetchError::Unreachable { fault, .. }) => {
                    let message = err.to_string();
                    assert_eq!(fault, want, "{label}: {message}");
                    let reason = err.reason();
                    assert!(
                        !reason.contains("127.0.0.1") && !reason.contains("***"),
                        "{label}: the reason shows the server or its words: {reason}"
                    );
                    assert!(message.contains(expected), "{label}: {message}");
                    assert!(!message.contains(password), "{label}: {message}");
                    assert!(!message.contains(encoded), "{label}: {message}");
                }
                Err(other) => panic!("{label}: expected Unreachable, got {other:?}"),
                Ok(_) => panic!("{label}: expected Unreachable, got a source"),
            }
        }
    }

    #[tokio::test]
    async fn a_mute_server_times_out() {
        let address = fake_server(Fake::Mute).await;
        let url = url(&format!("ftp://{address}/disk.img"));
        let started = std::time::Instant::now();
        match open(&url, Duration::from_millis(300)).await {
            Err(FetchError::Unreachable { fault, detail }) => {
                assert!(detail.contains("connecting: no answer"), "{detail}");
                assert_eq!(fault, Fault::TimedOut);
            }
            Err(other) => panic!("expected Unreachable, got {other:?}"),
            Ok(_) => panic!("expected Unreachable, got a source"),
        }
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_stalled_data_connection_times_out() {
        let address = fake_server(Fake::StallData).await;
        let url = url(&format!("ftp://{address}/disk.img"));
        let source = open(&url, Duration::from_millis(300))
            .await
            .expect("open succeeds before the stall");
        assert_eq!(source.total_bytes, Some(1000));
        let mut reader = source.reader;
        let mut bytes = Vec::new();
        let error = reader
            .read_to_end(&mut bytes)
            .await
            .expect_err("a stall is an error");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert_eq!(bytes, b"abc");
        // A second read must not turn the failure into EOF.
        let again = reader
            .read(&mut [0; 16])
            .await
            .expect_err("the error repeats");
        assert_eq!(again.kind(), io::ErrorKind::TimedOut);
    }
}
