-- Usage rolled up by hour, tenant, key and model; kept in step with `usage` by
-- the transaction that writes each batch, so it is exact.

CREATE TABLE usage_hourly (
    hour timestamptz NOT NULL,
    tenant_id uuid NOT NULL,
    key_id uuid NOT NULL,
    model text NOT NULL,
    requests bigint NOT NULL,
    errors bigint NOT NULL,
    prompt_tokens bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    cost_usd double precision NOT NULL,
    PRIMARY KEY (hour, tenant_id, key_id, model)
);
