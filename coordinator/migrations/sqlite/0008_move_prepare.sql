-- How long the target took to prepare a moved instance's files (image fetch, overlay, seed);
-- it happens before the migration's turn, so it is not part of total_ms.
ALTER TABLE moves ADD COLUMN prepare_ms BIGINT;
