-- Routes own deployments; usage records name the deployment that answered and
-- how many attempts it took; replicas report each deployment's health.

-- A route's upstreams are its rows in route_deployments; new routes leave these two null.
ALTER TABLE routes ALTER COLUMN provider_id DROP NOT NULL;

ALTER TABLE routes ALTER COLUMN upstream_model DROP NOT NULL;

ALTER TABLE routes ADD COLUMN strategy text NOT NULL DEFAULT 'weighted';

ALTER TABLE routes ADD COLUMN settings jsonb NOT NULL DEFAULT '{}'::jsonb;

ALTER TABLE routes ADD COLUMN version integer NOT NULL DEFAULT 1;

ALTER TABLE routes ADD COLUMN updated_at timestamptz;

UPDATE routes SET updated_at = created_at;

ALTER TABLE routes ALTER COLUMN updated_at SET NOT NULL;

ALTER TABLE providers ADD COLUMN version integer NOT NULL DEFAULT 1;

ALTER TABLE providers ADD COLUMN updated_at timestamptz;

UPDATE providers SET updated_at = created_at;

ALTER TABLE providers ALTER COLUMN updated_at SET NOT NULL;

ALTER TABLE providers ADD COLUMN deleted_at timestamptz;

-- A version is its stream's: a provider's price events are on its stream too.
UPDATE providers SET version = coalesce(
    (SELECT max(e.stream_version) FROM events e WHERE e.stream = 'provider:' || providers.id::text),
    1
);

UPDATE routes SET version = coalesce(
    (SELECT max(e.stream_version) FROM events e WHERE e.stream = 'route:' || routes.id::text),
    1
);

CREATE TABLE route_deployments (
    id uuid PRIMARY KEY,
    route_id uuid NOT NULL,
    provider_id uuid NOT NULL,
    upstream_model text NOT NULL,
    weight integer NOT NULL,
    priority integer NOT NULL,
    rpm integer,
    tpm integer,
    timeouts jsonb NOT NULL,
    continuation boolean,
    -- a route's deployments in the order they were added: the position of the event
    -- that added them, then their place in it
    event_position bigint NOT NULL,
    ordinal integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE INDEX route_deployments_route_idx ON route_deployments (route_id);

CREATE INDEX route_deployments_provider_idx ON route_deployments (provider_id);

ALTER TABLE usage ADD COLUMN deployment_id uuid;

ALTER TABLE usage ADD COLUMN attempts integer NOT NULL DEFAULT 1;

CREATE UNLOGGED TABLE deployment_health (
    deployment_id uuid NOT NULL,
    replica uuid NOT NULL,
    route_id uuid NOT NULL,
    state text NOT NULL,
    in_flight integer NOT NULL,
    ttft_ms double precision,
    consecutive_failures integer NOT NULL,
    requests bigint NOT NULL,
    failures bigint NOT NULL,
    last_error text,
    last_error_at timestamptz,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (deployment_id, replica)
);

-- Routes made before deployments existed: one deployment each, whose id is the route's.
-- (`timeouts` '{}': the defaults.)
INSERT INTO route_deployments (
    id, route_id, provider_id, upstream_model, weight, priority, timeouts,
    event_position, ordinal, created_at, updated_at
)
SELECT id, id, provider_id, upstream_model, 1, 0, '{}'::jsonb, 0, 0, created_at, created_at
FROM routes
WHERE deleted_at IS NULL AND provider_id IS NOT NULL;
