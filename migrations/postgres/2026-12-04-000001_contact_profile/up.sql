-- What the hub knows of a contact beyond the pre-chat form (postgres). Keep in step with
-- the other backend. All nullable: WhatsApp contacts and contacts from before this
-- migration simply have none of it (docs/api.md, ContactView).
--   time_zone:    IANA zone the widget reported (e.g. Asia/Jakarta).
--   locale:       BCP 47 tag the widget reported, else the first Accept-Language tag.
--   country:      ISO 3166-1 alpha-2, from time_zone, else the locale's region.
--   last_seen_at: epoch ms of the contact's latest widget session (created or renewed).
--   returned_at:  epoch ms the contact first came back: a widget session renewed
--                 after a pause (a later visit), or its lead held an earlier
--                 conversation of the same person. NULL: not (yet) returning.
ALTER TABLE contacts ADD COLUMN time_zone TEXT;
ALTER TABLE contacts ADD COLUMN locale TEXT;
ALTER TABLE contacts ADD COLUMN country TEXT;
ALTER TABLE contacts ADD COLUMN last_seen_at BIGINT;
ALTER TABLE contacts ADD COLUMN returned_at BIGINT;
