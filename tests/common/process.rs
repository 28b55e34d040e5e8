//! Child processes the tests start: output to a log file, stopped by pid (SIGTERM, then
//! SIGKILL) when the test ends, even when it fails.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(50);

pub struct Daemon {
    child: Option<Child>,
}

impl Daemon {
    pub fn spawn(mut cmd: Command, log: &Path) -> anyhow::Result<Daemon> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let err = out.try_clone()?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        cmd.env("PLINTH_LOG", "info,plinth_common=debug");
        Ok(Daemon {
            child: Some(cmd.spawn()?),
        })
    }

    pub fn from_child(child: Child) -> Daemon {
        Daemon { child: Some(child) }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as a crash would end it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to `deadline` for the process to exit by itself; if it has
    /// not, kills it and fails.
    pub fn terminate(&mut self, deadline: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let Some(child) = self.child.take() else {
            anyhow::bail!("the process was already stopped");
        };
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM)?;
        exit_within(child, deadline, " of SIGTERM")
    }

    /// Waits up to `deadline` for the process to finish by itself (a command run to its
    /// end); if it has not, kills it and fails.
    pub fn wait(&mut self, deadline: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let Some(child) = self.child.take() else {
            anyhow::bail!("the process was already stopped");
        };
        exit_within(child, deadline, "")
    }

    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(POLL);
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The child's exit status once it exits by itself within `deadline`; else it is killed and
/// the error says it did not exit within `deadline` and `since`.
fn exit_within(
    mut child: Child,
    deadline: Duration,
    since: &str,
) -> anyhow::Result<std::process::ExitStatus> {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        std::thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
    anyhow::bail!("the process did not exit within {deadline:?}{since}")
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}
