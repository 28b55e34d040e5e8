-- The change feed (issue 18): one row per state change of a host, instance, image, bare-metal
-- server, segment, EIP or operation, written in the same transaction as the change. The id
-- is the feed's order (SQLite has one writer at a time, so ids follow commit order);
-- AUTOINCREMENT keeps ids from being reused after the backlog is pruned.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    -- The tenant the resource belongs to; NULL for admin-only resources (hosts).
    tenant_id TEXT,
    -- The new state or the changed fields, as a JSON object.
    data TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE INDEX events_at ON events (at);
