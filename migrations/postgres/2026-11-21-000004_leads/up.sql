-- Leads, pipeline, tasks, quick-chat links and campaign codes (issue 5).
-- Keep in step with migrations/sqlite/ (same names, same meaning).
-- Times are UTC epoch milliseconds, ids UUIDv7 text, flags INTEGER 0/1.

-- A team's pipeline and intent rules as JSON (see server/src/leads/config.rs);
-- a team without a row uses the built-in defaults (docs/leads.md).
CREATE TABLE lead_settings (
    team_id    TEXT PRIMARY KEY NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    stages     TEXT NOT NULL,
    rules      TEXT NOT NULL,
    welcome    TEXT,
    updated_at BIGINT NOT NULL,
    updated_by TEXT
);

-- One lead per person: a lead owns one or more contacts (lead_contacts), merged
-- when they turn out to be the same person (phone or email).
CREATE TABLE leads (
    id                 TEXT PRIMARY KEY NOT NULL,
    team_id            TEXT NOT NULL REFERENCES teams (id),
    contact_id         TEXT NOT NULL REFERENCES contacts (id),
    source             TEXT NOT NULL,
    source_detail      TEXT,
    owner_id           TEXT REFERENCES agents (id),
    stage              TEXT NOT NULL,
    furthest_position  INTEGER NOT NULL DEFAULT 0,
    priority           TEXT NOT NULL DEFAULT 'normal',
    score              INTEGER NOT NULL DEFAULT 0,
    campaign_code      TEXT,
    interested_package TEXT,
    notes              TEXT,
    handover_pending   INTEGER NOT NULL DEFAULT 0,
    handover_reason    TEXT,
    escalated          INTEGER NOT NULL DEFAULT 0,
    quick_link_id      TEXT,
    engagement_invited INTEGER NOT NULL DEFAULT 0,
    first_response_at  BIGINT,
    closed_at          BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX leads_team_stage ON leads (team_id, stage);
CREATE INDEX leads_owner ON leads (owner_id);

-- Which lead a contact belongs to: the primary key makes "one lead per contact"
-- hold under races.
CREATE TABLE lead_contacts (
    contact_id TEXT PRIMARY KEY NOT NULL REFERENCES contacts (id),
    lead_id    TEXT NOT NULL REFERENCES leads (id),
    created_at BIGINT NOT NULL
);
CREATE INDEX lead_contacts_lead ON lead_contacts (lead_id);

-- The lead timeline besides messages and routing decisions (which are read from
-- their own tables): stage changes, tasks, intents, handovers, merges, notes.
CREATE TABLE lead_events (
    id              TEXT PRIMARY KEY NOT NULL,
    lead_id         TEXT NOT NULL,
    conversation_id TEXT,
    kind            TEXT NOT NULL,
    actor_kind      TEXT NOT NULL CHECK (actor_kind IN ('system', 'agent', 'guest', 'bot')),
    actor_id        TEXT,
    detail          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX lead_events_lead ON lead_events (lead_id, created_at);

CREATE TABLE tasks (
    id               TEXT PRIMARY KEY NOT NULL,
    lead_id          TEXT NOT NULL REFERENCES leads (id),
    team_id          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    title            TEXT NOT NULL,
    assignee_id      TEXT REFERENCES agents (id),
    due_at           BIGINT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('open', 'done', 'cancelled')),
    overdue_notified INTEGER NOT NULL DEFAULT 0,
    created_by       TEXT,
    created_at       BIGINT NOT NULL,
    completed_at     BIGINT
);
CREATE INDEX tasks_due ON tasks (status, overdue_notified, due_at);
CREATE INDEX tasks_lead ON tasks (lead_id);

-- An agent's public handle in quick-chat URLs (/q/{handle}/{source}).
CREATE TABLE agent_handles (
    handle     TEXT PRIMARY KEY NOT NULL,
    agent_id   TEXT NOT NULL UNIQUE REFERENCES agents (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL
);

CREATE TABLE quick_links (
    id            TEXT PRIMARY KEY NOT NULL,
    agent_id      TEXT NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    team_id       TEXT NOT NULL REFERENCES teams (id),
    handle        TEXT NOT NULL,
    source        TEXT NOT NULL,
    clicks        BIGINT NOT NULL DEFAULT 0,
    conversations BIGINT NOT NULL DEFAULT 0,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX quick_links_handle_source ON quick_links (handle, source);

-- Campaign codes from ads (seed 001: PKG_MONTH_YEAR_TYPE) and their package.
CREATE TABLE campaign_codes (
    code           TEXT PRIMARY KEY NOT NULL,
    team_id        TEXT NOT NULL REFERENCES teams (id),
    package_name   TEXT NOT NULL,
    price          BIGINT,
    currency       TEXT,
    departure_date TEXT,
    duration_days  INTEGER,
    quota          INTEGER,
    image_url      TEXT,
    brochure_url   TEXT,
    itinerary      TEXT,
    active         INTEGER NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
