//! The FTP source against a real FTP server: pyftpdlib (Debian's python3-pyftpdlib) on
//! 127.0.0.1 port 0, with a user, an anonymous area, and variants that cut the data connection
//! mid-file the way a server that gives up does.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use plinth_coordinator::images::fetch::{FetchError, Source, ftp};
use rand::RngCore;
use reqwest::Url;
use tempfile::TempDir;
use tokio::io::AsyncReadExt;

/// Debian's interpreter: the module is installed for it, not for a pyenv one earlier in PATH.
const PYTHON: &str = "/usr/bin/python3";
const PASSWORD: &str = "s3cr:et@x";
const PASSWORD_IN_URL: &str = "s3cr%3Aet%40x";
const TIMEOUT: Duration = Duration::from_secs(10);
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How much of a file the cutting variants send before closing the data connection.
const CUT_AFTER: usize = 64 * 1024;

/// Serves `user_home` to "plinth" and `anonymous_home` to anonymous, read-only, and prints the
/// port it bound. `abort` and `silent` close every data connection after CUT_AFTER bytes;
/// `abort` then replies 426 as pyftpdlib does for a broken transfer, `silent` replies nothing.
const SERVER: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import FTPServer

bind, user_home, anonymous_home, variant, cut_after = sys.argv[1:6]
cut_after = int(cut_after)

authorizer = DummyAuthorizer()
authorizer.add_user("plinth", "s3cr:et@x", user_home, perm="elr")
authorizer.add_anonymous(anonymous_home, perm="elr")

class CuttingDTPHandler(DTPHandler):
    def use_sendfile(self):
        return False

    def send(self, data):
        sent = DTPHandler.send(self, data)
        if self.tot_bytes_sent >= cut_after and not self._closed:
            if variant == "abort":
                self.handle_close()
            else:
                DTPHandler.close(self)
        return sent

class Handler(FTPHandler):
    pass

Handler.authorizer = authorizer
if variant != "normal":
    Handler.dtp_handler = CuttingDTPHandler

server = FTPServer((bind, 0), Handler)
print(server.socket.getsockname()[1], flush=True)
server.serve_forever()
"#;

#[derive(Clone, Copy)]
enum Variant {
    Normal,
    /// Closes the data connection early and replies 426.
    Abort,
    /// Closes the data connection early and never replies.
    Silent,
}

impl Variant {
    fn arg(self) -> &'static str {
        match self {
            Variant::Normal => "normal",
            Variant::Abort => "abort",
            Variant::Silent => "silent",
        }
    }
}

/// One pyftpdlib process; killed by its pid when dropped, its log printed if the test failed.
struct FtpServer {
    child: Child,
    port: u16,
    /// The address as a URL writes it.
    host: &'static str,
    dir: TempDir,
}

impl FtpServer {
    fn start(bind: &str, variant: Variant) -> Self {
        require_pyftpdlib();
        let dir = TempDir::new().expect("temp dir");
        for home in ["user", "anonymous"] {
            std::fs::create_dir(dir.path().join(home)).expect("create home");
        }
        let log = std::fs::File::create(dir.path().join("server.log")).expect("create log");
        let mut child = Command::new(PYTHON)
            .args(["-c", SERVER, bind])
            .arg(dir.path().join("user"))
            .arg(dir.path().join("anonymous"))
            .args([variant.arg(), &CUT_AFTER.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start pyftpdlib");
        let stdout = child.stdout.take().expect("piped stdout");
        let host = if bind.contains(':') {
            "[::1]"
        } else {
            "127.0.0.1"
        };
        // The guard owns the process from here, so a failed start still kills it.
        let mut server = FtpServer {
            child,
            port: 0,
            host,
            dir,
        };

        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(read.map(|_| line));
        });
        let line = match receiver.recv_timeout(START_DEADLINE) {
            Ok(Ok(line)) => line,
            Ok(Err(error)) => panic!("reading the FTP server's port: {error}"),
            Err(_) => panic!("the FTP server printed no port within {START_DEADLINE:?}"),
        };
        server.port = match line.trim().parse() {
            Ok(port) => port,
            Err(_) => panic!("the FTP server did not start (printed {line:?})"),
        };
        server
    }

    fn user_home(&self) -> PathBuf {
        self.dir.path().join("user")
    }

    fn anonymous_home(&self) -> PathBuf {
        self.dir.path().join("anonymous")
    }

    /// `ftp://[userinfo@]host:port/path`; userinfo and path as they appear in the URL.
    fn url(&self, userinfo: &str, path: &str) -> Url {
        let at = if userinfo.is_empty() { "" } else { "@" };
        let text = format!("ftp://{userinfo}{at}{}:{}/{path}", self.host, self.port);
        Url::parse(&text).expect("test URLs parse")
    }
}

impl Drop for FtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("server.log"));
            eprintln!("--- FTP server log ---\n{}", log.unwrap_or_default());
        }
    }
}

fn require_pyftpdlib() {
    let found = Command::new(PYTHON)
        .args(["-c", "import pyftpdlib"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    assert!(
        found,
        "{PYTHON} cannot import pyftpdlib, which this test serves files with: \
         run scripts/install-deps.sh (Debian package python3-pyftpdlib)"
    );
}

fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    std::fs::write(path, &bytes).expect("write test file");
    bytes
}

async fn open(url: &Url, timeout: Duration) -> Source {
    match ftp::open(url, timeout).await {
        Ok(source) => source,
        Err(error) => panic!("opening {url}: {error}"),
    }
}

async fn read_all(source: Source) -> std::io::Result<Vec<u8>> {
    let mut reader = source.reader;
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).await.map(|_| bytes)
}

#[tokio::test]
async fn anonymous_download_streams_the_whole_file() {
    let server = FtpServer::start("127.0.0.1", Variant::Normal);
    let want = random_file(&server.anonymous_home().join("disk.img"), 5 << 20);

    let source = open(&server.url("", "disk.img"), TIMEOUT).await;
    assert_eq!(source.total_bytes, Some(want.len() as u64));
    let got = read_all(source).await.expect("the download completes");
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the downloaded bytes differ from the file");
}

#[tokio::test]
async fn user_with_percent_encoded_password_and_path() {
    let server = FtpServer::start("127.0.0.1", Variant::Normal);
    let want = random_file(&server.user_home().join("my disk.raw"), 300 * 1024);

    let url = server.url(&format!("plinth:{PASSWORD_IN_URL}"), "my%20disk.raw");
    let source = open(&url, TIMEOUT).await;
    assert_eq!(source.total_bytes, Some(want.len() as u64));
    let got = read_all(source).await.expect("the download completes");
    assert!(got == want, "the downloaded bytes differ from the file");
}

#[tokio::test]
async fn ipv6_literal_host() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipping the IPv6 case: this machine has no ::1");
        return;
    }
    let server = FtpServer::start("::1", Variant::Normal);
    let want = random_file(&server.anonymous_home().join("disk.img"), 200 * 1024);

    let source = open(&server.url("", "disk.img"), TIMEOUT).await;
    assert_eq!(source.total_bytes, Some(want.len() as u64));
    let got = read_all(source).await.expect("the download completes");
    assert!(got == want, "the downloaded bytes differ from the file");
}

#[tokio::test]
async fn refusals_are_unreachable_and_never_name_the_password() {
    let server = FtpServer::start("127.0.0.1", Variant::Normal);
    random_file(&server.user_home().join("disk.img"), 1024);
    let wrong = "wr:ng@pw";
    let wrong_in_url = "wr%3Ang%40pw";

    let cases = [
        (
            "wrong password",
            server.url(&format!("plinth:{wrong_in_url}"), "disk.img"),
            "logging in as plinth",
        ),
        (
            "missing file",
            server.url(&format!("plinth:{PASSWORD_IN_URL}"), "nothing-here.img"),
            "retrieving nothing-here.img",
        ),
        (
            "missing anonymous file",
            server.url("", "disk.img"),
            "retrieving disk.img",
        ),
    ];
    for (label, url, expected) in cases {
        match ftp::open(&url, TIMEOUT).await {
            Err(FetchError::Unreachable {
                detail: message, ..
            }) => {
                assert!(message.contains(expected), "{label}: {message}");
                for secret in [wrong, wrong_in_url, PASSWORD, PASSWORD_IN_URL] {
                    assert!(!message.contains(secret), "{label}: {message}");
                }
            }
            Err(other) => panic!("{label}: expected Unreachable, got {other:?}"),
            Ok(_) => panic!("{label}: expected Unreachable, got a source"),
        }
    }
}

#[tokio::test]
async fn bad_urls_are_refused_before_connecting() {
    let cases = [
        (
            "http scheme",
            "http://127.0.0.1:1/disk.img",
            "not an FTP URL",
        ),
        ("no path", "ftp://127.0.0.1:1", "names no file"),
        ("root path", "ftp://127.0.0.1:1/", "names no file"),
        ("directory", "ftp://127.0.0.1:1/pub/", "names a directory"),
    ];
    for (label, text, expected) in cases {
        let url = Url::parse(text).expect("test URLs parse");
        match ftp::open(&url, TIMEOUT).await {
            Err(FetchError::BadUrl(message)) => {
                assert!(message.contains(expected), "{label}: {message}");
            }
            Err(other) => panic!("{label}: expected BadUrl, got {other:?}"),
            Ok(_) => panic!("{label}: expected BadUrl, got a source"),
        }
    }
}

#[tokio::test]
async fn a_data_connection_cut_mid_file_is_an_error() {
    let cases = [
        (
            "426 after the cut",
            Variant::Abort,
            TIMEOUT,
            std::io::ErrorKind::UnexpectedEof,
        ),
        (
            "no reply after the cut",
            Variant::Silent,
            Duration::from_secs(2),
            std::io::ErrorKind::TimedOut,
        ),
    ];
    for (label, variant, timeout, kind) in cases {
        let server = FtpServer::start("127.0.0.1", variant);
        let len = 5 << 20;
        random_file(&server.anonymous_home().join("disk.img"), len);

        let source = open(&server.url("", "disk.img"), timeout).await;
        assert_eq!(source.total_bytes, Some(len as u64), "{label}");
        let mut reader = source.reader;
        let mut got = Vec::new();
        let error = reader
            .read_to_end(&mut got)
            .await
            .expect_err("a cut transfer must not read as a short file");
        assert_eq!(error.kind(), kind, "{label}: {error}");
        assert!(got.len() < len, "{label}: read {} bytes", got.len());
        assert!(got.len() >= CUT_AFTER, "{label}: read {} bytes", got.len());
    }
}
