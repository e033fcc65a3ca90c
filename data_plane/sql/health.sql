-- Each replica's view of each deployment's health, for the admin API.

-- name: push_health
INSERT INTO deployment_health (
    deployment_id, replica, route_id, state, in_flight, ttft_ms, consecutive_failures,
    requests, failures, last_error, last_error_at, updated_at
)
SELECT d, $2::uuid, r, s, i, t, c, n, f, e, ea, now()
FROM unnest(
    $1::uuid[], $3::uuid[], $4::text[], $5::integer[], $6::double precision[], $7::integer[],
    $8::bigint[], $9::bigint[], $10::text[], $11::timestamptz[]
) AS h(d, r, s, i, t, c, n, f, e, ea)
ON CONFLICT (deployment_id, replica) DO UPDATE SET
    route_id = excluded.route_id,
    state = excluded.state,
    in_flight = excluded.in_flight,
    ttft_ms = excluded.ttft_ms,
    consecutive_failures = excluded.consecutive_failures,
    requests = excluded.requests,
    failures = excluded.failures,
    last_error = excluded.last_error,
    last_error_at = excluded.last_error_at,
    updated_at = excluded.updated_at;

-- name: prune_health
DELETE FROM deployment_health
WHERE updated_at < now() - make_interval(secs => $1);
