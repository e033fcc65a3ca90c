-- Each event records the tenant it belongs to (NULL for the platform's own: providers,
-- routes, prices), so a tenant's audit log is one indexed filter, with no join through
-- other streams. Events written before this are given theirs from their streams.
ALTER TABLE events ADD COLUMN tenant_id uuid;

UPDATE events SET tenant_id = substr(stream, length('tenant:') + 1)::uuid
WHERE stream LIKE 'tenant:%';

UPDATE events SET tenant_id = api_keys.tenant_id
FROM api_keys
WHERE events.stream = 'key:' || api_keys.id::text;

UPDATE events SET tenant_id = substr(stream, length('budget:tenant:') + 1)::uuid
WHERE stream LIKE 'budget:tenant:%';

UPDATE events SET tenant_id = api_keys.tenant_id
FROM api_keys
WHERE events.stream = 'budget:key:' || api_keys.id::text;

CREATE INDEX events_tenant_position_idx ON events (tenant_id, position)
WHERE tenant_id IS NOT NULL;

-- Every event names who made it: an admin token, a JWT's subject, the bootstrap
-- token or a background job. (Rows from before are not re-checked.)
ALTER TABLE events ADD CONSTRAINT events_actor_named
CHECK (actor ~ '^(admin:bootstrap|token:.+|oidc:.+|system:.+)$') NOT VALID;
