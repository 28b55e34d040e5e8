-- Keyset paging (issue 18): every list reads the rows after the last one shown in its order,
-- sort key then id, so each list ordered by a column that has no index yet gets one in that
-- order (SQLite walks it from the cursor's place and stops after the page; no sort, no OFFSET).
-- Lists by a primary or unique key (clusters, tenants, segments, audit) need none; hosts are
-- listed from memory.
CREATE INDEX instances_page ON instances (created_at DESC, id);
CREATE INDEX images_page ON images (created_at DESC, id);
CREATE INDEX images_recycle_bin ON images (deleted_at DESC, id) WHERE deleted_at IS NOT NULL;
CREATE INDEX baremetal_page ON baremetal (created_at DESC, id);
CREATE INDEX api_tokens_page ON api_tokens (created_at, id);
CREATE INDEX certificates_host_page ON certificates (host_id, issued_at DESC, serial);
