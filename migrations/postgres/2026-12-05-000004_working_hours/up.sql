-- Working hours (postgres; keep in step with the other backend): an agent's weekly schedule
-- (JSON, `{"mon": ["09:00-17:00"], …}`, server/src/routing/hours.rs) in an IANA time
-- zone. Outside it the agent is not offered new conversations (docs/routing.md). No
-- row means always available, so existing agents route as before.
CREATE TABLE agent_hours (
    agent_id TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    time_zone TEXT NOT NULL,
    hours TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
