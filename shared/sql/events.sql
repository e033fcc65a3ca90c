-- Reading the event log: both planes fold these rows with shared.reducer.apply.

-- name: events_after
SELECT position, stream, stream_version, type, data, actor, created_at
FROM events
WHERE position > $1
ORDER BY position
LIMIT $2;

-- name: latest_position
SELECT coalesce(max(position), 0) AS position
FROM events;
