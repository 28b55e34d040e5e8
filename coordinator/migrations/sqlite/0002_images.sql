-- Image repository (SPEC §5), long-running operations (SPEC §7), and the first columns of
-- instances, so that deleting an image can refuse while an instance uses it.

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
    -- what the import must match (given by the user) until verified, then what it has
    sha256               TEXT,
    expected_sha256      TEXT,
    -- shown with the password masked; the full URL is sealed (seal.rs) for resuming
    source_url           TEXT,
    source_url_sealed    TEXT,
    -- storage key of the content; made by plinth, never from input
    blob_id              TEXT,
    status               TEXT NOT NULL,
    status_before_delete TEXT,
    failure_reason       TEXT,
    operation_id         TEXT,
    -- for a base image made by copy-to-base: the custom image it was copied from
    copied_from          TEXT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    deleted_at           BIGINT
);
CREATE INDEX images_owner ON images (owner_tenant_id);

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
    updated_at      BIGINT NOT NULL
);
CREATE INDEX operations_status ON operations (status);

CREATE TABLE instances (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    image_id   TEXT REFERENCES images(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX instances_image ON instances (image_id);
