-- Reading the event log: both planes fold these rows with shared.reducer.apply.

-- name: events_between
SELECT position, stream, stream_version, type, data, actor, created_at, event_schema
FROM events
WHERE position > $1 AND position <= $2
ORDER BY position
LIMIT $3;

-- name: latest_position
SELECT coalesce(max(position), 0) AS position
FROM events;

-- name: event_identity
SELECT stream, stream_version
FROM events
WHERE position = $1;
