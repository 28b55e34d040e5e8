//! `plinth hosts usb|gpus|vgpus`: a host's USB devices, GPUs and vGPUs; USB devices assigned
//! to and released from instances; GPUs sliced into vGPUs and restored.

use crate::client::Client;
use crate::format::{or_dash, size};
use crate::output::Output;
use crate::table::Table;
use clap::Subcommand;
use plinth_common::api::{
    AssignUsb, DeviceState, Gpu, GpuList, GpuState, SliceGpu, UsbDevice, UsbDeviceList, VgpuKind,
    VgpuList,
};

/// `plinth hosts usb ID`, or one of its subcommands.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct UsbArgs {
    /// The host whose USB devices to list.
    id: Option<String>,
    #[command(subcommand)]
    command: Option<UsbCommand>,
}

#[derive(Subcommand)]
pub enum UsbCommand {
    /// Attach a USB device to an instance on the same host.
    Assign {
        host: String,
        /// The device id (bus-port, e.g. 1-2).
        device: String,
        #[arg(long, value_name = "ID")]
        instance: String,
    },
    /// Detach a USB device from the instance holding it.
    Release { host: String, device: String },
}

/// `plinth hosts gpus ID`, or one of its subcommands.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GpusArgs {
    /// The host whose GPUs to list.
    id: Option<String>,
    #[command(subcommand)]
    command: Option<GpusCommand>,
}

#[derive(Subcommand)]
pub enum GpusCommand {
    /// Slice a GPU into vGPUs of one type.
    Slice {
        host: String,
        /// The GPU's PCI address (e.g. 0000:41:00.0).
        address: String,
        /// A vGPU type id or name the GPU offers (see `plinth hosts gpus ID`).
        #[arg(long = "type", value_name = "TYPE")]
        vgpu_type: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
    },
    /// Remove every vGPU of a GPU (refused while one is attached to an instance).
    Restore { host: String, address: String },
}

pub async fn usb(client: &Client, out: &Output, args: UsbArgs) -> anyhow::Result<()> {
    match (args.command, args.id) {
        (
            Some(UsbCommand::Assign {
                host,
                device,
                instance,
            }),
            _,
        ) => {
            let body = AssignUsb {
                instance_id: instance,
            };
            let value = client
                .post(&["v1", "hosts", &host, "usb", &device, "assign"], &body)
                .await?;
            out.emit(value, |d: &UsbDevice| {
                format!(
                    "USB device {} ({}) is now assigned to instance {}\n",
                    d.id,
                    d.name,
                    or_dash(d.instance_id.as_deref())
                )
            })
        }
        (Some(UsbCommand::Release { host, device }), _) => {
            let value = client
                .post_empty(&["v1", "hosts", &host, "usb", &device, "release"])
                .await?;
            out.emit(value, |d: &UsbDevice| {
                format!("USB device {} ({}) is free\n", d.id, d.name)
            })
        }
        (None, Some(id)) => out.emit(client.get(&["v1", "hosts", &id, "usb"]).await?, render_usb),
        (None, None) => anyhow::bail!("name a host: plinth hosts usb ID"),
    }
}

pub async fn gpus(client: &Client, out: &Output, args: GpusArgs) -> anyhow::Result<()> {
    match (args.command, args.id) {
        (
            Some(GpusCommand::Slice {
                host,
                address,
                vgpu_type,
                count,
            }),
            _,
        ) => {
            let body = SliceGpu { vgpu_type, count };
            let value = client
                .post(&["v1", "hosts", &host, "gpus", &address, "slice"], &body)
                .await?;
            out.emit(value, render_vgpus)
        }
        (Some(GpusCommand::Restore { host, address }), _) => {
            let value = client
                .post_empty(&["v1", "hosts", &host, "gpus", &address, "restore"])
                .await?;
            out.emit(value, |g: &Gpu| {
                format!(
                    "GPU {} ({}) is restored: {}\n",
                    g.address,
                    g.name,
                    gpu_state(g.state)
                )
            })
        }
        (None, Some(id)) => out.emit(
            client.get(&["v1", "hosts", &id, "gpus"]).await?,
            render_gpus,
        ),
        (None, None) => anyhow::bail!("name a host: plinth hosts gpus ID"),
    }
}

pub async fn vgpus(client: &Client, out: &Output, id: String) -> anyhow::Result<()> {
    out.emit(
        client.get(&["v1", "hosts", &id, "vgpus"]).await?,
        render_vgpus,
    )
}

fn device_state(state: DeviceState) -> String {
    match state {
        DeviceState::Free => "free",
        DeviceState::Assigned => "assigned",
    }
    .to_string()
}

fn gpu_state(state: GpuState) -> &'static str {
    match state {
        GpuState::Free => "free",
        GpuState::Assigned => "assigned",
        GpuState::Sliced => "sliced",
    }
}

fn render_usb(list: &UsbDeviceList) -> String {
    if list.items.is_empty() {
        return "no USB devices\n".into();
    }
    let mut table = Table::new(&[
        "name",
        "device id",
        "usb id",
        "state",
        "vendor",
        "type",
        "serial",
        "instance",
        "usb",
        "tenant",
    ]);
    for d in &list.items {
        table.row(vec![
            d.name.clone(),
            d.id.clone(),
            d.usb_id.clone(),
            device_state(d.state),
            d.vendor.clone(),
            d.class.clone(),
            or_dash(d.serial.as_deref()),
            or_dash(d.instance_id.as_deref()),
            d.usb_version.clone(),
            or_dash(d.tenant_email.as_deref().or(d.tenant_id.as_deref())),
        ]);
    }
    table.render()
}

fn render_gpus(list: &GpuList) -> String {
    if list.items.is_empty() {
        return "no GPUs\n".into();
    }
    let mut table = Table::new(&[
        "name",
        "address",
        "pci id",
        "memory",
        "type",
        "state",
        "instance",
        "vgpu types",
    ]);
    for g in &list.items {
        let types: Vec<String> = g
            .vgpu_types
            .iter()
            .map(|t| format!("{} {} ({} free)", t.id, t.name, t.available))
            .collect();
        table.row(vec![
            g.name.clone(),
            g.address.clone(),
            g.pci_id.clone(),
            g.memory_bytes.map(size).unwrap_or_else(|| "-".into()),
            g.kind.as_str().to_string(),
            if g.console {
                format!("{} (host console)", gpu_state(g.state))
            } else {
                gpu_state(g.state).to_string()
            },
            or_dash(g.instance_id.as_deref()),
            or_dash(Some(&types.join("; "))),
        ]);
    }
    table.render()
}

fn render_vgpus(list: &VgpuList) -> String {
    if list.items.is_empty() {
        return "no vGPUs\n".into();
    }
    let mut table = Table::new(&[
        "name",
        "id",
        "kind",
        "type id",
        "parent gpu",
        "state",
        "instance",
        "tenant",
    ]);
    for v in &list.items {
        table.row(vec![
            v.type_name.clone(),
            v.id.clone(),
            match v.kind {
                VgpuKind::Mdev => "mdev",
                VgpuKind::SriovVf => "sriov-vf",
            }
            .to_string(),
            v.type_id.clone(),
            v.parent.clone(),
            device_state(v.state),
            or_dash(v.instance_id.as_deref()),
            or_dash(v.tenant_email.as_deref().or(v.tenant_id.as_deref())),
        ]);
    }
    table.render()
}
