-- Contacts: tags, segments, marketing consent (opt-in/opt-out) and per-team opt-out
-- keywords (sqlite; keep in step with the other backend). Times are UTC milliseconds
-- since the Unix epoch. See server/src/store/{tags,segments,consent}.rs and
-- docs/contacts.md.

-- A tag that can be put on contacts (hub-wide, like contacts). Names are unique
-- case-insensitively: `name_key` is the lower-cased name.
CREATE TABLE tags (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    name_key   TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Which contact carries which tag.
CREATE TABLE contact_tags (
    contact_id TEXT NOT NULL REFERENCES contacts (id),
    tag_id     TEXT NOT NULL REFERENCES tags (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (contact_id, tag_id)
);
CREATE INDEX contact_tags_tag ON contact_tags (tag_id, contact_id);

-- A saved filter over contacts (server/src/contacts/segment.rs, stored as JSON).
CREATE TABLE segments (
    id         TEXT PRIMARY KEY NOT NULL,
    name       TEXT NOT NULL,
    filter     TEXT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A contact's current marketing consent; no row means unknown (never asked).
-- `source`: keyword (the customer wrote STOP/START), agent, import.
CREATE TABLE contact_consent (
    contact_id TEXT PRIMARY KEY NOT NULL REFERENCES contacts (id),
    state      TEXT NOT NULL CHECK (state IN ('opted_in', 'opted_out')),
    source     TEXT NOT NULL CHECK (source IN ('keyword', 'agent', 'import')),
    changed_by TEXT,
    changed_at BIGINT NOT NULL
);
CREATE INDEX contact_consent_state ON contact_consent (state, contact_id);

-- Every change of a contact's consent, append-only: who or what changed it.
-- `actor_id` is the agent for source agent; `conversation_id`/`seq` the
-- customer's message for source keyword.
CREATE TABLE consent_events (
    id              TEXT PRIMARY KEY NOT NULL,
    contact_id      TEXT NOT NULL REFERENCES contacts (id),
    state           TEXT NOT NULL CHECK (state IN ('opted_in', 'opted_out')),
    source          TEXT NOT NULL CHECK (source IN ('keyword', 'agent', 'import')),
    actor_id        TEXT,
    conversation_id TEXT,
    seq             BIGINT,
    detail          TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX consent_events_contact ON consent_events (contact_id, created_at);

-- Per-team opt-out/opt-in keywords and confirmation texts (JSON, see
-- server/src/contacts/optout.rs); no row means the defaults.
CREATE TABLE consent_settings (
    team_id    TEXT PRIMARY KEY NOT NULL REFERENCES teams (id),
    settings   TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);

-- The contacts page searches by phone and orders by creation.
CREATE INDEX contacts_created ON contacts (created_at);
