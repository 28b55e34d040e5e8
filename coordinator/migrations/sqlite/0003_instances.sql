-- Instances (SPEC §3) and tenant quotas. 0002 made a placeholder `instances` table that only
-- the image delete guard read and nothing wrote; it is replaced by the real one.

DROP INDEX instances_image;
DROP TABLE instances;

CREATE TABLE instances (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    kind                  TEXT NOT NULL,
    tenant_id             TEXT NOT NULL REFERENCES tenants(id),
    -- the host holding its claim; NULL while unplaced (failed create, drained while stopped)
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
    -- sealed (secrets.rs); kept so a create interrupted by a restart can finish
    admin_password_sealed TEXT,
    operation_id          TEXT,
    -- lowercase "name\nid\ndomain uuid\ntenant email\nimage id": what ?q= matches
    search_text           TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX instances_image ON instances (image_id);
CREATE INDEX instances_host ON instances (host_id);
-- covering: the quota check sums a tenant's claims without reading its rows
CREATE INDEX instances_tenant ON instances (tenant_id, vcpus, memory_bytes);
CREATE INDEX instances_state ON instances (state);

-- NULL limit: unlimited
CREATE TABLE tenant_quotas (
    tenant_id    TEXT PRIMARY KEY REFERENCES tenants(id),
    cores        BIGINT,
    memory_bytes BIGINT,
    instances    BIGINT
);

-- Domains the host runs that no instance accounts for (reconciliation reports, never deletes).
ALTER TABLE hosts ADD COLUMN unknown_domains_json TEXT NOT NULL DEFAULT '[]';

-- The instance an image was exported from (its agent uploads the content).
ALTER TABLE images ADD COLUMN exported_from TEXT;
