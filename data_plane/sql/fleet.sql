-- This replica's heartbeat: the event schema it understands (the control plane reads
-- it before appending, `control_plane/sql/store.sql` replicas_behind).

-- name: heartbeat
INSERT INTO fleet_replicas (replica, event_schema, seen_at)
VALUES ($1, $2, now())
ON CONFLICT (replica) DO UPDATE SET
    event_schema = excluded.event_schema,
    seen_at = excluded.seen_at;

-- name: prune_replicas
DELETE FROM fleet_replicas
WHERE seen_at < now() - make_interval(secs => $1);
