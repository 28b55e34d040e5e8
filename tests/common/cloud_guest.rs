//! The tests' real cloud guest: a Debian 12 image with cloud-init, built offline by
//! scripts/cloud-guest.sh from this machine's apt sources and cached outside the clone (keyed
//! by the script's hash, so a change to the script builds a new one); and its serial console,
//! which a test logs in on with the password plinth put in the seed.

use anyhow::{Context, bail, ensure};
use sha2::Digest;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Where built images are kept between runs (never inside a clone: CI starts from a clean one).
const CACHE_DIR: &str = "/var/cache/plinth-test";

/// The guest image, built first if the cache lacks the one this script makes. Concurrent
/// callers (test binaries run one after another, but a developer may run two) wait on a lock.
pub fn image() -> anyhow::Result<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/cloud-guest.sh");
    let text = std::fs::read(&script).with_context(|| format!("reading {}", script.display()))?;
    let key = hex::encode(&sha2::Sha256::digest(&text)[..6]);
    std::fs::create_dir_all(CACHE_DIR)?;
    let out = Path::new(CACHE_DIR).join(format!("cloud-guest-{key}.qcow2"));
    if out.exists() {
        return Ok(out);
    }
    let lock = Path::new(CACHE_DIR).join("cloud-guest.lock");
    eprintln!(
        "building the cloud guest image {} (about 2 minutes, once)",
        out.display()
    );
    let started = Instant::now();
    let status = std::process::Command::new("flock")
        .arg(&lock)
        .arg("sh")
        .arg("-c")
        .arg(r#"[ -e "$2" ] || bash "$1" "$2""#)
        .arg("sh")
        .arg(&script)
        .arg(&out)
        .status()
        .context("running scripts/cloud-guest.sh")?;
    ensure!(status.success(), "scripts/cloud-guest.sh failed ({status})");
    ensure!(
        out.exists(),
        "scripts/cloud-guest.sh made no {}",
        out.display()
    );
    eprintln!("cloud guest image built in {:?}", started.elapsed());
    Ok(out)
}

/// A guest's serial console (its libvirt pty): what it prints is kept, whole, for the test's
/// transcript; what is sent is typed at it.
pub struct Console {
    pty: std::fs::File,
    lines: mpsc::Receiver<Vec<u8>>,
    /// Output not yet consumed by an `expect`.
    pending: Vec<u8>,
    /// Everything the console printed.
    pub transcript: Vec<u8>,
}

/// How long a login prompt may refuse the password: cloud-init sets it in its config stage,
/// which getty does not wait for.
const LOGIN_GRACE: Duration = Duration::from_secs(300);

impl Console {
    /// Opens the console of `domain` on `conn` (its `<serial type='pty'>` source path).
    pub fn open(conn: &virt::connect::Connect, domain: &str) -> anyhow::Result<Console> {
        let xml = conn.lookup_domain_by_name(domain)?.xml_desc(0)?;
        let serial = xml
            .split("<serial type='pty'>")
            .nth(1)
            .context("the domain has no pty serial console")?;
        let path = serial
            .split("path='")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .context("the serial console has no pty path yet")?
            .to_string();
        let pty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {path}"))?;
        let mut attrs = nix::sys::termios::tcgetattr(&pty)?;
        nix::sys::termios::cfmakeraw(&mut attrs);
        nix::sys::termios::tcsetattr(&pty, nix::sys::termios::SetArg::TCSANOW, &attrs)?;
        let mut reader = pty.try_clone()?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send(buf[..n].to_vec()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Console {
            pty,
            lines,
            pending: Vec::new(),
            transcript: Vec::new(),
        })
    }

    pub fn send(&mut self, text: &str) -> anyhow::Result<()> {
        self.pty.write_all(text.as_bytes())?;
        Ok(())
    }

    /// Waits for the first of `patterns` to be printed; answers its index and what came
    /// before it, and consumes the output up to its end.
    pub fn expect(
        &mut self,
        patterns: &[&str],
        timeout: Duration,
    ) -> anyhow::Result<(usize, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = String::from_utf8_lossy(&self.pending).to_string();
            let first = patterns
                .iter()
                .enumerate()
                .filter_map(|(i, p)| text.find(p).map(|at| (at, i, p.len())))
                .min();
            if let Some((at, i, len)) = first {
                let before = text[..at].to_string();
                self.pending = text.as_bytes()[at + len..].to_vec();
                return Ok((i, before));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "none of {patterns:?} within {timeout:?}; the console's last output: {:?}",
                    tail(&self.pending, 600)
                );
            }
            match self.lines.recv_timeout(left.min(Duration::from_secs(1))) {
                Ok(chunk) => {
                    self.transcript.extend_from_slice(&chunk);
                    self.pending.extend_from_slice(&chunk);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => bail!("the console closed"),
            }
        }
    }

    /// Logs in as root with `password` once a login prompt shows, trying again while
    /// cloud-init has not set the password yet; answers how many tries it took.
    pub fn login(&mut self, password: &str, boot: Duration) -> anyhow::Result<u32> {
        self.send("\r")?;
        self.expect(&["login: "], boot)?;
        let grace = Instant::now() + LOGIN_GRACE;
        let mut tries = 0;
        while Instant::now() < grace {
            tries += 1;
            self.send("root\r")?;
            self.expect(&["assword: "], Duration::from_secs(60))?;
            self.send(&format!("{password}\r"))?;
            let (i, _) = self.expect(
                &[":~# ", "Login incorrect", "login: "],
                Duration::from_secs(120),
            )?;
            match i {
                0 => {
                    // Quiet kernel messages, a plain terminal, no echo: commands read clean.
                    self.command("dmesg -n 1; export TERM=dumb; stty -echo cols 200")?;
                    return Ok(tries);
                }
                1 => {
                    self.expect(&["login: "], Duration::from_secs(60))?;
                }
                // A refused login costs the guest's PAM delay (seconds) before the next
                // prompt: the retries are paced by the guest itself.
                _ => {}
            }
        }
        bail!("root could not log in within {LOGIN_GRACE:?} of the first prompt ({tries} tries)")
    }

    /// Runs `cmd` in the logged-in shell; answers its exit status and output. The end marker
    /// is computed by the shell, so the echoed command line never matches it.
    pub fn command(&mut self, cmd: &str) -> anyhow::Result<(i32, String)> {
        self.command_within(cmd, Duration::from_secs(120))
    }

    pub fn command_within(
        &mut self,
        cmd: &str,
        timeout: Duration,
    ) -> anyhow::Result<(i32, String)> {
        self.pending.clear();
        self.send(&format!("{cmd}; echo \"__RC=$?_$((6*7))__\"\r"))?;
        let (_, before) = self.expect(&["_42__"], timeout)?;
        let (output, rc) = before
            .rsplit_once("__RC=")
            .context("the end marker without its status")?;
        let rc: i32 = rc.trim().parse().context("the command's status")?;
        self.expect(&[":~# "], Duration::from_secs(30))?;
        let text: String = output
            .replace('\r', "")
            .lines()
            // The echoed command line, when the terminal still echoes (the first command).
            .filter(|l| !l.contains("__RC=$?"))
            .collect::<Vec<_>>()
            .join("\n");
        Ok((rc, text.trim().to_string()))
    }

    /// The transcript as text, without terminal escapes.
    pub fn transcript_text(&self) -> String {
        strip_escapes(&String::from_utf8_lossy(&self.transcript))
    }
}

fn tail(bytes: &[u8], n: usize) -> String {
    let start = bytes.len().saturating_sub(n);
    String::from_utf8_lossy(&bytes[start..]).to_string()
}

/// `text` without ANSI escape sequences (ESC [ ... letter) and carriage returns.
pub fn strip_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        if c != '\r' {
            out.push(c);
        }
    }
    out
}
