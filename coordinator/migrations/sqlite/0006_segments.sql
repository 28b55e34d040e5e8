-- External segments and the EIPs tenants allocate from them (SPEC §6).

CREATE TABLE segments (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    ip_version   BIGINT NOT NULL,
    -- canonical (host bits zero); overlap and the one-segment-per-family-on-a-NIC-and-VLAN rule
    -- are checked in the write transaction that adds or changes a segment (segments/validate.rs)
    cidr         TEXT NOT NULL UNIQUE,
    gateway      TEXT NOT NULL,
    nic          TEXT NOT NULL,
    -- NULL: untagged
    vlan         BIGINT,
    -- 'default', 'specified' or 'none'; routes_json is the list of 'specified'
    route_policy TEXT NOT NULL,
    routes_json  TEXT NOT NULL DEFAULT '[]',
    -- 1: every tenant may use it; 0: the tenants in segment_tenants
    all_tenants  BIGINT NOT NULL,
    state        TEXT NOT NULL,
    -- EIPs allocated from it, kept by the transactions that allocate and release: a full
    -- segment is known without counting its addresses
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
    -- no cascade: a segment with addresses allocated cannot be deleted
    segment_id  TEXT NOT NULL REFERENCES segments(id),
    address     TEXT NOT NULL,
    -- the address as fixed-width hex (8 digits IPv4, 32 IPv6): text order is numeric order, so
    -- allocation finds a free address by reading the taken ones after a random start in order
    address_key TEXT NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    -- an instance deleted while bound unbinds its EIPs
    instance_id TEXT REFERENCES instances(id) ON DELETE SET NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    -- no address twice: segments never overlap, so this makes every address unique
    UNIQUE (segment_id, address_key)
);
CREATE INDEX eips_tenant ON eips (tenant_id);
CREATE INDEX eips_instance ON eips (instance_id);
