//! Where an agent keeps its guests' DHCP servers (dnsmasq) and router advertisers (radvd), which
//! outlive the agent (see the agent's network/dhcp.rs), for the agent and for whoever tears a
//! host down (tests, dev).

use std::path::Path;

/// Under the agent's data folder: a folder per bridge served, holding the server's `pid`.
pub const DIR: &str = "dhcp";

/// In a server's folder: the pid of its radvd.
pub const RA_PID: &str = "ra-pid";

/// The pid in `server_dir/pid` when that process is alive and is the dnsmasq of that folder.
pub fn running_pid(server_dir: &Path) -> Option<i32> {
    let ours = format!("--dhcp-hostsfile={}", server_dir.join("hosts").display());
    alive(&server_dir.join("pid"), &ours)
}

/// The pid in `server_dir/ra-pid` when that process is alive and is the radvd of that folder.
pub fn running_ra(server_dir: &Path) -> Option<i32> {
    let ours = format!("--config={}", server_dir.join("radvd.conf").display());
    alive(&server_dir.join(RA_PID), &ours)
}

/// The pid in `pid_file` when that process is alive and has `argument` on its command line.
fn alive(pid_file: &Path, argument: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    String::from_utf8_lossy(&cmdline)
        .split('\0')
        .any(|a| a == argument)
        .then_some(pid)
}

/// Stops (SIGTERM, by pid) every DHCP server and router advertiser of the agent whose data
/// folder is `data_dir`; each one's network namespace, and the bridge ports into it, go with
/// them.
pub fn stop_all(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir.join(DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        for pid in [running_ra(&entry.path()), running_pid(&entry.path())]
            .into_iter()
            .flatten()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}
