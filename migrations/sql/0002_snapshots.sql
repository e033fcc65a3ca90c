-- Serialized states of the world, so a process starts from the newest one plus
-- the events after it instead of folding the whole log.

CREATE TABLE snapshots (
    position bigint PRIMARY KEY,
    schema_version integer NOT NULL,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
