DROP INDEX contacts_created;
DROP TABLE consent_settings;
DROP TABLE consent_events;
DROP TABLE contact_consent;
DROP TABLE segments;
DROP TABLE contact_tags;
DROP TABLE tags;
