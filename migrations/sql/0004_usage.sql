-- Usage records, one per request, partitioned by day (the default partition
-- catches anything no daily partition covers, so a record is never refused);
-- spend per scope and UTC day, kept with them; fleet counters for limits.

CREATE TABLE usage (
    request_id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    tenant_id uuid NOT NULL,
    key_id uuid NOT NULL,
    model text NOT NULL,
    provider_id uuid,
    upstream_model text,
    prompt_tokens integer NOT NULL,
    completion_tokens integer NOT NULL,
    cost_usd double precision NOT NULL,
    status integer NOT NULL,
    latency_ms double precision NOT NULL,
    ttft_ms double precision,
    stream boolean NOT NULL,
    disconnected boolean NOT NULL,
    error_code text,
    PRIMARY KEY (request_id, created_at)
) PARTITION BY RANGE (created_at);

CREATE TABLE usage_default PARTITION OF usage DEFAULT;

CREATE INDEX usage_tenant_time_idx ON usage (tenant_id, created_at);

CREATE TABLE spend (
    scope text NOT NULL,
    day date NOT NULL,
    usd double precision NOT NULL,
    PRIMARY KEY (scope, day)
);

CREATE UNLOGGED TABLE fleet_counters (
    scope text NOT NULL,
    second bigint NOT NULL,
    replica uuid NOT NULL,
    requests integer NOT NULL,
    tokens bigint NOT NULL,
    PRIMARY KEY (scope, second, replica)
);

CREATE UNLOGGED TABLE fleet_in_flight (
    scope text NOT NULL,
    replica uuid NOT NULL,
    in_flight integer NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (scope, replica)
);
