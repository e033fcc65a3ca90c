-- Recorded spend, per scope ("tenant:<id>", "key:<id>") and UTC day.

-- name: spend_since
SELECT scope, sum(usd) AS usd
FROM spend
WHERE scope = ANY($1::text[]) AND day >= $2
GROUP BY scope;
