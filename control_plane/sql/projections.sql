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
INSERT INTO providers (
    id, name, kind, base_url, api_key_ciphertext, options, version, created_at, updated_at
)
VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $8);

-- name: provider_changed
UPDATE providers SET name = $2, base_url = $3, api_key_ciphertext = $4, options = $5::jsonb,
    version = $6, updated_at = $7
WHERE id = $1;

-- name: provider_deleted
UPDATE providers SET deleted_at = $2, version = $3, updated_at = $2
WHERE id = $1;

-- name: replaced_route_deployments_dropped
-- Before `routes_replaced`: the deployments of the route a new one for its model replaces.
DELETE FROM route_deployments
WHERE route_id IN (
    SELECT routes.id FROM routes WHERE routes.model = $1 AND routes.deleted_at IS NULL
);

-- name: routes_replaced
UPDATE routes SET deleted_at = $2
WHERE model = $1 AND deleted_at IS NULL;

-- name: route_created
INSERT INTO routes (id, model, tenant_ids, strategy, settings, version, created_at, updated_at)
VALUES ($1, $2, $3::uuid[], $4, $5::jsonb, $6, $7, $7);

-- name: route_changed
UPDATE routes SET tenant_ids = $2::uuid[], strategy = $3, settings = $4::jsonb, version = $5,
    updated_at = $6
WHERE id = $1;

-- name: route_touched
-- A change to one of the route's deployments: the route's version covers them.
UPDATE routes SET version = $2, updated_at = $3
WHERE id = $1;

-- name: route_deleted
UPDATE routes SET deleted_at = $2, version = $3, updated_at = $2
WHERE id = $1 AND deleted_at IS NULL;

-- name: route_deployments_dropped
DELETE FROM route_deployments
WHERE route_id = $1;

-- name: deployment_added
INSERT INTO route_deployments (
    id, route_id, provider_id, upstream_model, weight, priority, rpm, tpm, timeouts,
    continuation, event_position, ordinal, created_at, updated_at
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $13);

-- name: deployment_changed
UPDATE route_deployments SET provider_id = $3, upstream_model = $4, weight = $5, priority = $6,
    rpm = $7, tpm = $8, timeouts = $9::jsonb, continuation = $10, updated_at = $11
WHERE id = $1 AND route_id = $2;

-- name: deployment_removed
DELETE FROM route_deployments
WHERE id = $1 AND route_id = $2;

-- name: policy_set
INSERT INTO policies (scope, id, policy, updated_at)
VALUES ($1, $2, $3::jsonb, $4)
ON CONFLICT (scope, id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at;

-- name: tenant_version
-- (a policy change is on the tenant's stream: its version, the ETag, follows)
UPDATE tenants SET version = $2
WHERE id = $1;

-- name: policy_cleared
DELETE FROM policies
WHERE scope = $1 AND id = $2;

-- name: tenant_policies_dropped
DELETE FROM policies
WHERE (scope = 'tenant' AND id = $1)
   OR (scope = 'key' AND id IN (SELECT api_keys.id FROM api_keys WHERE api_keys.tenant_id = $1));

-- name: price_set
INSERT INTO prices (model, input_per_million, output_per_million, updated_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (model) DO UPDATE SET
    input_per_million = excluded.input_per_million,
    output_per_million = excluded.output_per_million,
    updated_at = excluded.updated_at;

-- name: price_cleared
DELETE FROM prices
WHERE model = $1;

-- name: provider_price_set
UPDATE providers SET input_per_million = $2, output_per_million = $3, version = $4,
    updated_at = $5
WHERE id = $1;
