-- Automations (sequences, issue 17 §5; server/src/automations,
-- server/src/store/automations.rs, docs/automations.md). Times are UTC milliseconds
-- since the Unix epoch. Keep in step with the SQLite migration of the same name.

-- A team's sequence: what starts it (trigger JSON, automations::Trigger), what it
-- does (steps JSON, automations::Step) and whether a customer reply stops it.
-- preset names a shipped default (one per team and preset); enabled_at is when it
-- was last turned on (the no-reply trigger counts silences that begin after it).
CREATE TABLE automations (
    id            TEXT PRIMARY KEY NOT NULL,
    team_id       TEXT NOT NULL REFERENCES teams (id),
    name          TEXT NOT NULL,
    preset        TEXT,
    enabled       BOOLEAN NOT NULL DEFAULT FALSE,
    enabled_at    BIGINT,
    trigger_kind  TEXT NOT NULL CHECK (trigger_kind IN
                    ('lead_created', 'stage_entered', 'tag_added', 'no_reply')),
    trigger_spec  TEXT NOT NULL,
    stop_on_reply BOOLEAN NOT NULL DEFAULT TRUE,
    steps         TEXT NOT NULL,
    created_by    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX automations_trigger ON automations (team_id, trigger_kind, enabled);
CREATE UNIQUE INDEX automations_preset ON automations (team_id, preset);

-- One contact going through one automation. enrol_key names the event that started
-- it (a lead event, a tag added, a silence), unique per automation, so a trigger
-- seen twice enrols once. step is the next step to run; every step's effect and the
-- step's advance commit together, and the scheduler's job for a step is keyed by
-- (run, step), so a step is done once in effect across crashes and nodes.
CREATE TABLE automation_runs (
    id              TEXT PRIMARY KEY NOT NULL,
    automation_id   TEXT NOT NULL REFERENCES automations (id) ON DELETE CASCADE,
    team_id         TEXT NOT NULL,
    contact_id      TEXT NOT NULL REFERENCES contacts (id),
    lead_id         TEXT,
    enrol_key       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'done', 'stopped', 'failed')),
    step            INTEGER NOT NULL DEFAULT 0,
    stop_on_reply   BOOLEAN NOT NULL,
    reason          TEXT,
    next_at         BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX automation_runs_enrol ON automation_runs (automation_id, enrol_key);
CREATE INDEX automation_runs_contact ON automation_runs (contact_id, status);
CREATE INDEX automation_runs_recent ON automation_runs (automation_id, updated_at);
