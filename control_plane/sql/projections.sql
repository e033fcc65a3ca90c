-- Projections: the rows the admin API reads, written in the transaction that
-- appends the event they come from.

-- name: tenant_created
INSERT INTO tenants (id, name, version, created_at, updated_at)
VALUES ($1, $2, $3, $4, $4);

-- name: tenant_renamed
UPDATE tenants SET name = $2, version = $3, updated_at = $4
WHERE id = $1;

-- name: tenant_deleted
UPDATE tenants SET deleted_at = $2, version = $3, updated_at = $2
WHERE id = $1;

-- name: tenant_keys_revoked
UPDATE api_keys SET revoked_at = $2
WHERE tenant_id = $1 AND revoked_at IS NULL;

-- name: key_created
INSERT INTO api_keys (id, tenant_id, name, key_prefix, key_hash, created_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: key_revoked
UPDATE api_keys SET revoked_at = $2
WHERE id = $1 AND revoked_at IS NULL;

-- name: provider_created
INSERT INTO providers (id, name, kind, base_url, api_key_ciphertext, created_at)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: routes_replaced
UPDATE routes SET deleted_at = $2
WHERE model = $1 AND deleted_at IS NULL;

-- name: route_created
INSERT INTO routes (id, model, provider_id, upstream_model, tenant_ids, created_at)
VALUES ($1, $2, $3, $4, $5::uuid[], $6);

-- name: route_deleted
UPDATE routes SET deleted_at = $2
WHERE id = $1 AND deleted_at IS NULL;
