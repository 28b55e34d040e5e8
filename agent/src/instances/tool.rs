//! Runs the host tools instances are built with (qemu-img, genisoimage), keeping what they said
//! on stderr for the error.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("could not run {program}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: &'static str,
        status: ExitStatus,
        stderr: String,
    },
}

/// Runs `program args` in `cwd` (if given) and returns its stdout.
pub async fn run<S: AsRef<OsStr>>(
    program: &'static str,
    args: &[S],
    cwd: Option<&Path>,
) -> Result<Vec<u8>, ToolError> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let out = cmd
        .output()
        .await
        .map_err(|source| ToolError::Spawn { program, source })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(ToolError::Failed {
            program,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
