-- Usage records and spend, written by the data planes in batches.

-- name: insert_usage
INSERT INTO usage (
    request_id, created_at, tenant_id, key_id, model, provider_id, upstream_model,
    prompt_tokens, completion_tokens, cost_usd, status, latency_ms, ttft_ms, stream,
    disconnected, error_code, deployment_id, attempts, operation, dialect
)
VALUES (
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20
)
ON CONFLICT DO NOTHING
RETURNING request_id;

-- name: add_spend
INSERT INTO spend (scope, day, usd)
VALUES ($1, $2, $3)
ON CONFLICT (scope, day) DO UPDATE SET usd = spend.usd + excluded.usd;

-- name: push_counters
INSERT INTO fleet_counters (scope, second, replica, requests, tokens)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::integer[], $5::bigint[])
ON CONFLICT (scope, second, replica) DO UPDATE SET
    requests = excluded.requests,
    tokens = excluded.tokens;

-- name: pull_counters
SELECT scope, second, sum(requests)::integer AS requests, sum(tokens)::bigint AS tokens
FROM fleet_counters
WHERE second > $1 AND replica <> $2
GROUP BY scope, second;

-- name: prune_counters
DELETE FROM fleet_counters
WHERE second < $1;

-- name: push_in_flight
INSERT INTO fleet_in_flight (scope, replica, in_flight, updated_at)
SELECT scope, $2::uuid, in_flight, now()
FROM unnest($1::text[], $3::integer[]) AS t(scope, in_flight)
ON CONFLICT (scope, replica) DO UPDATE SET
    in_flight = excluded.in_flight,
    updated_at = excluded.updated_at;

-- name: pull_in_flight
SELECT scope, sum(in_flight)::integer AS in_flight
FROM fleet_in_flight
WHERE replica <> $1 AND updated_at > now() - make_interval(secs => $2)
GROUP BY scope;

-- name: add_hourly
INSERT INTO usage_hourly (
    hour, tenant_id, key_id, model, requests, errors, prompt_tokens, completion_tokens, cost_usd
)
SELECT * FROM unnest(
    $1::timestamptz[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::bigint[],
    $7::bigint[], $8::bigint[], $9::double precision[]
)
ON CONFLICT (hour, tenant_id, key_id, model) DO UPDATE SET
    requests = usage_hourly.requests + excluded.requests,
    errors = usage_hourly.errors + excluded.errors,
    prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens,
    completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens,
    cost_usd = usage_hourly.cost_usd + excluded.cost_usd;

-- name: prune_in_flight
DELETE FROM fleet_in_flight
WHERE updated_at < now() - make_interval(secs => $1);
