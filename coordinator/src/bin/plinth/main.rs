//! `plinth`: the admin CLI of a plinth region. It talks to the coordinator's HTTPS API with a
//! bearer token and prints aligned tables, or the raw JSON responses with `--json`.

mod admin;
mod baremetal;
mod client;
mod console;
mod devices;
mod eips;
mod events;
mod format;
mod host_identity;
mod hosts;
mod image_render;
mod images;
mod instance_password;
mod instances;
mod maintenance;
mod metrics;
mod migrate;
mod moves;
mod operations;
mod output;
mod paging;
mod progress;
mod segments;
mod settings;
mod table;
mod terminal;
mod tokens;

use clap::{Parser, Subcommand};
use client::Client;
use output::Output;
use settings::ConnArgs;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "plinth",
    version,
    about = "Admin CLI for a plinth region",
    after_help = "Connection settings come from flags, else PLINTH_URL, PLINTH_TOKEN and PLINTH_CA, \
                  else ~/.config/plinth/cli.toml (keys url, token, ca)."
)]
struct Cli {
    #[command(flatten)]
    conn: ConnArgs,
    /// Print the raw JSON response instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compute hosts: list, show, lock, unlock, ask the agent, maintenance.
    Hosts {
        #[command(subcommand)]
        command: hosts::HostsCommand,
    },
    /// Clusters hosts enroll into.
    Clusters {
        #[command(subcommand)]
        command: admin::ClustersCommand,
    },
    /// Tenants and their quotas.
    Tenants {
        #[command(subcommand)]
        command: admin::TenantsCommand,
    },
    /// Instances: list, show, create, start, stop, reboot, delete, export to an image, migrate.
    Instances {
        #[command(subcommand)]
        command: instances::InstancesCommand,
    },
    /// Images: list, import, upload, edit, delete, copy to base, download.
    Images {
        #[command(subcommand)]
        command: images::ImagesCommand,
    },
    /// Deleted custom images: list, restore, destroy.
    RecycleBin {
        #[command(subcommand)]
        command: images::RecycleBinCommand,
    },
    /// External IP segments tenants draw public addresses from.
    Segments {
        #[command(subcommand)]
        command: segments::SegmentsCommand,
    },
    /// EIPs: public addresses tenants allocate and bind to instances.
    Eips {
        #[command(subcommand)]
        command: eips::EipsCommand,
    },
    /// Bare-metal servers managed through their BMCs.
    Baremetal {
        #[command(subcommand)]
        command: baremetal::BaremetalCommand,
    },
    /// API tokens and agent enrollment tokens.
    Tokens {
        #[command(subcommand)]
        command: tokens::TokensCommand,
    },
    /// The change feed: state changes of hosts, instances, images, bare metal, segments,
    /// EIPs and operations.
    Events(events::EventsArgs),
    /// Long-running work: list (with filters) and show with its steps.
    Operations {
        #[command(subcommand)]
        command: operations::OperationsCommand,
    },
    /// The newest audit entries (100 unless --limit says how many).
    Audit(paging::PageArgs),
    /// The region's coordinators: which are alive, and which runs the jobs.
    Coordinators,
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = settings::resolve(&cli.conn)?;
    let client = Client::new(&settings)?;
    let out = Output::new(cli.json);
    match cli.command {
        Command::Hosts { command } => hosts::run(&client, &out, command).await,
        Command::Clusters { command } => admin::clusters(&client, &out, command).await,
        Command::Tenants { command } => admin::tenants(&client, &out, command).await,
        Command::Instances { command } => instances::run(&client, &out, command).await,
        Command::Images { command } => images::run(&client, &out, command).await,
        Command::RecycleBin { command } => images::recycle_bin(&client, &out, command).await,
        Command::Segments { command } => segments::run(&client, &out, command).await,
        Command::Eips { command } => eips::run(&client, &out, command).await,
        Command::Baremetal { command } => baremetal::run(&client, &out, command).await,
        Command::Tokens { command } => tokens::run(&client, &out, command).await,
        Command::Operations { command } => operations::run(&client, &out, command).await,
        Command::Audit(page) => admin::audit(&client, &out, page).await,
        Command::Coordinators => admin::coordinators(&client, &out).await,
        Command::Events(args) => events::run(&settings, cli.json, args).await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    plinth_common::tls::install_crypto_provider();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("plinth").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_tree_is_valid() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn instance_commands_parse_with_json_anywhere() {
        let cli = parse(&["instances", "show", "i-1", "--json"]).expect("parses");
        assert!(cli.json);
        assert!(matches!(cli.command, Command::Instances { .. }));
        let cli = parse(&["--json", "hosts", "instances", "h-1", "-q", "web"]).expect("parses");
        assert!(cli.json);
        assert!(matches!(
            cli.command,
            Command::Hosts {
                command: hosts::HostsCommand::Instances { ref id, q: Some(ref q), .. }
            } if id == "h-1" && q == "web"
        ));
        for args in [
            &["tenants", "quota", "show", "t-1"][..],
            &["tenants", "quota", "set", "t-1", "--cores", "16", "--json"],
            &["instances", "stop", "i-1", "--timeout", "60s", "--wait"],
            &[
                "instances",
                "delete",
                "i-1",
                "--wait",
                "--wait-timeout",
                "2m",
            ],
            &["instances", "export", "i-1", "--name", "golden", "--wait"],
            &[
                "instances",
                "migrate",
                "i-1",
                "--to",
                "h-2",
                "--wait",
                "--json",
            ],
            &[
                "hosts",
                "maintenance",
                "enter",
                "h-1",
                "--wait",
                "--timeout",
                "3h",
            ],
            &["--json", "hosts", "maintenance", "status", "h-1", "--watch"],
            &["hosts", "maintenance", "plan", "h-1"],
            &["hosts", "maintenance", "exit", "h-1"],
            &[
                "segments",
                "create",
                "--name",
                "public-1",
                "--cidr",
                "203.0.113.0/24",
                "--gateway",
                "203.0.113.1",
                "--nic",
                "bond1",
                "--vlan",
                "100",
                "--route-policy",
                "specified",
                "--route",
                "10.0.2.0/24",
                "--route",
                "10.0.3.0/24",
                "--tenant",
                "a@example.com",
            ],
            &[
                "segments",
                "update",
                "seg-1",
                "--untagged",
                "--state",
                "disabled",
            ],
            &["segments", "permit", "seg-1", "--all-tenants"],
            &[
                "segments", "permit", "seg-1", "--tenant", "t-1", "--tenant", "t-2",
            ],
            &["segments", "permit", "seg-1", "--no-tenant"],
            &[
                "eips",
                "allocate",
                "--ip-version",
                "6",
                "--segment",
                "seg-1",
            ],
            &["eips", "list", "--tenant", "t-1", "--json"],
            &["eips", "bind", "eip-1", "i-1"],
            &["instances", "network", "i-1"],
            &["hosts", "usb", "h-1"],
            &["hosts", "usb", "assign", "h-1", "1-2", "--instance", "i-1"],
            &["hosts", "usb", "release", "h-1", "1-2", "--json"],
            &["hosts", "gpus", "h-1"],
            &[
                "hosts",
                "gpus",
                "slice",
                "h-1",
                "0000:41:00.0",
                "--type",
                "nvidia-46",
                "--count",
                "2",
            ],
            &["hosts", "gpus", "restore", "h-1", "0000:41:00.0"],
            &["hosts", "vgpus", "h-1"],
            &[
                "operations",
                "list",
                "--kind",
                "host_drain",
                "--status",
                "running",
            ],
            &[
                "operations",
                "list",
                "--resource",
                "bm-1",
                "--tenant",
                "t-1",
                "--limit",
                "5",
            ],
            &["operations", "show", "op-1", "--json"],
            &[
                "baremetal",
                "power",
                "bm-1",
                "reboot",
                "--hard",
                "--no-wait",
            ],
            &["baremetal", "power", "bm-1", "on", "--wait-timeout", "2m"],
        ] {
            assert!(parse(args).is_ok(), "{args:?}");
        }
        for wrong in [
            &["segments", "permit", "seg-1"][..],
            &[
                "segments",
                "permit",
                "seg-1",
                "--all-tenants",
                "--tenant",
                "t-1",
            ],
            &["segments", "update", "seg-1", "--vlan", "5", "--untagged"],
            &[
                "segments",
                "create",
                "--name",
                "x",
                "--cidr",
                "203.0.113.0/24",
            ],
            &["eips", "allocate", "--ip-version", "5"],
            &["hosts", "usb", "assign", "h-1", "1-2"],
            &["hosts", "gpus", "slice", "h-1", "0000:41:00.0"],
        ] {
            assert!(parse(wrong).is_err(), "{wrong:?}");
        }
    }
}
