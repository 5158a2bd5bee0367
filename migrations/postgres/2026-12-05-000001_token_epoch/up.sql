-- Revocation (postgres; keep in step with the other backend): every agent token carries
-- the epoch it was issued under, and a token whose epoch is below the agent's is
-- refused. Deactivation, a role change, leaving a team and a password change bump it,
-- so tokens issued before stop working at once (docs/accounts.md).
ALTER TABLE agents ADD COLUMN token_epoch BIGINT NOT NULL DEFAULT 0;
