DROP TABLE whatsapp_template_syncs;
DROP TABLE whatsapp_templates;
DELETE FROM outbox WHERE kind = 'template';
CREATE TABLE outbox_old (
    id              TEXT PRIMARY KEY NOT NULL,
    message_id      TEXT REFERENCES messages (id),
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    provider        TEXT NOT NULL CHECK (provider IN ('meta', 'waha')),
    kind            TEXT NOT NULL CHECK (kind IN ('text', 'media', 'read')),
    payload         TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
INSERT INTO outbox_old SELECT id, message_id, conversation_id, provider, kind, payload, state,
    attempts, next_attempt_at, locked_until, last_error, created_at, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_old RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
