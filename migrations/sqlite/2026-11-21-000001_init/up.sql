-- Foundation schema (SQLite). Keep in step with migrations/postgres/ (same names, same meaning).
-- Times are UTC milliseconds since the Unix epoch (BIGINT), ids are UUIDv7 text.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE teams (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    slug       TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE agents (
    id            TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'lead', 'admin')),
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL
);

CREATE TABLE team_members (
    team_id  TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    agent_id TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    PRIMARY KEY (team_id, agent_id)
);
CREATE INDEX team_members_agent ON team_members (agent_id);

CREATE TABLE contacts (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT,
    email      TEXT,
    phone      TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE conversations (
    id                   TEXT PRIMARY KEY NOT NULL,
    team_id              TEXT NOT NULL REFERENCES teams (id),
    contact_id           TEXT NOT NULL REFERENCES contacts (id),
    channel              TEXT NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('open', 'pending', 'resolved')),
    assignee_id          TEXT REFERENCES agents (id),
    source               TEXT,
    page_url             TEXT,
    last_seq             BIGINT NOT NULL DEFAULT 0,
    last_message_at      BIGINT,
    last_message_preview TEXT,
    last_message_sender  TEXT,
    last_inbound_at      BIGINT,
    guest_read_seq       BIGINT NOT NULL DEFAULT 0,
    agent_read_seq       BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX conversations_team_activity ON conversations (team_id, updated_at);
CREATE INDEX conversations_assignee ON conversations (assignee_id);
CREATE INDEX conversations_contact ON conversations (contact_id);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq             BIGINT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out', 'internal')),
    sender_kind     TEXT NOT NULL CHECK (sender_kind IN ('guest', 'agent', 'bot', 'system')),
    sender_id       TEXT,
    sender_name     TEXT,
    body            TEXT NOT NULL,
    client_msg_id   TEXT,
    provider_id     TEXT,
    status          TEXT,
    created_at      BIGINT NOT NULL
);
-- Guarantee 2: one message per (conversation, seq).
CREATE UNIQUE INDEX messages_conversation_seq ON messages (conversation_id, seq);
-- Guarantee 3: one message per client_msg_id per sender (NULL ids are distinct).
CREATE UNIQUE INDEX messages_sender_client_msg_id ON messages (sender_kind, sender_id, client_msg_id);
-- Guarantee 3: one message per provider message id (WhatsApp wamid, WAHA id).
CREATE UNIQUE INDEX messages_provider_id ON messages (provider_id);
