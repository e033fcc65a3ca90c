-- Appending to the event log. Appends hold one transaction-scoped advisory
-- lock, so positions become visible in commit order.

-- name: lock_appends
SELECT pg_advisory_xact_lock($1);

-- name: stream_version
SELECT coalesce(max(stream_version), 0) AS version
FROM events
WHERE stream = $1;

-- name: insert_event
INSERT INTO events (stream, stream_version, type, data, actor, tenant_id)
VALUES ($1, $2, $3, $4::jsonb, $5, $6)
RETURNING position, created_at;

-- name: notify
SELECT pg_notify($1, $2);
