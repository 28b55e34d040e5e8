-- Hardware monitoring (issue 24): each server's sensors as the last health sweep read them,
-- the health they sum up to, and where the sweep left off in the BMC's event log; the event
-- log's entries as plinth kept them (bounded per server, each entry once).

CREATE TABLE baremetal_health (
    server_id      TEXT PRIMARY KEY REFERENCES baremetal(id) ON DELETE CASCADE,
    -- 'ok', 'warning', 'critical' or 'unknown' (common/src/api/hardware.rs Health)
    health         TEXT NOT NULL,
    worst_sensor   TEXT,
    -- JSON array of Sensor as last read; kept when a later poll fails
    sensors_json   TEXT NOT NULL DEFAULT '[]',
    -- when the sensors were last read (Unix ms); NULL until read once
    read_at        BIGINT,
    -- why the last poll failed, in words; NULL when it worked
    error          TEXT,
    -- the SEL cursor: the last entry read (record id, BMC timestamp); NULL until read once
    sel_record_id  BIGINT,
    sel_timestamp  BIGINT,
    -- when the BMC's log was last found cleared or wrapped (Unix ms)
    sel_cleared_at BIGINT,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE baremetal_hw_events (
    -- arrival order: newest first is seq descending
    seq         INTEGER PRIMARY KEY,
    server_id   TEXT NOT NULL REFERENCES baremetal(id) ON DELETE CASCADE,
    -- what makes an entry the same one when the agent answers it again (hardware.rs)
    entry_key   TEXT NOT NULL,
    record_id   BIGINT NOT NULL,
    logged_at   TEXT,
    sensor      TEXT NOT NULL,
    sensor_type TEXT NOT NULL,
    direction   TEXT NOT NULL,
    description TEXT NOT NULL
);
CREATE UNIQUE INDEX baremetal_hw_events_entry ON baremetal_hw_events (server_id, entry_key);
CREATE INDEX baremetal_hw_events_server ON baremetal_hw_events (server_id, seq);
