-- Guest widget settings per team (sqlite). Keep in step with the other backend.
-- A team without a row uses the defaults (docs/frontends.md).
--   prechat_fields: comma list of the pre-chat form's fields, from name,email,phone
--                   (empty: no form); prechat_required: the form must be filled.
--   business_hours: JSON {"utc_offset_minutes", "days" (1 = Monday … 7), "open",
--                   "close" ("HH:MM")}, or NULL for always open.
CREATE TABLE widget_settings (
    team_id          TEXT PRIMARY KEY NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
    prechat_fields   TEXT NOT NULL DEFAULT '',
    prechat_required BOOLEAN NOT NULL DEFAULT FALSE,
    greeting         TEXT NOT NULL DEFAULT '',
    away_message     TEXT NOT NULL DEFAULT '',
    business_hours   TEXT,
    updated_at       BIGINT NOT NULL
);
