//! Where an agent keeps its guests' DHCP servers (dnsmasq, which outlive the agent: see the
//! agent's network/dhcp.rs), for the agent and for whoever tears a host down (tests, dev).

use std::path::Path;

/// Under the agent's data folder: a folder per bridge served, holding the server's `pid`.
pub const DIR: &str = "dhcp";

/// The pid in `server_dir/pid` when that process is alive and is the dnsmasq of that folder.
pub fn running_pid(server_dir: &Path) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(server_dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let ours = format!("--dhcp-hostsfile={}", server_dir.join("hosts").display());
    String::from_utf8_lossy(&cmdline)
        .split('\0')
        .any(|a| a == ours)
        .then_some(pid)
}

/// Stops (SIGTERM, by pid) every DHCP server of the agent whose data folder is `data_dir`;
/// each one's network namespace, and the bridge port into it, go with it.
pub fn stop_all(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir.join(DIR)) else {
        return;
    };
    for entry in entries.flatten() {
        if let Some(pid) = running_pid(&entry.path()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}
