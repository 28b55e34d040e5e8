-- One content writer per image (issue 16): the key of the blob an upload, import, export or
-- copy is writing. Taken by a conditional update that succeeds only while it is NULL (so the
-- mark holds across coordinators sharing this database), cleared when the writer ends; a
-- crash leaves it set and the next start-up clears it and removes the key's file.
ALTER TABLE images ADD COLUMN pending_blob_id TEXT;
