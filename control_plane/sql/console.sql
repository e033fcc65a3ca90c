-- The console's sessions (migrations/sql/0011_console.sql).

-- name: session_create
INSERT INTO console_sessions (id_hash, credential, identity, csrf, expires_at)
VALUES ($1, $2, $3, $4, $5);

-- name: session_load
SELECT credential, identity, csrf, expires_at
FROM console_sessions
WHERE id_hash = $1 AND expires_at > now();

-- name: session_end
DELETE FROM console_sessions WHERE id_hash = $1;

-- name: sessions_prune
DELETE FROM console_sessions WHERE expires_at <= now();

-- name: replicas
-- The data plane replicas with a heartbeat within $1 seconds, and the log's head.
SELECT
    r.replica,
    r.event_schema,
    r.position,
    r.blocked,
    r.seen_at,
    (SELECT coalesce(max(position), 0) FROM events) AS head
FROM fleet_replicas AS r
WHERE r.seen_at > now() - make_interval(secs => $1)
ORDER BY r.replica;
