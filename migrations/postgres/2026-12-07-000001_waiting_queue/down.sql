DROP INDEX conversations_waiting;
CREATE INDEX conversations_queue ON conversations (team_id, queued_at);
