-- Snapshots: the folded state at a position, so nobody folds the whole log.

-- name: snapshot_at_or_before
SELECT position, schema_version, data
FROM snapshots
WHERE position <= $1
ORDER BY position DESC
LIMIT 1;

-- name: insert_snapshot
INSERT INTO snapshots (position, schema_version, data)
VALUES ($1, $2, $3)
ON CONFLICT (position) DO NOTHING;

-- name: prune_snapshots
DELETE FROM snapshots
WHERE position < (
    SELECT position FROM snapshots ORDER BY position DESC OFFSET $1 LIMIT 1
);
