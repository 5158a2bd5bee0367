-- Bot and AI replies (issue 6, sqlite). Keep in step with the other backend.
-- docs/bot.md describes the behaviour; server/src/bot/ owns these tables.

-- One row per team with the bot switched on or configured; a team without a row
-- has the bot off. settings: JSON, see bot::settings::BotSettings.
CREATE TABLE bot_settings (
    team_id    TEXT PRIMARY KEY NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    settings   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);

-- Keyword/regex triggers. The highest priority matching, enabled rule wins.
--   match_kind: keyword (pattern = keywords, one per line or comma-separated,
--               matched on word boundaries, case- and accent-insensitive) | regex
--   action:     reply (send reply, a template) | handover (send reply if any, then
--               hand the conversation to a human)
--   disabled_channels: comma list of channels the rule is switched off on.
CREATE TABLE bot_rules (
    id                TEXT PRIMARY KEY NOT NULL,
    team_id           TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    name              TEXT NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0,
    match_kind        TEXT NOT NULL,
    pattern           TEXT NOT NULL,
    action            TEXT NOT NULL,
    reply             TEXT,
    disabled_channels TEXT NOT NULL DEFAULT '',
    enabled           BOOLEAN NOT NULL DEFAULT TRUE,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
CREATE INDEX bot_rules_team ON bot_rules (team_id, priority);

-- Versioned prompt parts. Every PUT adds a revision; the newest revision of each
-- prompt_type (base | company | rules | escalation) is the one in use.
CREATE TABLE prompts (
    id          TEXT PRIMARY KEY NOT NULL,
    team_id     TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    prompt_type TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    version     TEXT NOT NULL,
    content     TEXT NOT NULL,
    updated_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (team_id, prompt_type, revision)
);

-- Knowledge documents: kind faq | package | text | markdown. ref_code is the label
-- answers cite ([FAQ #12], [Package #UMR_MAR_2025_HEMAT]); unique per team and kind.
-- fields: JSON of a package's structured fields (price, departure, inclusions…).
CREATE TABLE knowledge_docs (
    id         TEXT PRIMARY KEY NOT NULL,
    team_id    TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    ref_code   TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    fields     TEXT,
    revision   INTEGER NOT NULL DEFAULT 1,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT,
    UNIQUE (team_id, kind, ref_code)
);

-- Retrieval units of a document, re-made whenever the document changes.
-- embedding: little-endian f32 vector from embedding_model, NULL when no
-- embedding endpoint was available (lexical retrieval still works).
CREATE TABLE knowledge_chunks (
    id              TEXT PRIMARY KEY NOT NULL,
    doc_id          TEXT NOT NULL REFERENCES knowledge_docs (id) ON DELETE CASCADE,
    team_id         TEXT NOT NULL,
    ordinal         INTEGER NOT NULL,
    text            TEXT NOT NULL,
    embedding       BLOB,
    embedding_model TEXT
);
CREATE INDEX knowledge_chunks_team ON knowledge_chunks (team_id);
CREATE INDEX knowledge_chunks_doc ON knowledge_chunks (doc_id);

-- The bot's state per conversation: active | paused (by an agent) | handed_over.
-- handled_seq: the last guest message seq the bot has answered (bursts).
CREATE TABLE bot_conversations (
    conversation_id TEXT PRIMARY KEY NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    status          TEXT NOT NULL DEFAULT 'active',
    not_understood  INTEGER NOT NULL DEFAULT 0,
    handled_seq     BIGINT NOT NULL DEFAULT 0,
    reason          TEXT,
    summary         TEXT,
    updated_at      BIGINT NOT NULL,
    updated_by      TEXT
);

-- What the bot did and why, one row per decision: the audit trail behind each bot
-- message (prompt version, sources cited, confidence) and each handover.
--   source: rule | ai | retrieval | fallback | after_hours | handover | suggestion
CREATE TABLE bot_replies (
    id              TEXT PRIMARY KEY NOT NULL,
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    team_id         TEXT NOT NULL,
    message_id      TEXT,
    trigger_seq     BIGINT NOT NULL,
    source          TEXT NOT NULL,
    rule_id         TEXT,
    prompt_version  TEXT,
    model           TEXT,
    sources         TEXT NOT NULL DEFAULT '[]',
    confidence      DOUBLE PRECISION,
    escalated       BOOLEAN NOT NULL DEFAULT FALSE,
    reason          TEXT,
    latency_ms      BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);
CREATE INDEX bot_replies_conversation ON bot_replies (conversation_id, created_at);
