//! Host devices: each agent's last reported inventory (kept whole), and which instance holds
//! which device. An assignment is a row keyed by host and device, written in the transaction
//! that adds the device to the instance's `devices`, so a device is one instance's at a time.
//! Placement reads the free vGPUs and passthrough GPUs of each host by type from the host
//! index, which is recounted after every change here.

use crate::db::{Store, StoreError};
use crate::instances::store::{release_claim, release_quota};
use plinth_common::api::{DeviceInventory, DeviceState, GpuKind, GpuState};
use std::collections::BTreeMap;

/// What a GPU request can be given on a host, in the order tried: free vGPUs whose type id or
/// name is `gpu_type`, then free passthrough GPUs whose model name or `vendor:device` is.
pub fn free_units(inv: &DeviceInventory, gpu_type: &str) -> Vec<String> {
    let vgpus = inv
        .vgpus
        .iter()
        .filter(|v| {
            v.state == DeviceState::Free && (v.type_id == gpu_type || v.type_name == gpu_type)
        })
        .map(|v| format!("vgpu:{}", v.id));
    let whole = inv
        .gpus
        .iter()
        .filter(|g| {
            g.kind == GpuKind::Passthrough
                && g.state == GpuState::Free
                && !g.console
                && (g.name == gpu_type || g.pci_id == gpu_type)
        })
        .map(|g| format!("gpu:{}", g.address));
    vgpus.chain(whole).collect()
}

/// How many of each type are free, under every name a request may use.
pub fn free_counts(inv: &DeviceInventory) -> Vec<(String, u32)> {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    for v in inv.vgpus.iter().filter(|v| v.state == DeviceState::Free) {
        *counts.entry(v.type_id.clone()).or_default() += 1;
        if v.type_name != v.type_id {
            *counts.entry(v.type_name.clone()).or_default() += 1;
        }
    }
    for g in &inv.gpus {
        if g.kind == GpuKind::Passthrough && g.state == GpuState::Free && !g.console {
            *counts.entry(g.name.clone()).or_default() += 1;
            *counts.entry(g.pci_id.clone()).or_default() += 1;
        }
    }
    counts.into_iter().collect()
}

/// Why a device could not be assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignRefused {
    NoInstance,
    /// The instance is on another host (or none).
    OtherHost(Option<String>),
    /// The device is held by this instance already.
    Taken(String),
}

/// Who holds a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub device: String,
    pub instance_id: String,
    pub tenant_id: String,
    pub tenant_email: String,
}

impl Store {
    /// Keeps `inventory` as what `host` has now.
    pub async fn record_devices(
        &self,
        host: &str,
        inventory: &DeviceInventory,
        now: i64,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(inventory)
            .map_err(|e| StoreError::Corrupt(format!("device inventory: {e}")))?;
        crate::db::query(
            "INSERT INTO host_devices (host_id, inventory_json, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (host_id) DO UPDATE SET inventory_json = $2, updated_at = $3",
        )
        .bind(host)
        .bind(json)
        .bind(now)
        .execute(self.pool())
        .await?;
        self.recount_gpus(host).await
    }

    /// Recounts the free GPUs of `host` for placement (here and in the other coordinators).
    pub async fn recount_gpus(&self, host: &str) -> Result<(), StoreError> {
        self.recount_gpus_quietly(host).await?;
        self.note_for_peers(crate::db::follow::Note::Gpus(host.to_string()));
        Ok(())
    }

    /// [`Store::recount_gpus`] here only (for a change another coordinator noted, and at start).
    pub(crate) async fn recount_gpus_quietly(&self, host: &str) -> Result<(), StoreError> {
        let counts = free_counts(&self.host_devices(host).await?);
        self.host_index().update(host, |e| e.free_gpus = counts);
        Ok(())
    }

    /// Counts every reported host's free GPUs (at start).
    pub(crate) async fn load_gpu_index(&self) -> Result<(), StoreError> {
        let hosts: Vec<String> = crate::db::query("SELECT host_id FROM host_devices")
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| r.try_get("host_id"))
            .collect::<Result<_, _>>()?;
        for host in hosts {
            self.recount_gpus_quietly(&host).await?;
        }
        Ok(())
    }

    /// Gives `instance` (placed on `host`) a free vGPU or GPU of `gpu_type`: the first free one
    /// in [`free_units`] order that no instance holds, taken in one write transaction. `None`
    /// when none is left.
    pub async fn claim_gpu(
        &self,
        host: &str,
        instance: &str,
        gpu_type: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let units = free_units(&self.host_devices(host).await?, gpu_type);
        for unit in units {
            match self.assign_device(host, &unit, instance, now).await? {
                Ok(()) => return Ok(Some(unit)),
                // Taken meanwhile: the next.
                Err(AssignRefused::Taken(_)) => continue,
                Err(_) => return Ok(None),
            }
        }
        Ok(None)
    }

    /// Undoes a create whose GPU could not be had: the claim and quota given back, the
    /// instance, its assignments and its operation removed, as if it had never been asked.
    pub async fn discard_new_instance(&self, id: &str, op_id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let released = release_claim(&mut tx, id).await?;
        release_quota(&mut tx, id).await?;
        crate::instances::store::state::record_removed(&mut tx, id).await?;
        for sql in [
            "DELETE FROM device_assignments WHERE instance_id = $1",
            "DELETE FROM instances WHERE id = $1",
        ] {
            crate::db::query(sql).bind(id).execute(&mut tx).await?;
        }
        crate::jobs::operations::discard_operation(&mut tx, op_id).await?;
        tx.commit().await?;
        self.events_committed();
        if let Some((host, c, m)) = released {
            self.set_allocation(&host, c, m);
            self.recount_gpus(&host).await?;
        }
        Ok(())
    }

    /// Undoes [`Store::place_instance`] for an instance whose GPU could not be had there: the
    /// claim given back, the instance back in `state` with no job, the operation removed.
    pub async fn undo_placement(
        &self,
        id: &str,
        op_id: &str,
        state: plinth_common::instance::InstanceState,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let released = release_claim(&mut tx, id).await?;
        crate::instances::store::state::release_to(&mut tx, id, state, now).await?;
        crate::jobs::operations::discard_operation(&mut tx, op_id).await?;
        tx.commit().await?;
        self.events_committed();
        if let Some((host, c, m)) = released {
            self.set_allocation(&host, c, m);
        }
        Ok(())
    }

    /// Frees every device `instance` holds (a create that failed and left its host); answers
    /// the hosts whose devices were freed.
    pub async fn release_devices(&self, instance: &str, now: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let hosts: Vec<String> = crate::db::query(
            "DELETE FROM device_assignments WHERE instance_id = $1 RETURNING host_id",
        )
        .bind(instance)
        .fetch_all(&mut tx)
        .await?
        .iter()
        .map(|r| r.try_get("host_id"))
        .collect::<Result<_, _>>()?;
        let cleared = crate::db::query(
            "UPDATE instances SET devices_json = '[]', updated_at = $1 \
             WHERE id = $2 AND devices_json <> '[]'",
        )
        .bind(now)
        .bind(instance)
        .execute(&mut tx)
        .await?
        .rows_affected();
        if cleared == 1 {
            let data = serde_json::json!({ "devices": [] });
            crate::events::record_change(
                &mut tx,
                crate::events::EventType::Instance,
                instance,
                data,
            )
            .await?;
        }
        tx.commit().await?;
        self.events_committed();
        for host in hosts {
            self.recount_gpus(&host).await?;
        }
        Ok(())
    }

    /// What `host` last reported, as reported (empty before its first report).
    pub async fn reported_devices(&self, host: &str) -> Result<DeviceInventory, StoreError> {
        let row = crate::db::query("SELECT inventory_json FROM host_devices WHERE host_id = $1")
            .bind(host)
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => serde_json::from_str(r.try_get("inventory_json")?)
                .map_err(|e| StoreError::Corrupt(format!("device inventory: {e}"))),
            None => Ok(DeviceInventory::default()),
        }
    }

    /// Every device of `host` held by an instance, with the instance's tenant.
    pub async fn device_holders(&self, host: &str) -> Result<Vec<Holder>, StoreError> {
        let rows = crate::db::query(
            "SELECT d.device, d.instance_id, i.tenant_id, t.email FROM device_assignments d \
             JOIN instances i ON i.id = d.instance_id JOIN tenants t ON t.id = i.tenant_id \
             WHERE d.host_id = $1 ORDER BY d.device",
        )
        .bind(host)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Holder {
                    device: r.try_get("device")?,
                    instance_id: r.try_get("instance_id")?,
                    tenant_id: r.try_get("tenant_id")?,
                    tenant_email: r.try_get("email")?,
                })
            })
            .collect()
    }

    /// The host's devices as the API shows them: the agent's report, with the instance and
    /// tenant holding each device from the assignments.
    pub async fn host_devices(&self, host: &str) -> Result<DeviceInventory, StoreError> {
        let mut inv = self.reported_devices(host).await?;
        let holders = self.device_holders(host).await?;
        // (instance, tenant, tenant email) of the assignment holding `key`, if any.
        let held = |key: String| {
            holders.iter().find(|h| h.device == key).map(|h| {
                (
                    Some(h.instance_id.clone()),
                    Some(h.tenant_id.clone()),
                    Some(h.tenant_email.clone()),
                )
            })
        };
        for u in &mut inv.usb {
            if let Some(holder) = held(format!("usb:{}", u.id)) {
                u.state = DeviceState::Assigned;
                (u.instance_id, u.tenant_id, u.tenant_email) = holder;
            }
        }
        for v in &mut inv.vgpus {
            if let Some(holder) = held(format!("vgpu:{}", v.id)) {
                v.state = DeviceState::Assigned;
                (v.instance_id, v.tenant_id, v.tenant_email) = holder;
            }
        }
        for g in &mut inv.gpus {
            if let Some(holder) = held(format!("gpu:{}", g.address)) {
                g.state = GpuState::Assigned;
                (g.instance_id, g.tenant_id, g.tenant_email) = holder;
            }
        }
        Ok(inv)
    }

    /// Gives `device` of `host` to `instance` and adds it to the instance's `devices`, in one
    /// transaction; refused when the instance is not on that host or the device is held.
    pub async fn assign_device(
        &self,
        host: &str,
        device: &str,
        instance: &str,
        now: i64,
    ) -> Result<Result<(), AssignRefused>, StoreError> {
        let mut tx = self.write().await?;
        let Some(row) =
            crate::db::query("SELECT host_id, devices_json FROM instances WHERE id = $1")
                .bind(instance)
                .fetch_optional(&mut tx)
                .await?
        else {
            return Ok(Err(AssignRefused::NoInstance));
        };
        let placed: Option<String> = row.try_get("host_id")?;
        if placed.as_deref() != Some(host) {
            return Ok(Err(AssignRefused::OtherHost(placed)));
        }
        if let Some(holder) = crate::db::query(
            "SELECT instance_id FROM device_assignments WHERE host_id = $1 AND device = $2",
        )
        .bind(host)
        .bind(device)
        .fetch_optional(&mut tx)
        .await?
        {
            return Ok(Err(AssignRefused::Taken(holder.try_get("instance_id")?)));
        }
        crate::db::query(
            "INSERT INTO device_assignments (host_id, device, instance_id, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(host)
        .bind(device)
        .bind(instance)
        .bind(now)
        .execute(&mut tx)
        .await?;
        let mut devices = parse_devices(row.try_get("devices_json")?)?;
        devices.push(device.to_string());
        write_devices(&mut tx, instance, &devices, now).await?;
        tx.commit().await?;
        self.events_committed();
        if !device.starts_with("usb:") {
            self.recount_gpus(host).await?;
        }
        Ok(Ok(()))
    }

    /// Takes `device` of `host` back from `instance`; `false` when it did not hold it.
    pub async fn unassign_device(
        &self,
        host: &str,
        device: &str,
        instance: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let gone = crate::db::query(
            "DELETE FROM device_assignments WHERE host_id = $1 AND device = $2 AND instance_id = $3",
        )
        .bind(host)
        .bind(device)
        .bind(instance)
        .execute(&mut tx)
        .await?
        .rows_affected()
            == 1;
        if let Some(row) = crate::db::query("SELECT devices_json FROM instances WHERE id = $1")
            .bind(instance)
            .fetch_optional(&mut tx)
            .await?
        {
            let mut devices = parse_devices(row.try_get("devices_json")?)?;
            let before = devices.len();
            devices.retain(|d| d != device);
            if devices.len() != before {
                write_devices(&mut tx, instance, &devices, now).await?;
            }
        }
        tx.commit().await?;
        self.events_committed();
        if gone && !device.starts_with("usb:") {
            self.recount_gpus(host).await?;
        }
        Ok(gone)
    }

    /// The instance holding `device` of `host`, if one does.
    pub async fn device_holder(
        &self,
        host: &str,
        device: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = crate::db::query(
            "SELECT instance_id FROM device_assignments WHERE host_id = $1 AND device = $2",
        )
        .bind(host)
        .bind(device)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|r| r.try_get("instance_id")).transpose()?)
    }
}

fn parse_devices(json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("instance devices: {e}")))
}

async fn write_devices(
    conn: &mut crate::db::Tx,
    instance: &str,
    devices: &[String],
    now: i64,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(devices)
        .map_err(|e| StoreError::Corrupt(format!("instance devices: {e}")))?;
    crate::db::query("UPDATE instances SET devices_json = $1, updated_at = $2 WHERE id = $3")
        .bind(json)
        .bind(now)
        .bind(instance)
        .execute(&mut *conn)
        .await?;
    let data = serde_json::json!({ "devices": devices });
    crate::events::record_change(conn, crate::events::EventType::Instance, instance, data).await
}

#[cfg(test)]
mod tests {
    use super::*;

    use plinth_common::api::{Gpu, UsbDevice, Vgpu, VgpuKind};

    fn stick() -> UsbDevice {
        UsbDevice {
            id: "1-2".into(),
            usb_id: "0781:5567".into(),
            name: "SanDisk Cruzer Blade".into(),
            vendor: "SanDisk".into(),
            product: "Cruzer Blade".into(),
            class: "mass storage".into(),
            serial: None,
            usb_version: "2.00".into(),
            bus: 1,
            devnum: 3,
            state: DeviceState::Free,
            instance_id: None,
            tenant_id: None,
            tenant_email: None,
        }
    }

    async fn instance(store: &Store, id: &str, host: &str) -> Result<(), StoreError> {
        crate::db::query(
            "INSERT INTO instances (id, name, kind, tenant_id, host_id, vcpus, memory_bytes, \
                disk_bytes, state, search_text, created_at, updated_at) \
             VALUES ($1, 'vm', 'vm', 'ten-1', $2, 1, 1, 1, 'running', '', 0, 0)",
        )
        .bind(id)
        .bind(host)
        .execute(store.pool())
        .await?;
        Ok(())
    }

    crate::db::store_test! {
    /// A device is one instance's at a time, only an instance on its host gets it, and the
    /// instance's `devices` follows; the API view names instance and tenant.
    async fn one_instance_per_device_on_its_host(store, _dir) -> Result<(), StoreError> {
        crate::db::test_hosts(&store, 2, 4, 1 << 30).await?;
        store.create_tenant("ten-1", "a@x", "A").await?;
        instance(&store, "inst-1", "host-1").await?;
        instance(&store, "inst-2", "host-1").await?;
        instance(&store, "inst-3", "host-2").await?;
        let inv = DeviceInventory {
            usb: vec![stick()],
            ..Default::default()
        };
        store.record_devices("host-1", &inv, 5).await?;
        assert_eq!(store.reported_devices("host-1").await?, inv);
        assert_eq!(
            store.reported_devices("host-2").await?,
            DeviceInventory::default()
        );

        let cases = [
            ("no instance", "inst-9", Err(AssignRefused::NoInstance)),
            (
                "other host",
                "inst-3",
                Err(AssignRefused::OtherHost(Some("host-2".into()))),
            ),
            ("free", "inst-1", Ok(())),
            (
                "taken",
                "inst-2",
                Err(AssignRefused::Taken("inst-1".into())),
            ),
        ];
        for (label, inst, want) in cases {
            assert_eq!(
                store.assign_device("host-1", "usb:1-2", inst, 6).await?,
                want,
                "{label}"
            );
        }
        let shown = store.host_devices("host-1").await?.usb.remove(0);
        assert_eq!(shown.state, DeviceState::Assigned);
        assert_eq!(shown.instance_id.as_deref(), Some("inst-1"));
        assert_eq!(shown.tenant_email.as_deref(), Some("a@x"));
        let devices = store.instance("inst-1").await?.map(|r| r.instance.devices);
        assert_eq!(devices, Some(vec!["usb:1-2".to_string()]));

        assert!(
            !store
                .unassign_device("host-1", "usb:1-2", "inst-2", 7)
                .await?
        );
        assert!(
            store
                .unassign_device("host-1", "usb:1-2", "inst-1", 7)
                .await?
        );
        assert_eq!(store.device_holder("host-1", "usb:1-2").await?, None);
        let devices = store.instance("inst-1").await?.map(|r| r.instance.devices);
        assert_eq!(devices, Some(vec![]));
        assert_eq!(
            store.host_devices("host-1").await?.usb[0].state,
            DeviceState::Free
        );
        Ok(())
    }
    }

    fn vgpu(id: &str) -> Vgpu {
        Vgpu {
            id: id.into(),
            kind: VgpuKind::Mdev,
            type_id: "nvidia-46".into(),
            type_name: "GRID P40-1Q".into(),
            parent: "0000:41:00.0".into(),
            state: DeviceState::Free,
            instance_id: None,
            tenant_id: None,
            tenant_email: None,
        }
    }

    crate::db::store_test! {
    /// Placement sees the free vGPUs and passthrough GPUs of a host under every name a
    /// request may use; a claim takes one, and the counts follow.
    async fn free_gpus_are_counted_and_claimed(store, _dir) -> Result<(), StoreError> {
        crate::db::test_hosts(&store, 2, 4, 1 << 30).await?;
        store.create_tenant("ten-1", "a@x", "A").await?;
        instance(&store, "inst-1", "host-1").await?;
        instance(&store, "inst-2", "host-1").await?;
        instance(&store, "inst-3", "host-1").await?;
        let t4 = Gpu {
            address: "0000:3b:00.0".into(),
            name: "NVIDIA Tesla T4".into(),
            pci_id: "10de:1eb8".into(),
            vendor: "NVIDIA".into(),
            memory_bytes: Some(16 << 30),
            kind: GpuKind::Passthrough,
            state: GpuState::Free,
            vgpu_types: vec![],
            driver: Some("vfio-pci".into()),
            console: false,
            instance_id: None,
            tenant_id: None,
            tenant_email: None,
        };
        let bmc = Gpu {
            address: "0000:02:00.0".into(),
            name: "ASPEED Graphics Family (BMC)".into(),
            pci_id: "1a03:2000".into(),
            console: true,
            kind: GpuKind::Passthrough,
            memory_bytes: None,
            vgpu_types: vec![],
            ..t4.clone()
        };
        let inv = DeviceInventory {
            usb: vec![],
            gpus: vec![bmc, t4],
            vgpus: vec![
                vgpu("aaaaaaaa-0000-4000-8000-000000000001"),
                vgpu("aaaaaaaa-0000-4000-8000-000000000002"),
            ],
        };
        store.record_devices("host-1", &inv, 1).await?;
        let free = |store: &Store| -> Vec<(String, u32)> {
            store.placement_candidates(0)[0].free_gpus.clone()
        };
        let want = |n: u32, t4: u32| -> Vec<(String, u32)> {
            let mut v = vec![
                ("10de:1eb8".to_string(), t4),
                ("GRID P40-1Q".to_string(), n),
                ("NVIDIA Tesla T4".to_string(), t4),
                ("nvidia-46".to_string(), n),
            ];
            v.retain(|(_, c)| *c > 0);
            v
        };
        assert_eq!(free(&store), want(2, 1));
        assert!(store.placement_candidates(0)[1].free_gpus.is_empty());

        let got = store
            .claim_gpu("host-1", "inst-1", "GRID P40-1Q", 2)
            .await?;
        assert_eq!(
            got.as_deref(),
            Some("vgpu:aaaaaaaa-0000-4000-8000-000000000001")
        );
        assert_eq!(free(&store), want(1, 1));
        let got = store.claim_gpu("host-1", "inst-2", "nvidia-46", 2).await?;
        assert_eq!(
            got.as_deref(),
            Some("vgpu:aaaaaaaa-0000-4000-8000-000000000002")
        );
        assert_eq!(
            store.claim_gpu("host-1", "inst-3", "nvidia-46", 2).await?,
            None
        );
        let got = store.claim_gpu("host-1", "inst-3", "10de:1eb8", 2).await?;
        assert_eq!(got.as_deref(), Some("gpu:0000:3b:00.0"));
        assert_eq!(free(&store), want(0, 0));
        let devices = store.instance("inst-3").await?.map(|r| r.instance.devices);
        assert_eq!(devices, Some(vec!["gpu:0000:3b:00.0".to_string()]));

        store.release_devices("inst-1", 3).await?;
        assert_eq!(free(&store), want(1, 0));
        Ok(())
    }
    }
}
