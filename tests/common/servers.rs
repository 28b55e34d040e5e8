//! Real peers the image tests import from: an HTTP server (Python's standard library, with a
//! path prefix that cuts the transfer short and one that sends slowly) and an FTP server
//! (pyftpdlib) with a password-protected user. Both listen on 127.0.0.1, on ports the
//! kernel picks, and are stopped by pid when dropped.

use crate::process::Daemon;
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Debian's interpreter: pyftpdlib comes from apt (python3-pyftpdlib).
const PYTHON: &str = "/usr/bin/python3";

const HTTP_SERVER: &str = r#"
import http.server, os, sys, time
root = sys.argv[1]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        mode, _, name = self.path.lstrip('/').partition('/')
        if mode not in ('files', 'cut', 'slow'):
            self.send_error(404); return
        path = os.path.join(root, os.path.basename(name))
        if not os.path.isfile(path):
            self.send_error(404); return
        data = open(path, 'rb').read()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        if mode == 'cut':
            self.wfile.write(data[:len(data) // 2]); self.wfile.flush(); self.close_connection = True; return
        step = 65536
        for i in range(0, len(data), step):
            self.wfile.write(data[i:i + step])
            if mode == 'slow': time.sleep(0.05)
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
if len(sys.argv) > 3:
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[2], sys.argv[3])
    s.socket = ctx.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

const FTP_SERVER: &str = r#"
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
auth = DummyAuthorizer()
auth.add_user(sys.argv[2], sys.argv[3], sys.argv[1], perm='elr')
FTPHandler.authorizer = auth
FTPHandler.passive_ports = None
s = FTPServer(('127.0.0.1', 0), FTPHandler)
print(s.address[1], flush=True)
s.serve_forever()
"#;

pub struct Server {
    pub port: u16,
    _daemon: Daemon,
}

fn start(script: &str, args: &[&str], log: &Path) -> anyhow::Result<Server> {
    let mut cmd = Command::new(PYTHON);
    cmd.arg("-c").arg(script).args(args);
    let (daemon, stdout) = Daemon::spawn_piped(cmd, log)
        .with_context(|| format!("starting {PYTHON} (run scripts/install-deps.sh)"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let Ok(port) = line.trim().parse() else {
        let log_text = std::fs::read_to_string(log).unwrap_or_default();
        bail!(
            "the test server did not start (is python3-pyftpdlib installed? run scripts/install-deps.sh): {log_text}"
        );
    };
    Ok(Server {
        port,
        _daemon: daemon,
    })
}

/// Serves `root` at `/files/NAME`; `/cut/NAME` stops halfway, `/slow/NAME` trickles.
pub fn http(root: &Path, log: &Path) -> anyhow::Result<Server> {
    start(HTTP_SERVER, &[&root.to_string_lossy()], log)
}

/// Like `http`, over TLS with the given certificate and key (PEM files).
pub fn https(root: &Path, cert: &Path, key: &Path, log: &Path) -> anyhow::Result<Server> {
    start(
        HTTP_SERVER,
        &[
            &root.to_string_lossy(),
            &cert.to_string_lossy(),
            &key.to_string_lossy(),
        ],
        log,
    )
}

/// Serves `root` to `user` with `password`.
pub fn ftp(root: &Path, user: &str, password: &str, log: &Path) -> anyhow::Result<Server> {
    start(FTP_SERVER, &[&root.to_string_lossy(), user, password], log)
}

impl Daemon {
    /// Like `spawn`, with stdout piped back for a first line (a port).
    pub fn spawn_piped(
        mut cmd: Command,
        log: &Path,
    ) -> anyhow::Result<(Daemon, std::process::ChildStdout)> {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(err);
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().context("piped stdout")?;
        Ok((Daemon::from_child(child), stdout))
    }
}
