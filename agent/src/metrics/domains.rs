//! `domains`: per-instance numbers from libvirt's bulk domain stats, with the labels that tie
//! a domain to plinth: its instance id (domains are named by it) and the tenant the
//! coordinator says owns it (`tenant_id` stays empty until the coordinator has said).

use super::deadline::{Outcome, Slot};
use crate::libvirt::{DomainStats, Libvirt};
use plinth_common::api::InstanceOwner;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::time::Instant;

/// libvirt's own deadline runs this much past the collector's, so that it is the collector's
/// deadline that fires, abandons the call and marks the collector stuck.
const LIBVIRT_GRACE: Duration = Duration::from_secs(1);

/// Instance id → tenant id, as the last heartbeat acknowledgement said.
#[derive(Debug, Clone, Default)]
pub struct Owners(Arc<RwLock<HashMap<String, String>>>);

impl Owners {
    pub fn replace(&self, owners: Vec<InstanceOwner>) {
        let map = owners
            .into_iter()
            .map(|o| (o.instance_id, o.tenant_id))
            .collect();
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = map;
    }

    fn tenant_of(&self, instance_id: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(instance_id)
            .cloned()
    }
}

/// A domain's numbers and the labels every one of its series carries.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainSample {
    pub stats: DomainStats,
    /// The domain name when it is a plinth instance id, else empty.
    pub instance_id: String,
    pub tenant_id: String,
}

/// Every active domain's stats, or what the slot made of a slow or failed call.
pub async fn collect(
    libvirt: &Libvirt,
    owners: &Owners,
    slot: &Slot,
    until: Instant,
) -> Outcome<Vec<DomainSample>> {
    let inner = until.saturating_duration_since(Instant::now()) + LIBVIRT_GRACE;
    let outcome = slot
        .run(until, |ticket| libvirt.domain_stats(inner, ticket))
        .await;
    match outcome {
        Outcome::Done(stats) => Outcome::Done(label(stats, owners)),
        Outcome::Failed(e) => Outcome::Failed(e),
        Outcome::TimedOut => Outcome::TimedOut,
        Outcome::Stuck => Outcome::Stuck,
    }
}

fn label(stats: Vec<DomainStats>, owners: &Owners) -> Vec<DomainSample> {
    stats
        .into_iter()
        .map(|stats| {
            let instance_id = if plinth_common::ids::is_id("inst", &stats.name) {
                stats.name.clone()
            } else {
                String::new()
            };
            let tenant_id = owners.tenant_of(&stats.name).unwrap_or_default();
            DomainSample {
                stats,
                instance_id,
                tenant_id,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_instances_and_tenants() {
        let owners = Owners::default();
        owners.replace(vec![InstanceOwner {
            instance_id: "inst-00000000000a".into(),
            tenant_id: "tenant-00000000000b".into(),
        }]);
        let named = |name: &str| DomainStats {
            name: name.into(),
            ..DomainStats::default()
        };
        let out = label(
            vec![named("inst-00000000000a"), named("test"), named("inst-0c")],
            &owners,
        );
        let labels: Vec<(&str, &str)> = out
            .iter()
            .map(|d| (d.instance_id.as_str(), d.tenant_id.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("inst-00000000000a", "tenant-00000000000b"),
                ("", ""),
                ("inst-0c", ""),
            ]
        );
    }
}
