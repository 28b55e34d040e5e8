-- Every certificate the region CA issues (agents' and the coordinator's own), so that only a
-- host's current, unrevoked certificates are accepted, and re-enrollment tokens bound to a host.

CREATE TABLE certificates (
    -- lowercase hex, as read from the certificate
    serial     TEXT PRIMARY KEY,
    -- 'agent', 'coordinator-server' or 'coordinator-client'
    kind       TEXT NOT NULL,
    -- the agent's host; no reference, so the record outlives a removed host
    host_id    TEXT,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    -- refused from this time on; later than the revocation itself while a renewal's grace runs
    revoked_at BIGINT,
    -- 'renewed', 're-enrolled', 'host removed', 'revoked by <actor>: ...', 'rotated'
    reason     TEXT
);
CREATE INDEX certificates_host ON certificates (host_id);

-- NULL: the token enrolls a new host; else only this host may use it (plinth hosts reenroll).
ALTER TABLE enrollment_tokens ADD COLUMN host_id TEXT;
