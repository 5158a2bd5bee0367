-- WhatsApp channel (Meta Cloud API and WAHA) (SQLite). Keep in step with the other backend.
-- Times are UTC milliseconds since the Unix epoch.

-- The WhatsApp id of a contact: E.164 digits without '+' (Meta wa_id, WAHA <digits>@c.us),
-- or 'lid:<id>' for a WAHA @lid sender whose phone number is not known.
ALTER TABLE contacts ADD COLUMN wa_id TEXT;
-- One contact per WhatsApp number, even when two webhooks race.
CREATE UNIQUE INDEX contacts_wa_id ON contacts (wa_id);

-- One WhatsApp conversation per contact and provider channel: a resolved one is
-- reopened by the contact's next message, never duplicated (also under races).
CREATE UNIQUE INDEX conversations_contact_whatsapp ON conversations (contact_id, channel)
    WHERE channel IN ('whatsapp', 'waha');

-- Media reference and metadata (JSON, see channels::Attachment) and the provider's
-- delivery error (JSON {code, title}) of a failed outbound message.
ALTER TABLE messages ADD COLUMN attachment TEXT;
ALTER TABLE messages ADD COLUMN status_error TEXT;

-- Every delivery status a provider reported, once per (provider id, status): the
-- dedupe of replayed status webhooks, and a parking place for statuses that arrive
-- before the outbox worker recorded the provider id of the message they describe.
CREATE TABLE whatsapp_statuses (
    provider_id TEXT NOT NULL,
    status      TEXT NOT NULL,
    error_code  BIGINT,
    error_title TEXT,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (provider_id, status)
);

-- The durable outbound queue to WhatsApp providers (see server/src/outbox.rs).
CREATE TABLE outbox (
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
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
