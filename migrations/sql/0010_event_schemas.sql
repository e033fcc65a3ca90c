-- Rolling upgrades on one event log. Each event records the event schema it was
-- written with (`shared.events.EVENT_SCHEMAS`); a replica meeting a schema newer than
-- it understands stops applying there instead of skipping the event. Events written
-- before this are all of schema 1.
ALTER TABLE events ADD COLUMN event_schema integer NOT NULL DEFAULT 1;

-- Each data plane replica says, every few seconds, which event schema it understands;
-- the control plane refuses to append an event a live replica could not apply.
CREATE UNLOGGED TABLE fleet_replicas (
    replica uuid PRIMARY KEY,
    event_schema integer NOT NULL,
    seen_at timestamptz NOT NULL
);
