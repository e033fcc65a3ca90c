-- Appending to the event log. Appends hold one transaction-scoped advisory
-- lock, so positions become visible in commit order.

-- name: lock_appends
SELECT pg_advisory_xact_lock($1);

-- name: stream_version
SELECT coalesce(max(stream_version), 0) AS version
FROM events
WHERE stream = $1;

-- name: insert_event
INSERT INTO events (stream, stream_version, type, data, actor, tenant_id, event_schema)
VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)
RETURNING position, created_at;

-- name: notify
SELECT pg_notify($1, $2);

-- name: replicas_behind
-- Live data plane replicas (a heartbeat within $2 seconds) that understand an event
-- schema older than $1.
SELECT replica, event_schema
FROM fleet_replicas
WHERE event_schema < $1 AND seen_at > now() - make_interval(secs => $2)
ORDER BY replica;
