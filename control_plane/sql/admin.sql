-- Reads for the admin API, from the projections and the event log.

-- name: list_tenants
SELECT id, name, version, created_at, updated_at
FROM tenants
WHERE deleted_at IS NULL
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
SELECT id, name, kind, base_url, api_key_ciphertext IS NOT NULL AS has_api_key,
       input_per_million, output_per_million, created_at
FROM providers
ORDER BY created_at, id;

-- name: get_provider
SELECT id, name, kind, base_url, api_key_ciphertext IS NOT NULL AS has_api_key,
       input_per_million, output_per_million, created_at
FROM providers
WHERE id = $1;

-- name: list_routes
SELECT id, model, provider_id, upstream_model, tenant_ids, created_at
FROM routes
WHERE deleted_at IS NULL
ORDER BY model;

-- name: get_route
SELECT id, model, provider_id, upstream_model, tenant_ids, created_at
FROM routes
WHERE id = $1 AND deleted_at IS NULL;

-- name: list_events
-- Newest first; every filter is optional (NULL: no filter).
SELECT position, stream, stream_version, type, data, actor, created_at
FROM events
WHERE ($1::text IS NULL OR stream = $1)
  AND ($2::text IS NULL OR type = $2)
  AND ($3::text IS NULL OR actor = $3)
  AND ($4::timestamptz IS NULL OR created_at >= $4)
  AND ($5::timestamptz IS NULL OR created_at < $5)
  AND ($6::bigint IS NULL OR position < $6)
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
