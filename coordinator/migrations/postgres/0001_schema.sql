-- The store's schema on PostgreSQL: the state SQLite's migrations 0001–0017 reach, in one
-- step (no PostgreSQL region predates it). Same tables, columns and indexes; integers are
-- BIGINT (decoded as i64 on both backends), flags BIGINT 0/1 as on SQLite. Where SQLite orders
-- by rowid, the table has a `seq BIGSERIAL`; the change feed's ids are a BIGSERIAL taken
-- under the store's writer lock, so they follow commit order (db/dialect.rs).

CREATE TABLE clusters (
    id          TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    email      TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    role        TEXT NOT NULL,
    tenant_id   TEXT REFERENCES tenants(id),
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    created_by  TEXT NOT NULL,
    revoked_at  BIGINT
);
CREATE INDEX api_tokens_page ON api_tokens (created_at, id);

CREATE TABLE enrollment_tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    used_by_host TEXT,
    host_id      TEXT
);

CREATE TABLE hosts (
    id                     TEXT PRIMARY KEY,
    ip                     TEXT NOT NULL UNIQUE,
    hostname               TEXT NOT NULL,
    cluster_id             TEXT NOT NULL REFERENCES clusters(id),
    cpu_model              TEXT NOT NULL,
    total_cores            BIGINT NOT NULL,
    allocated_cores        BIGINT NOT NULL,
    total_memory_bytes     BIGINT NOT NULL,
    allocated_memory_bytes BIGINT NOT NULL,
    state                  TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    updated_at             BIGINT NOT NULL,
    search_text            TEXT NOT NULL,
    last_seen              BIGINT,
    offline_after          BIGINT,
    presence               TEXT NOT NULL DEFAULT 'offline',
    api_port               BIGINT,
    libvirt_uri            TEXT NOT NULL,
    hypervisor             TEXT NOT NULL,
    agent_version          TEXT NOT NULL,
    domains_json           TEXT NOT NULL,
    cert_expires_at        BIGINT,
    unknown_domains_json   TEXT NOT NULL DEFAULT '[]',
    migration_uri          TEXT,
    migrate_uri            TEXT,
    ipmi                   BIGINT NOT NULL DEFAULT 1,
    shared_storage         TEXT
);
CREATE INDEX hosts_cluster ON hosts (cluster_id);
CREATE INDEX hosts_state ON hosts (state);

CREATE TABLE audit_log (
    id     TEXT PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TABLE images (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    image_type           TEXT NOT NULL,
    iso_purpose          TEXT,
    visibility           TEXT NOT NULL,
    owner_tenant_id      TEXT REFERENCES tenants(id),
    note                 TEXT NOT NULL,
    os_type              TEXT,
    architecture         TEXT,
    platform             TEXT,
    version              TEXT,
    format               TEXT,
    virtualization       TEXT NOT NULL,
    size_bytes           BIGINT,
    virtual_size_bytes   BIGINT,
    target_size_gb       BIGINT,
    sha256               TEXT,
    expected_sha256      TEXT,
    source_url           TEXT,
    source_url_sealed    TEXT,
    blob_id              TEXT,
    status               TEXT NOT NULL,
    status_before_delete TEXT,
    failure_reason       TEXT,
    operation_id         TEXT,
    copied_from          TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    deleted_at           BIGINT,
    exported_from        TEXT,
    pending_blob_id      TEXT
);
CREATE INDEX images_owner ON images (owner_tenant_id);
CREATE INDEX images_page ON images (created_at DESC, id);
CREATE INDEX images_recycle_bin ON images (deleted_at DESC, id) WHERE deleted_at IS NOT NULL;

CREATE TABLE image_tags (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    PRIMARY KEY (image_id, tag)
);
CREATE INDEX image_tags_tag ON image_tags (tag);

CREATE TABLE operations (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    owner_tenant_id TEXT,
    status          TEXT NOT NULL,
    progress_bytes  BIGINT NOT NULL,
    total_bytes     BIGINT,
    error           TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT,
    items_done      BIGINT,
    items_total     BIGINT,
    params          TEXT
);
CREATE INDEX operations_status ON operations (status);
CREATE INDEX operations_created ON operations (created_at, id);
CREATE INDEX operations_target ON operations (target_id);
CREATE INDEX operations_owner ON operations (owner_tenant_id, created_at);

CREATE TABLE operation_steps (
    operation_id TEXT NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    message      TEXT NOT NULL,
    PRIMARY KEY (operation_id, seq)
);

CREATE TABLE instances (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    host_id               TEXT REFERENCES hosts(id),
    image_id              TEXT REFERENCES images(id),
    vcpus                 BIGINT NOT NULL,
    memory_bytes          BIGINT NOT NULL,
    disk_bytes            BIGINT NOT NULL,
    gpu_type              TEXT,
    devices_json          TEXT NOT NULL DEFAULT '[]',
    state                 TEXT NOT NULL,
    state_reason          TEXT,
    domain_uuid           TEXT,
    admin_password_sealed TEXT,
    operation_id          TEXT,
    search_text           TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    migrating_to          TEXT
);
CREATE INDEX instances_image ON instances (image_id);
CREATE INDEX instances_host ON instances (host_id);
CREATE INDEX instances_tenant ON instances (tenant_id);
CREATE INDEX instances_state ON instances (state);
CREATE INDEX instances_page ON instances (created_at DESC, id);

CREATE TABLE tenant_quotas (
    tenant_id         TEXT PRIMARY KEY REFERENCES tenants(id),
    cores             BIGINT,
    memory_bytes      BIGINT,
    instances         BIGINT,
    used_cores        BIGINT NOT NULL DEFAULT 0,
    used_memory_bytes BIGINT NOT NULL DEFAULT 0,
    used_instances    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE drains (
    operation_id TEXT PRIMARY KEY REFERENCES operations(id),
    host_id      TEXT NOT NULL REFERENCES hosts(id),
    parallelism  BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX drains_host ON drains (host_id, started_at);

CREATE TABLE moves (
    operation_id  TEXT NOT NULL REFERENCES operations(id),
    instance_id   TEXT NOT NULL,
    instance_name TEXT NOT NULL,
    action        TEXT NOT NULL,
    status        TEXT NOT NULL,
    source_host   TEXT NOT NULL,
    target_host   TEXT,
    pinned_target TEXT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    reason        TEXT,
    started_at    BIGINT,
    ended_at      BIGINT,
    libvirt_ms    BIGINT,
    total_ms      BIGINT,
    prepare_ms    BIGINT,
    PRIMARY KEY (operation_id, instance_id)
);
CREATE INDEX moves_instance ON moves (instance_id);

CREATE TABLE segments (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    ip_version   BIGINT NOT NULL,
    cidr         TEXT NOT NULL UNIQUE,
    gateway      TEXT NOT NULL,
    nic          TEXT NOT NULL,
    vlan         BIGINT,
    route_policy TEXT NOT NULL,
    routes_json  TEXT NOT NULL DEFAULT '[]',
    all_tenants  BIGINT NOT NULL,
    state        TEXT NOT NULL,
    allocated    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE segment_tenants (
    segment_id TEXT NOT NULL REFERENCES segments(id) ON DELETE CASCADE,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    PRIMARY KEY (segment_id, tenant_id)
);
CREATE INDEX segment_tenants_tenant ON segment_tenants (tenant_id);

CREATE TABLE eips (
    id          TEXT PRIMARY KEY,
    segment_id  TEXT NOT NULL REFERENCES segments(id),
    address     TEXT NOT NULL,
    address_key TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    instance_id TEXT REFERENCES instances(id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (segment_id, address_key)
);
CREATE INDEX eips_tenant ON eips (tenant_id);
CREATE INDEX eips_instance ON eips (instance_id);

CREATE TABLE baremetal (
    id                TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    ipmi_ip           TEXT NOT NULL UNIQUE,
    ipmi_username     TEXT NOT NULL,
    ipmi_password     TEXT NOT NULL,
    rack_location     TEXT NOT NULL,
    label             TEXT,
    state             TEXT NOT NULL,
    reason            TEXT,
    sn                TEXT,
    model             TEXT,
    manufacturer      TEXT,
    power_state       TEXT NOT NULL DEFAULT 'unknown',
    power_changed_at  BIGINT,
    power_checked_at  BIGINT,
    console_state     TEXT NOT NULL DEFAULT 'inactive',
    inventory_json    TEXT,
    agent_host_id     TEXT REFERENCES hosts(id) ON DELETE SET NULL,
    operation_id      TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX baremetal_tenant ON baremetal (tenant_id);
CREATE INDEX baremetal_agent ON baremetal (agent_host_id);
CREATE INDEX baremetal_state ON baremetal (state);
CREATE INDEX baremetal_page ON baremetal (created_at DESC, id);

CREATE TABLE baremetal_power_log (
    seq         BIGSERIAL PRIMARY KEY,
    server_id   TEXT NOT NULL REFERENCES baremetal(id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    power_state TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE INDEX baremetal_power_log_server ON baremetal_power_log (server_id, at);

CREATE TABLE host_devices (
    host_id        TEXT PRIMARY KEY REFERENCES hosts(id) ON DELETE CASCADE,
    inventory_json TEXT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE device_assignments (
    host_id     TEXT NOT NULL REFERENCES hosts(id),
    device      TEXT NOT NULL,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (host_id, device)
);
CREATE INDEX device_assignments_instance ON device_assignments (instance_id);

CREATE TABLE certificates (
    serial     TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    host_id    TEXT,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,
    reason     TEXT
);
CREATE INDEX certificates_host ON certificates (host_id);
CREATE INDEX certificates_host_page ON certificates (host_id, issued_at DESC, serial);

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    token_id     TEXT NOT NULL REFERENCES api_tokens(id),
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    ended_at     BIGINT
);
CREATE INDEX sessions_by_token ON sessions (token_id);

CREATE TABLE events (
    id          BIGSERIAL PRIMARY KEY,
    type        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    tenant_id   TEXT,
    data        TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX events_at ON events (at);
