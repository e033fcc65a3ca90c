-- This replica's heartbeat: the event schema it understands (the control plane reads
-- it before appending, `control_plane/sql/store.sql` replicas_behind), its snapshot's
-- position and what blocks it, if anything (the console's list of replicas).

-- name: heartbeat
INSERT INTO fleet_replicas (replica, event_schema, position, blocked, seen_at)
VALUES ($1, $2, $3, $4, now())
ON CONFLICT (replica) DO UPDATE SET
    event_schema = excluded.event_schema,
    position = excluded.position,
    blocked = excluded.blocked,
    seen_at = excluded.seen_at;

-- name: prune_replicas
DELETE FROM fleet_replicas
WHERE seen_at < now() - make_interval(secs => $1);
