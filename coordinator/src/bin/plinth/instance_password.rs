//! The guest administrator's password for `plinth instances create`: from a file, stdin, the
//! environment or a prompt with the terminal's echo off; never a flag's value, which would
//! stay in the shell's history and in `ps`.

use anyhow::{Context, bail};
use plinth_common::instance::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Where the guest administrator's password may come from when no flag names a source.
pub(crate) const PASSWORD_ENV: &str = "PLINTH_ADMIN_PASSWORD";

/// Where the guest administrator's password is read from; never a flag's value, which would
/// stay in the shell's history and in `ps`.
#[derive(clap::Args)]
#[group(multiple = false)]
pub struct PasswordArgs {
    /// Read the guest administrator's password from this file (one line).
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
    /// Read the guest administrator's password from stdin (one line).
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, PartialEq)]
pub(crate) enum PasswordSource {
    File(PathBuf),
    Stdin,
    Env(String),
    Prompt,
}

impl PasswordArgs {
    /// Flags first, then the environment, then a prompt where there is a terminal to ask on.
    pub(crate) fn source(
        &self,
        env: Option<String>,
        terminal: bool,
    ) -> anyhow::Result<PasswordSource> {
        if let Some(path) = &self.password_file {
            return Ok(PasswordSource::File(path.clone()));
        }
        if self.password_stdin {
            return Ok(PasswordSource::Stdin);
        }
        if let Some(password) = env.filter(|p| !p.is_empty()) {
            return Ok(PasswordSource::Env(password));
        }
        if terminal {
            return Ok(PasswordSource::Prompt);
        }
        bail!(
            "no password for the guest's administrator: pass --password-file or --password-stdin, \
             or set {PASSWORD_ENV}"
        )
    }
}

pub(crate) async fn read_password(source: PasswordSource) -> anyhow::Result<String> {
    let password = match source {
        PasswordSource::File(path) => read_password_file(&path)?,
        PasswordSource::Stdin => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the password from stdin")?;
            one_line(&text, "stdin")?
        }
        PasswordSource::Env(password) => password,
        PasswordSource::Prompt => prompt_password().await?,
    };
    check_password(&password)?;
    Ok(password)
}

fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the password file {}", path.display()))?;
    one_line(&text, &path.display().to_string())
}

/// The text without its final line break; more than one line is refused.
pub(crate) fn one_line(text: &str, from: &str) -> anyhow::Result<String> {
    let line = text
        .strip_suffix('\n')
        .map_or(text, |t| t.strip_suffix('\r').unwrap_or(t));
    if line.contains(['\n', '\r']) {
        bail!("the password in {from} must be one line");
    }
    Ok(line.to_string())
}

pub(crate) fn check_password(password: &str) -> anyhow::Result<()> {
    let len = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        bail!(
            "the password must have {MIN_PASSWORD_LEN}-{MAX_PASSWORD_LEN} characters (it has {len})"
        );
    }
    if password.chars().any(char::is_control) {
        bail!("the password must not contain control characters");
    }
    Ok(())
}

/// Asks twice on the terminal with its echo off.
async fn prompt_password() -> anyhow::Result<String> {
    let saved = stty(&["-g"]).context("reading the terminal's settings")?;
    let saved = saved.trim().to_string();
    stty(&["-echo"]).context("turning the terminal's echo off")?;
    // Once a Ctrl-C handler exists, the signal no longer ends the process; this one puts the
    // terminal back, then ends as an interrupt would (also later, during --wait).
    let restore = saved.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = stty(&[&restore]);
            eprintln!();
            std::process::exit(130);
        }
    });
    let asked = ask_twice().await;
    let restored = stty(&[&saved]).context("turning the terminal's echo back on");
    let password = asked?;
    restored?;
    Ok(password)
}

async fn ask_twice() -> anyhow::Result<String> {
    let first = read_hidden_line("Password for the guest's administrator: ").await?;
    check_password(&first)?;
    let again = read_hidden_line("The same again: ").await?;
    if first != again {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// One line from stdin, read on its own thread so the runtime still sees a Ctrl-C.
async fn read_hidden_line(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}");
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = std::io::stdin().read_line(&mut line).map(|n| (n, line));
        let _ = tx.send(read);
    });
    let read = rx.await.context("reading the password")?;
    eprintln!();
    let (n, line) = read.context("reading the password")?;
    if n == 0 {
        bail!("no password given");
    }
    one_line(&line, "the terminal")
}

/// Runs `stty` on the terminal that is stdin; its output.
fn stty(args: &[&str]) -> anyhow::Result<String> {
    let done = std::process::Command::new("stty")
        .args(args)
        .stdin(Stdio::inherit())
        .stderr(Stdio::inherit())
        .output()
        .context("running stty")?;
    if !done.status.success() {
        bail!("stty {} failed ({})", args.join(" "), done.status);
    }
    Ok(String::from_utf8_lossy(&done.stdout).into_owned())
}
