-- Browser sessions: a cookie's secret exchanged for an API token (POST /v1/session). Only the
-- SHA-256 of the secret is kept. A session acts as its token: the role and tenant are the
-- token's, read through the join, so revoking or expiring the token ends its sessions too.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    secret_hash  TEXT NOT NULL,
    token_id     TEXT NOT NULL REFERENCES api_tokens(id),
    created_at   BIGINT NOT NULL,
    -- Last request seen (refreshed at most every few seconds); idle expiry counts from it.
    last_seen_at BIGINT NOT NULL,
    -- The absolute end: created_at plus the session TTL, never past the token's own expiry.
    expires_at   BIGINT NOT NULL,
    -- Set by DELETE /v1/session.
    ended_at     BIGINT
);

CREATE INDEX sessions_by_token ON sessions (token_id);
