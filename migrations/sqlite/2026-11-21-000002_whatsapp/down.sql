DROP TABLE outbox;
DROP TABLE whatsapp_statuses;
DROP INDEX conversations_contact_whatsapp;
DROP INDEX contacts_wa_id;
ALTER TABLE messages DROP COLUMN status_error;
ALTER TABLE messages DROP COLUMN attachment;
ALTER TABLE contacts DROP COLUMN wa_id;
