-- Meta message templates (postgres; keep in step with the other backend). Times are
-- UTC milliseconds since the Unix epoch. See docs/campaigns.md.

-- The outbox learns the `template` kind.
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check
    CHECK (kind IN ('text', 'media', 'read', 'template'));

-- Meta message templates, one row per (WABA, name, language), as last synced from
-- `GET /{waba-id}/message_templates` (server/src/channels/templates/sync.rs).
-- `components` is Meta's JSON array as received. A template that vanished from
-- Meta is kept with `deleted = TRUE` (messages may have been sent with it).
CREATE TABLE whatsapp_templates (
    id          TEXT PRIMARY KEY NOT NULL,
    waba_id     TEXT NOT NULL,
    meta_id     TEXT,
    name        TEXT NOT NULL,
    language    TEXT NOT NULL,
    category    TEXT NOT NULL,
    status      TEXT NOT NULL,
    components  TEXT NOT NULL,
    reason      TEXT,
    deleted     BOOLEAN NOT NULL DEFAULT FALSE,
    synced_at   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX whatsapp_templates_key ON whatsapp_templates (waba_id, name, language);

-- The outcome of the last template sync of each WABA (the Templates page's "last sync").
CREATE TABLE whatsapp_template_syncs (
    waba_id    TEXT PRIMARY KEY NOT NULL,
    synced_at  BIGINT NOT NULL,
    ok         BOOLEAN NOT NULL,
    error      TEXT,
    count      INTEGER NOT NULL DEFAULT 0
);
