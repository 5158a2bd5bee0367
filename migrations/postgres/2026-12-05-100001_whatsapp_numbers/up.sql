-- Several WhatsApp numbers (inboxes) (postgres; keep in step with the other backend).
-- Times are UTC milliseconds since the Unix epoch. See server/src/store/numbers.rs
-- and docs/channels/whatsapp.md.

-- One row per WhatsApp number the hub answers on: a Meta Cloud API phone number or
-- a WAHA session, bound to the team its conversations land in. Secret columns
-- (`*_enc`) hold AEAD ciphertext (server/src/secrets.rs), never plaintext; NULL
-- means unset. Rows with `source = 'env'` mirror the environment variables
-- (ids `env-meta`, `env-waha`); their secrets stay in the environment.
CREATE TABLE whatsapp_numbers (
    id                TEXT PRIMARY KEY NOT NULL,
    provider          TEXT NOT NULL CHECK (provider IN ('meta', 'waha')),
    source            TEXT NOT NULL CHECK (source IN ('env', 'admin')),
    label             TEXT NOT NULL,
    team_id           TEXT REFERENCES teams (id),
    active            BOOLEAN NOT NULL DEFAULT TRUE,
    phone_number_id   TEXT,
    waba_id           TEXT,
    waha_url          TEXT,
    waha_session      TEXT,
    insecure_unsigned BOOLEAN NOT NULL DEFAULT FALSE,
    access_token_enc  TEXT,
    app_secret_enc    TEXT,
    api_key_enc       TEXT,
    hmac_key_enc      TEXT,
    session_status    TEXT,
    session_status_at BIGINT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL
);
-- Inbound webhooks find their number by these: one number per Meta phone number id
-- and per WAHA session name.
CREATE UNIQUE INDEX whatsapp_numbers_meta ON whatsapp_numbers (phone_number_id)
    WHERE provider = 'meta';
CREATE UNIQUE INDEX whatsapp_numbers_waha ON whatsapp_numbers (waha_session)
    WHERE provider = 'waha';

-- The number a WhatsApp conversation came in on; replies go out from it. No
-- foreign key: rows from before this migration point at the stable env ids, whose
-- rows are written at start-up.
ALTER TABLE conversations ADD COLUMN number_id TEXT;
UPDATE conversations SET number_id = 'env-meta' WHERE channel = 'whatsapp';
UPDATE conversations SET number_id = 'env-waha' WHERE channel = 'waha';
-- One WhatsApp conversation per contact and number (was: per contact and channel),
-- so the same customer writing to two numbers has two conversations, one per team.
DROP INDEX conversations_contact_whatsapp;
CREATE UNIQUE INDEX conversations_contact_number ON conversations (contact_id, number_id)
    WHERE number_id IS NOT NULL;
