-- Lead routing (PostgreSQL). Keep in step with migrations/sqlite/ (same names, same meaning).
-- Times are UTC epoch milliseconds; durations are milliseconds.

-- Per-team routing settings (docs/routing.md). `routing_lock` is bumped by every
-- routing decision of the team: the UPDATE takes the team's row lock, so decisions of
-- one team (round-robin cursor, capacity counts, claims) are serialised across nodes.
ALTER TABLE teams ADD COLUMN routing_mode TEXT NOT NULL DEFAULT 'round_robin';
ALTER TABLE teams ADD COLUMN default_capacity INTEGER NOT NULL DEFAULT 5;
ALTER TABLE teams ADD COLUMN offer_timeout_ms BIGINT NOT NULL DEFAULT 30000;
ALTER TABLE teams ADD COLUMN escalation TEXT NOT NULL DEFAULT 'widen,alert_leads,round_robin';
ALTER TABLE teams ADD COLUMN offline_grace_ms BIGINT;
ALTER TABLE teams ADD COLUMN requeue_delay_ms BIGINT NOT NULL DEFAULT 300000;
ALTER TABLE teams ADD COLUMN rr_cursor TEXT;
ALTER TABLE teams ADD COLUMN routing_lock BIGINT NOT NULL DEFAULT 0;

-- Per-agent capacity (NULL: the team's default). `routing_lock` as for teams: an
-- agent's row is locked while its open count is checked and raised.
ALTER TABLE agents ADD COLUMN capacity INTEGER;
ALTER TABLE agents ADD COLUMN routing_lock BIGINT NOT NULL DEFAULT 0;

-- Queue and routing facts of a conversation.
ALTER TABLE conversations ADD COLUMN queued_at BIGINT;
ALTER TABLE conversations ADD COLUMN preferred_agent_id TEXT;
ALTER TABLE conversations ADD COLUMN assigned_at BIGINT;
CREATE INDEX conversations_queue ON conversations (team_id, queued_at);

-- Poll rounds: one offer per conversation at a time; exactly one winner, decided by
-- `UPDATE offers SET status = 'claimed' ... WHERE status = 'open'`.
CREATE TABLE offers (
    id              TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    team_id         TEXT NOT NULL REFERENCES teams (id),
    status          TEXT NOT NULL CHECK (status IN ('open', 'claimed', 'expired', 'cancelled')),
    round           INTEGER NOT NULL DEFAULT 1,
    winner_id       TEXT REFERENCES agents (id),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    closed_at       BIGINT
);
CREATE INDEX offers_conversation ON offers (conversation_id, status);
CREATE INDEX offers_team_status ON offers (team_id, status);

CREATE TABLE offer_recipients (
    offer_id TEXT NOT NULL REFERENCES offers (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (offer_id, agent_id)
);
CREATE INDEX offer_recipients_agent ON offer_recipients (agent_id);

-- The routing audit: every decision with who was considered and why each was skipped.
CREATE TABLE routing_events (
    id              TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    team_id         TEXT NOT NULL,
    kind            TEXT NOT NULL,
    agent_id        TEXT,
    actor_id        TEXT,
    detail          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX routing_events_conversation ON routing_events (conversation_id, created_at);
