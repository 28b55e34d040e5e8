-- Operations for everything long (issue 18): each operation's timestamped steps, when it
-- ended, an item progress beside the byte progress, and the request a resumed job needs.

-- One row per step, in order: what the work did, in words an operator (and, for its own
-- operations, a tenant) reads. Written in the transaction of the change it describes.
CREATE TABLE operation_steps (
    -- the steps go with an operation that is discarded (a create undone before it began)
    operation_id TEXT NOT NULL REFERENCES operations(id) ON DELETE CASCADE,
    -- 1, 2, ... per operation: the steps' order (two steps may share a millisecond)
    seq          BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    message      TEXT NOT NULL,
    PRIMARY KEY (operation_id, seq)
);

-- When the operation ended (succeeded or failed); NULL while running. Operations that
-- ended before this migration take their last update.
ALTER TABLE operations ADD COLUMN finished_at BIGINT;
UPDATE operations SET finished_at = updated_at WHERE status <> 'running';
-- Progress counted in items (a drain's moves done of its total); NULL where the work is
-- not counted in items. Byte progress stays in progress_bytes / total_bytes.
ALTER TABLE operations ADD COLUMN items_done BIGINT;
ALTER TABLE operations ADD COLUMN items_total BIGINT;
-- The request of a job that resumes from its row (a power action: {"action", "hard"}), JSON.
ALTER TABLE operations ADD COLUMN params TEXT;

-- GET /v1/operations: newest first, by (created_at, id); by target; by owner.
CREATE INDEX operations_created ON operations (created_at, id);
CREATE INDEX operations_target ON operations (target_id);
CREATE INDEX operations_owner ON operations (owner_tenant_id, created_at);
