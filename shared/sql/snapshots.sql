-- Snapshots: the folded state at a position, so nobody folds the whole log.

-- name: snapshot_positions
SELECT position
FROM snapshots
WHERE position <= $1
ORDER BY position DESC
LIMIT $2;

-- name: snapshot_data
SELECT data
FROM snapshots
WHERE position = $1;

-- name: newest_snapshot_position
-- (of this schema version: after an upgrade, older ones do not count as written)
SELECT coalesce(max(position), 0) AS position
FROM snapshots
WHERE schema_version = $1;

-- name: insert_snapshot
-- (one at a position of an older schema version is replaced)
INSERT INTO snapshots (position, schema_version, data)
VALUES ($1, $2, $3)
ON CONFLICT (position) DO UPDATE SET schema_version = excluded.schema_version, data = excluded.data
WHERE snapshots.schema_version < excluded.schema_version;

-- name: prune_snapshots
DELETE FROM snapshots
WHERE position < (
    SELECT position FROM snapshots ORDER BY position DESC OFFSET $1 LIMIT 1
);
