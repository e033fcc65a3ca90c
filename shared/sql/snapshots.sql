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
SELECT coalesce(max(position), 0) AS position
FROM snapshots;

-- name: insert_snapshot
INSERT INTO snapshots (position, schema_version, data)
VALUES ($1, $2, $3)
ON CONFLICT (position) DO NOTHING;

-- name: prune_snapshots
DELETE FROM snapshots
WHERE position < (
    SELECT position FROM snapshots ORDER BY position DESC OFFSET $1 LIMIT 1
);
