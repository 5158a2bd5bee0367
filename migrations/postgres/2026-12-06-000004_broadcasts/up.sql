-- Broadcasts (issue 17 §4; server/src/broadcasts, server/src/store/broadcasts.rs,
-- docs/campaigns.md). Times are UTC milliseconds since the Unix epoch. Keep in step
-- with the SQLite migration of the same name.

-- One campaign: what (content JSON, broadcasts::content::Content), from which number,
-- to whom (a segment, its filter frozen when sending starts), when, and where it is
-- in its life (broadcasts::lifecycle::State).
CREATE TABLE broadcasts (
    id             TEXT PRIMARY KEY NOT NULL,
    name           TEXT NOT NULL,
    number_id      TEXT NOT NULL REFERENCES whatsapp_numbers (id),
    content        TEXT NOT NULL,
    segment_id     TEXT REFERENCES segments (id) ON DELETE SET NULL,
    filter         TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN
                     ('draft', 'scheduled', 'sending', 'paused', 'done', 'cancelled')),
    send_at        BIGINT,
    time_zone      TEXT,
    attribution_ms BIGINT NOT NULL,
    recipients     BIGINT NOT NULL DEFAULT 0,
    created_by     TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT
);
CREATE INDEX broadcasts_created ON broadcasts (created_at);

-- Its recipients, fixed once when sending starts (one row per contact: the primary
-- key is what makes "once per recipient" hold across restarts and nodes).
-- state: pending → sent (message_id set) or skipped (skip_reason set).
CREATE TABLE broadcast_recipients (
    broadcast_id    TEXT NOT NULL REFERENCES broadcasts (id),
    contact_id      TEXT NOT NULL REFERENCES contacts (id),
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'skipped')),
    skip_reason     TEXT,
    message_id      TEXT,
    sent_at         BIGINT,
    PRIMARY KEY (broadcast_id, contact_id)
);
CREATE INDEX broadcast_recipients_state ON broadcast_recipients (broadcast_id, state, contact_id);
CREATE INDEX broadcast_recipients_message ON broadcast_recipients (message_id);

-- How fast each number sends broadcast copies (broadcasts::pacing::Pace as JSON; no
-- row: the provider's default) and the next free send slot, shared by every
-- broadcast on the number and every node.
CREATE TABLE number_pacing (
    number_id  TEXT PRIMARY KEY NOT NULL REFERENCES whatsapp_numbers (id),
    pace       TEXT,
    next_slot  BIGINT NOT NULL DEFAULT 0,
    updated_at BIGINT NOT NULL
);
