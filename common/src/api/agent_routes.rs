//! The paths of the mTLS API between the coordinator and its agents, written once for both
//! sides: each route is an axum pattern (what the server routes) and, where the path holds an
//! id, a function that fills it in (what the client calls). A unit test holds the two together.

use crate::instance::InstanceAction;

/// The header a coordinator's job sends with every call: the epoch of its term of the job
/// lease; the agent refuses a lower one than it has seen with 409 `stale_epoch`.
pub const EPOCH_HEADER: &str = "x-plinth-epoch";

// The agent's API: served by the agent (agent/src/api), called by the coordinator.

pub const FACTS: &str = "/v1/facts";
pub const DEVICES: &str = "/v1/devices";
pub const USB_ATTACH: &str = "/v1/devices/usb/{device}/attach";
pub const USB_DETACH: &str = "/v1/devices/usb/{device}/detach";
pub const GPU_SLICE: &str = "/v1/devices/gpus/{address}/slice";
pub const GPU_RESTORE: &str = "/v1/devices/gpus/{address}/restore";
pub const METRICS_HISTORY: &str = "/v1/metrics/history";
pub const BMC_PROBE: &str = "/v1/bmc/probe";
pub const BMC_POWER: &str = "/v1/bmc/power";
pub const BMC_POWER_STATUS: &str = "/v1/bmc/power-status";
pub const BMC_FORGET: &str = "/v1/bmc/forget";
pub const BMC_INVENTORY: &str = "/v1/bmc/inventory";
pub const BMC_HEALTH: &str = "/v1/bmc/health";
pub const BMC_SOL_ACTIVATE: &str = "/v1/bmc/sol/activate";
pub const BMC_SOL_DEACTIVATE: &str = "/v1/bmc/sol/deactivate";
pub const BMC_SOL_IO: &str = "/v1/bmc/sol/io";
pub const INSTANCES: &str = "/v1/instances";
pub const INSTANCE: &str = "/v1/instances/{id}";
pub const INSTANCE_START: &str = "/v1/instances/{id}/start";
pub const INSTANCE_REBOOT: &str = "/v1/instances/{id}/reboot";
pub const INSTANCE_STOP: &str = "/v1/instances/{id}/stop";
pub const INSTANCE_EXPORT: &str = "/v1/instances/{id}/export";
pub const INSTANCE_PREPARE_MIGRATION: &str = "/v1/instances/{id}/prepare-migration";
pub const INSTANCE_MIGRATE: &str = "/v1/instances/{id}/migrate";
pub const INSTANCE_MIGRATION: &str = "/v1/instances/{id}/migration";
/// `POST`: attach a NIC ([`crate::api::AgentNic`]); `DELETE .../{mac}`: detach it.
pub const INSTANCE_NICS: &str = "/v1/instances/{id}/nics";
pub const INSTANCE_NIC: &str = "/v1/instances/{id}/nics/{mac}";

pub fn instance_nics(id: &str) -> String {
    INSTANCE_NICS.replace("{id}", id)
}

pub fn instance_nic(id: &str, mac: &str) -> String {
    INSTANCE_NIC.replace("{id}", id).replace("{mac}", mac)
}

pub fn usb_attach(device: &str) -> String {
    USB_ATTACH.replace("{device}", device)
}

pub fn usb_detach(device: &str) -> String {
    USB_DETACH.replace("{device}", device)
}

pub fn gpu_slice(address: &str) -> String {
    GPU_SLICE.replace("{address}", address)
}

pub fn gpu_restore(address: &str) -> String {
    GPU_RESTORE.replace("{address}", address)
}

pub fn instance(id: &str) -> String {
    INSTANCE.replace("{id}", id)
}

/// The route of `start`, `stop` or `reboot`.
pub fn instance_action(id: &str, action: InstanceAction) -> String {
    let pattern = match action {
        InstanceAction::Start => INSTANCE_START,
        InstanceAction::Reboot => INSTANCE_REBOOT,
        InstanceAction::Stop => INSTANCE_STOP,
    };
    pattern.replace("{id}", id)
}

pub fn instance_export(id: &str) -> String {
    INSTANCE_EXPORT.replace("{id}", id)
}

pub fn instance_prepare_migration(id: &str) -> String {
    INSTANCE_PREPARE_MIGRATION.replace("{id}", id)
}

pub fn instance_migrate(id: &str) -> String {
    INSTANCE_MIGRATE.replace("{id}", id)
}

pub fn instance_migration(id: &str) -> String {
    INSTANCE_MIGRATION.replace("{id}", id)
}

/// The coordinator's endpoints for agents: served by the coordinator (coordinator/src/api/
/// agent.rs, agent_images.rs), called by the agent with its host certificate.
pub mod coordinator {
    pub const HEARTBEAT: &str = "/v1/agent/hosts/{id}/heartbeat";
    pub const RENEW: &str = "/v1/agent/hosts/{id}/renew";
    /// `GET` fetches an image's content, `PUT` uploads an export's.
    pub const IMAGE_CONTENT: &str = "/v1/agent/images/{id}/content";

    pub fn heartbeat(host_id: &str) -> String {
        HEARTBEAT.replace("{id}", host_id)
    }

    pub fn renew(host_id: &str) -> String {
        RENEW.replace("{id}", host_id)
    }

    pub fn image_content(image_id: &str) -> String {
        IMAGE_CONTENT.replace("{id}", image_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each function's path is its pattern with the argument in the placeholder's place, and
    /// the pattern's other segments are untouched.
    #[test]
    fn paths_fill_their_patterns() {
        let cases: &[(&str, &str, String)] = &[
            ("usb attach", USB_ATTACH, usb_attach("X-1")),
            ("usb detach", USB_DETACH, usb_detach("X-1")),
            ("gpu slice", GPU_SLICE, gpu_slice("X-1")),
            ("gpu restore", GPU_RESTORE, gpu_restore("X-1")),
            ("instance", INSTANCE, instance("X-1")),
            (
                "start",
                INSTANCE_START,
                instance_action("X-1", InstanceAction::Start),
            ),
            (
                "reboot",
                INSTANCE_REBOOT,
                instance_action("X-1", InstanceAction::Reboot),
            ),
            (
                "stop",
                INSTANCE_STOP,
                instance_action("X-1", InstanceAction::Stop),
            ),
            ("export", INSTANCE_EXPORT, instance_export("X-1")),
            (
                "prepare migration",
                INSTANCE_PREPARE_MIGRATION,
                instance_prepare_migration("X-1"),
            ),
            ("migrate", INSTANCE_MIGRATE, instance_migrate("X-1")),
            ("migration", INSTANCE_MIGRATION, instance_migration("X-1")),
            (
                "heartbeat",
                coordinator::HEARTBEAT,
                coordinator::heartbeat("X-1"),
            ),
            ("renew", coordinator::RENEW, coordinator::renew("X-1")),
            (
                "image content",
                coordinator::IMAGE_CONTENT,
                coordinator::image_content("X-1"),
            ),
        ];
        for (label, pattern, path) in cases {
            let pattern_segments: Vec<&str> = pattern.split('/').collect();
            let path_segments: Vec<&str> = path.split('/').collect();
            assert_eq!(pattern_segments.len(), path_segments.len(), "{label}");
            let mut filled = 0;
            for (p, s) in pattern_segments.iter().zip(&path_segments) {
                if p.starts_with('{') && p.ends_with('}') {
                    assert_eq!(*s, "X-1", "{label}: {pattern} -> {path}");
                    filled += 1;
                } else {
                    assert_eq!(p, s, "{label}: {pattern} -> {path}");
                }
            }
            assert_eq!(filled, 1, "{label}: one placeholder, filled");
        }
    }

    /// An action's route ends in the action's own word (what the agent's router names).
    #[test]
    fn action_routes_end_in_the_action() {
        for action in [
            InstanceAction::Start,
            InstanceAction::Stop,
            InstanceAction::Reboot,
        ] {
            assert_eq!(
                instance_action("i", action),
                format!("/v1/instances/i/{action}"),
                "{action}"
            );
        }
    }
}
