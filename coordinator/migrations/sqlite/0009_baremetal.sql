-- Bare-metal servers managed through their BMCs (SPEC §4), and which agents may reach BMCs.

-- 1: the agent speaks IPMI (its config `ipmi`, reported on every heartbeat)
ALTER TABLE hosts ADD COLUMN ipmi BIGINT NOT NULL DEFAULT 1;

CREATE TABLE baremetal (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    -- canonical text of the address; one server per BMC (a deleted one frees it)
    ipmi_ip           TEXT NOT NULL UNIQUE,
    ipmi_username     TEXT NOT NULL,
    -- AES-256-GCM under the coordinator's master key (secrets.rs); never returned
    ipmi_password     TEXT NOT NULL,
    rack_location     TEXT NOT NULL,
    label             TEXT,
    -- 'preparing', 'running' or 'failed' (common/src/baremetal.rs)
    state             TEXT NOT NULL,
    reason            TEXT,
    sn                TEXT,
    model             TEXT,
    manufacturer      TEXT,
    -- 'on', 'off' or 'unknown'
    power_state       TEXT NOT NULL DEFAULT 'unknown',
    power_changed_at  BIGINT,
    power_checked_at  BIGINT,
    -- 'inactive' or 'active' (SOL activated for a viewer)
    console_state     TEXT NOT NULL DEFAULT 'inactive',
    -- the Inventory (common/src/api/baremetal.rs) read from Redfish after preparation; NULL
    -- until read
    inventory_json    TEXT,
    -- the agent that speaks to this BMC; NULL until one is assigned, reassigned when it goes
    -- offline
    agent_host_id     TEXT REFERENCES hosts(id) ON DELETE SET NULL,
    -- the preparation's operation (GET /v1/operations/{id})
    operation_id      TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX baremetal_tenant ON baremetal (tenant_id);
CREATE INDEX baremetal_agent ON baremetal (agent_host_id);
CREATE INDEX baremetal_state ON baremetal (state);

-- Power state changes as plinth saw them: by the periodic sync, after an action, at prepare.
CREATE TABLE baremetal_power_log (
    server_id   TEXT NOT NULL REFERENCES baremetal(id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    power_state TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE INDEX baremetal_power_log_server ON baremetal_power_log (server_id, at);
