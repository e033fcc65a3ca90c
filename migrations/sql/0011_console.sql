-- The console. A browser's session: only the SHA-256 of its cookie is kept, with the
-- identity it logs in as, the credential that identity came from (checked again on
-- every request, so a revoked token ends its sessions at once), its CSRF token and
-- when it ends. Logging out deletes the row.
CREATE TABLE console_sessions (
    id_hash bytea PRIMARY KEY,
    credential text NOT NULL,
    identity jsonb NOT NULL,
    csrf text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

-- Each replica's heartbeat also says how far its snapshot has come, and what stops it
-- (an event it cannot apply), for the console's list of replicas.
ALTER TABLE fleet_replicas ADD COLUMN position bigint NOT NULL DEFAULT 0;
ALTER TABLE fleet_replicas ADD COLUMN blocked text;
