-- Maintenance drains and live migrations (SPEC §2). A drain, or a manual migration, is an
-- operation; each instance it moves or leaves has a `moves` row, written before anything moves,
-- so a restarted coordinator knows what was in flight and where.

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
    -- no reference: the report outlives a deleted instance
    instance_id   TEXT NOT NULL,
    instance_name TEXT NOT NULL,
    -- migrate | release | stay
    action        TEXT NOT NULL,
    -- pending | migrating | moved | released | stayed
    status        TEXT NOT NULL,
    source_host   TEXT NOT NULL,
    -- the current or last attempt's target (its claim is held while `migrating`)
    target_host   TEXT,
    -- a manual migration's requested target: every attempt goes there
    pinned_target TEXT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    reason        TEXT,
    started_at    BIGINT,
    ended_at      BIGINT,
    libvirt_ms    BIGINT,
    total_ms      BIGINT,
    PRIMARY KEY (operation_id, instance_id)
);
CREATE INDEX moves_instance ON moves (instance_id);

-- What each agent reports for live migration (HostFacts).
ALTER TABLE hosts ADD COLUMN migration_uri TEXT;
ALTER TABLE hosts ADD COLUMN migrate_uri TEXT;

-- While `migrating`, the target host whose claim the instance holds besides its own host's.
ALTER TABLE instances ADD COLUMN migrating_to TEXT;
