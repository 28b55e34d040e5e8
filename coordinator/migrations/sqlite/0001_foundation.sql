-- Foundation: clusters, tenants, API and enrollment tokens, hosts, audit log.
-- Portable SQL (SQLite now, PostgreSQL later): TEXT ids, BIGINT Unix milliseconds, no AUTOINCREMENT.

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

CREATE TABLE enrollment_tokens (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    description  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    used_by_host TEXT
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
    -- lowercase "id\nip\ncluster\ncpu model": what the fuzzy search matches (store/host_index.rs)
    search_text            TEXT NOT NULL,
    last_seen              BIGINT,
    -- last_seen + 3 heartbeat intervals: the agent is online while now < offline_after
    offline_after          BIGINT,
    -- presence last announced (audit log): 'online' or 'offline'; flipped by conditional updates
    -- so each change is reported exactly once, by the heartbeat or by the presence watcher
    presence               TEXT NOT NULL DEFAULT 'offline',
    api_port               BIGINT,
    libvirt_uri            TEXT NOT NULL,
    hypervisor             TEXT NOT NULL,
    agent_version          TEXT NOT NULL,
    domains_json           TEXT NOT NULL,
    cert_expires_at        BIGINT
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
