-- Host devices (SPEC §2 "USB", "GPU and vGPU"). Each agent reports its USB devices, GPUs and
-- vGPUs with a heartbeat when they change; the latest report is kept whole, as JSON.
CREATE TABLE host_devices (
    host_id        TEXT PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
    inventory_json TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- Devices held by instances. The key makes a device one instance's at a time; a deleted
-- instance lets go of its devices with it.
CREATE TABLE device_assignments (
    host_id     TEXT NOT NULL REFERENCES hosts(id),
    -- usb:<bus-port>, vgpu:<mdev uuid or VF address>, gpu:<PCI address>
    device      TEXT NOT NULL,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (host_id, device)
);
CREATE INDEX device_assignments_instance ON device_assignments (instance_id);
