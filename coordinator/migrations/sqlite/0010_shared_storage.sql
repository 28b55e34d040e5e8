-- The shared storage a host keeps instance disks on, as its agent reports it: two hosts with
-- the same id see the same files, and a live migration between them copies no disk.
ALTER TABLE hosts ADD COLUMN shared_storage TEXT;
