-- Usage records and spend, written by the data planes in batches.

-- name: insert_usage
INSERT INTO usage (
    request_id, created_at, tenant_id, key_id, model, provider_id, upstream_model,
    prompt_tokens, completion_tokens, cost_usd, status, latency_ms, ttft_ms, stream,
    disconnected, error_code
)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT DO NOTHING
RETURNING request_id;

-- name: add_spend
INSERT INTO spend (scope, day, usd)
VALUES ($1, $2, $3)
ON CONFLICT (scope, day) DO UPDATE SET usd = spend.usd + excluded.usd;
