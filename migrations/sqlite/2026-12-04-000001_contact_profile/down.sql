ALTER TABLE contacts DROP COLUMN returned_at;
ALTER TABLE contacts DROP COLUMN last_seen_at;
ALTER TABLE contacts DROP COLUMN country;
ALTER TABLE contacts DROP COLUMN locale;
ALTER TABLE contacts DROP COLUMN time_zone;
