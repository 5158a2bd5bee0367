-- The inbound pipeline's progress per conversation (sqlite; keep in step with the other
-- backend): every committed message up to seq has been through every stage
-- (docs/architecture.md). A node works on a conversation's backlog only while it holds
-- the lease (lease_owner, lease_until in epoch ms), so two nodes never run the stages of
-- one message at the same time. A conversation without a row has done nothing yet.
CREATE TABLE pipeline_progress (
    conversation_id TEXT PRIMARY KEY NOT NULL REFERENCES conversations (id),
    seq             BIGINT NOT NULL DEFAULT 0,
    lease_owner     TEXT,
    lease_until     BIGINT NOT NULL DEFAULT 0
);
-- Messages committed before the pipeline existed were handled by the old bookkeeping:
-- they count as done.
INSERT INTO pipeline_progress (conversation_id, seq)
SELECT id, last_seq FROM conversations;
