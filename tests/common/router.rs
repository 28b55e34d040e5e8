//! An upstream router for an external segment, in a network namespace the test makes: a veth
//! pair whose host end plays the segment's NIC on the hypervisor (plinth bridges it) and whose
//! other end, inside the namespace, holds the segment's gateway addresses. Traffic between a
//! guest and the router never leaves the host; dropping the router removes both.

use anyhow::{Context, ensure};
use std::process::{Command, Output};

pub struct Router {
    /// The namespace's name.
    pub ns: String,
    /// The host end of the veth: the segment's NIC.
    pub nic: String,
}

fn ip(args: &[&str]) -> anyhow::Result<Output> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip")?;
    ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

impl Router {
    /// A router named after `tag` (at most 8 characters) holding `gateways` (`addr/prefix`).
    pub fn start(tag: &str, gateways: &[&str]) -> anyhow::Result<Router> {
        let ns = format!("plr-{tag}");
        let nic = format!("plu{tag}");
        let inside = format!("plg{tag}");
        // A leftover of a killed run would make the names clash.
        let _ = Command::new("ip").args(["link", "del", &nic]).output();
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        ip(&["netns", "add", &ns])?;
        let router = Router { ns, nic };
        ip(&[
            "link",
            "add",
            &router.nic,
            "type",
            "veth",
            "peer",
            "name",
            &inside,
        ])?;
        ip(&["link", "set", &inside, "netns", &router.ns])?;
        ip(&["link", "set", &router.nic, "up"])?;
        router.exec(&["ip", "link", "set", "lo", "up"])?;
        router.exec(&["ip", "link", "set", &inside, "up"])?;
        for gw in gateways {
            // nodad: the address is usable at once.
            router.exec(&["ip", "addr", "add", gw, "dev", &inside, "nodad"])?;
        }
        Ok(router)
    }

    /// Runs `args` inside the namespace; fails unless it succeeds.
    pub fn exec(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.run(args)?;
        ensure!(
            out.status.success(),
            "{} (in {}): {}{}",
            args.join(" "),
            self.ns,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    pub fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(args)
            .output()?)
    }

    /// Pings `address` `count` times from the router (0.2 s apart, 1 s wait each); answers how
    /// many replies came.
    pub fn ping(&self, address: &str, count: u32) -> anyhow::Result<u32> {
        let out = self.run(&[
            "ping",
            "-n",
            "-q",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "1",
            address,
        ])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let received = text
            .split(", ")
            .find_map(|part| part.strip_suffix(" received"))
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| format!("ping's summary: {text}"))?;
        Ok(received)
    }

    /// Starts pinging `address` from the router every 0.1 s until [`Router::stop_ping`].
    pub fn start_ping(&self, address: &str) -> anyhow::Result<std::process::Child> {
        Ok(Command::new("ip")
            .args(["netns", "exec", &self.ns])
            .args(["ping", "-n", "-q", "-i", "0.1", "-W", "1", address])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?)
    }

    /// Stops a [`Router::start_ping`] (SIGINT, so it prints its summary); answers the echo
    /// requests sent and the replies received.
    pub fn stop_ping(mut child: std::process::Child) -> anyhow::Result<(u32, u32)> {
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).is_err() {
            let _ = child.kill();
        }
        let out = child.wait_with_output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let count = |suffix: &str| -> Option<u32> {
            text.split(", ")
                .flat_map(|part| part.split('\n'))
                .find_map(|part| part.trim().strip_suffix(suffix))
                .and_then(|n| n.trim().parse().ok())
        };
        match (count(" packets transmitted"), count(" received")) {
            (Some(sent), Some(received)) => Ok((sent, received)),
            _ => anyhow::bail!("ping's summary: {text}"),
        }
    }

    /// Packets from `source` the router has seen (an iptables rule counts them; added on the
    /// first call).
    pub fn seen_from(&self, source: &str) -> anyhow::Result<u64> {
        let table = if source.contains(':') {
            "ip6tables"
        } else {
            "iptables"
        };
        let rule = ["-s", source, "-j", "ACCEPT"];
        let listed = self.run(
            &[table, "-C", "INPUT"]
                .iter()
                .chain(&rule)
                .copied()
                .collect::<Vec<_>>(),
        )?;
        if !listed.status.success() {
            self.exec(
                &[table, "-I", "INPUT"]
                    .iter()
                    .chain(&rule)
                    .copied()
                    .collect::<Vec<_>>(),
            )?;
        }
        let text = self.exec(&[table, "-L", "INPUT", "-v", "-x", "-n"])?;
        let count = text
            .lines()
            .find(|l| {
                l.split_whitespace().any(|w| {
                    w == source || w == format!("{source}/32") || w == format!("{source}/128")
                })
            })
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .with_context(|| format!("no counter for {source} in: {text}"))?;
        Ok(count)
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        // Deleting the host end removes its peer; the namespace goes with its last link. The
        // bridge plinth made on the NIC normally goes with the segment; after a failed test
        // it would stay.
        let _ = Command::new("ip").args(["link", "del", &self.nic]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &format!("pl-{}", self.nic)])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}
