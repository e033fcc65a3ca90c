-- Reads for the admin API, from the projections and the event log.

-- name: list_tenants
SELECT id, name, version, created_at, updated_at
FROM tenants
WHERE deleted_at IS NULL
  AND ($3::uuid IS NULL OR id = $3)  -- a tenant-bound caller sees its own only
ORDER BY created_at, id
LIMIT $1 OFFSET $2;

-- name: get_tenant
SELECT id, name, version, created_at, updated_at
FROM tenants
WHERE id = $1 AND deleted_at IS NULL;

-- name: list_keys
SELECT id, tenant_id, name, key_prefix, created_at, revoked_at
FROM api_keys
WHERE tenant_id = $1
ORDER BY created_at, id;

-- name: get_key
SELECT id, tenant_id, name, key_prefix, created_at, revoked_at
FROM api_keys
WHERE id = $1;

-- name: list_providers
SELECT id, name, kind, base_url, options, api_key_ciphertext IS NOT NULL AS has_api_key,
       input_per_million, output_per_million, version, created_at, updated_at
FROM providers
WHERE deleted_at IS NULL
ORDER BY created_at, id;

-- name: get_provider
SELECT id, name, kind, base_url, options, api_key_ciphertext IS NOT NULL AS has_api_key,
       input_per_million, output_per_million, version, created_at, updated_at
FROM providers
WHERE id = $1 AND deleted_at IS NULL;

-- name: list_routes
SELECT id, model, tenant_ids, strategy, settings, version, created_at, updated_at
FROM routes
WHERE deleted_at IS NULL
ORDER BY model;

-- name: get_route
SELECT id, model, tenant_ids, strategy, settings, version, created_at, updated_at
FROM routes
WHERE id = $1 AND deleted_at IS NULL;

-- name: list_deployments
-- The deployments of the given routes, each route's in the order they were added.
SELECT id, route_id, provider_id, upstream_model, weight, priority, rpm, tpm, timeouts,
       continuation
FROM route_deployments
WHERE route_id = ANY($1::uuid[])
ORDER BY route_id, event_position, ordinal;

-- name: deployment_route
-- The route a deployment belongs to now (none once it is removed or its route deleted).
SELECT route_id
FROM route_deployments
WHERE id = $1;

-- name: deployment_health
-- What each data-plane replica last reported about a deployment, in the last $2 seconds.
SELECT replica, state, in_flight, ttft_ms, consecutive_failures, requests, failures,
       last_error, last_error_at, updated_at
FROM deployment_health
WHERE deployment_id = $1 AND updated_at >= now() - make_interval(secs => $2)
ORDER BY replica;

-- name: list_events
-- Newest first; every filter is optional (NULL: no filter).
SELECT position, stream, stream_version, type, data, actor, tenant_id, created_at
FROM events
WHERE ($1::text IS NULL OR stream = $1)
  AND ($2::text IS NULL OR type = $2)
  AND ($3::text IS NULL OR actor = $3)
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
  AND ($6::bigint IS NULL OR position < $6)
  AND ($8::uuid IS NULL OR tenant_id = $8)  -- a tenant-bound caller sees its own only
  AND ($9::uuid IS NULL OR tenant_id = $9)
ORDER BY position DESC
LIMIT $7;

-- name: get_policy
SELECT policy, updated_at
FROM policies
WHERE scope = $1 AND id = $2;

-- name: list_prices
SELECT model, input_per_million, output_per_million, updated_at
FROM prices
ORDER BY model;

-- name: get_price
SELECT model, input_per_million, output_per_million, updated_at
FROM prices
WHERE model = $1;

-- name: ping
SELECT 1 AS ok;

-- name: usage_report
SELECT date_trunc($1, hour, 'UTC') AS bucket, tenant_id, key_id, model,
       sum(requests)::bigint AS requests,
       sum(errors)::bigint AS errors,
       sum(prompt_tokens)::bigint AS prompt_tokens,
       sum(completion_tokens)::bigint AS completion_tokens,
       sum(cost_usd) AS cost_usd
FROM usage_hourly
WHERE hour >= $2 AND hour < $3
  AND ($4::uuid IS NULL OR tenant_id = $4)
  AND ($5::uuid IS NULL OR key_id = $5)
  AND ($6::text IS NULL OR model = $6)
  AND ($7::uuid IS NULL OR tenant_id = $7)  -- a tenant-bound caller sees its own only
GROUP BY 1, 2, 3, 4
ORDER BY 1;

-- name: usage_report_by_request
-- As usage_report, from the records themselves (the roll-ups have no operation or
-- dialect): $3 is the end of the hour `until` falls in, so whole hours count alike.
SELECT date_trunc($1, created_at, 'UTC') AS bucket, tenant_id, key_id, model, operation, dialect,
       count(*)::bigint AS requests,
       sum((status >= 400)::int)::bigint AS errors,
       sum(prompt_tokens)::bigint AS prompt_tokens,
       sum(completion_tokens)::bigint AS completion_tokens,
       sum(cost_usd) AS cost_usd
FROM usage
WHERE created_at >= $2 AND created_at < $3
  AND ($4::uuid IS NULL OR tenant_id = $4)
  AND ($5::uuid IS NULL OR key_id = $5)
  AND ($6::text IS NULL OR model = $6)
  AND ($7::text IS NULL OR operation = $7)
  AND ($8::text IS NULL OR dialect = $8)
  AND ($9::uuid IS NULL OR tenant_id = $9)  -- a tenant-bound caller sees its own only
GROUP BY 1, 2, 3, 4, 5, 6
ORDER BY 1;
