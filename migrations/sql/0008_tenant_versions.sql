-- A tenant's version is its stream's, policy changes included (what If-Match is
-- checked against); rows written before policy events counted are brought up to it.
UPDATE tenants
SET version = latest.stream_version
FROM (
    SELECT stream, max(stream_version) AS stream_version
    FROM events
    WHERE stream LIKE 'tenant:%'
    GROUP BY stream
) AS latest
WHERE latest.stream = 'tenant:' || tenants.id::text
  AND tenants.version < latest.stream_version;
