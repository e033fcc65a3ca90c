-- The event store and the projections the admin API reads.

CREATE TABLE events (
    position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream text NOT NULL,
    stream_version integer NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL,
    actor text NOT NULL,
    -- clock_timestamp(): the time of the append, not of the transaction's start
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT events_stream_version_key UNIQUE (stream, stream_version),
    CONSTRAINT events_stream_version_positive CHECK (stream_version > 0)
);

CREATE INDEX events_type_idx ON events (type, position);

CREATE TABLE tenants (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    deleted_at timestamptz
);

CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    key_prefix text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at);

CREATE TABLE providers (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    kind text NOT NULL,
    base_url text NOT NULL,
    api_key_ciphertext text,
    created_at timestamptz NOT NULL
);

CREATE TABLE routes (
    id uuid PRIMARY KEY,
    model text NOT NULL,
    provider_id uuid NOT NULL,
    upstream_model text NOT NULL,
    tenant_ids uuid[],
    created_at timestamptz NOT NULL,
    deleted_at timestamptz
);

CREATE INDEX routes_model_idx ON routes (model);
