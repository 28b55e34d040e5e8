-- The region's coordinators, each with a heartbeat on the database's clock, and the job lease:
-- one coordinator at a time runs the jobs, in a term numbered by the lease's epoch, and every
-- write its jobs make checks that epoch (a holder that lost the lease is fenced off).
CREATE TABLE coordinators (
    id           TEXT PRIMARY KEY,
    address      TEXT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);

CREATE TABLE job_lease (
    name       TEXT PRIMARY KEY,
    holder     TEXT,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
INSERT INTO job_lease (name, holder, epoch, expires_at) VALUES ('jobs', NULL, 0, 0);

-- Which term of the lease runs each job (set when its task starts: a job is claimed once per
-- term, so a holder picking up the store's jobs never starts one twice), and which
-- coordinator receives an upload (its peers leave it alone while it lives).
ALTER TABLE operations ADD COLUMN epoch BIGINT;
ALTER TABLE operations ADD COLUMN runner TEXT;

-- What a joining coordinator fetches (`plinth-coordinator join`): the CA's key and the master
-- key, sealed under a join key that only the operator saw; usable until it expires.
CREATE TABLE region_join (
    name       TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
