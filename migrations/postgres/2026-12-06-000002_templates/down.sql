DROP TABLE whatsapp_template_syncs;
DROP TABLE whatsapp_templates;
DELETE FROM outbox WHERE kind = 'template';
ALTER TABLE outbox DROP CONSTRAINT outbox_kind_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_kind_check CHECK (kind IN ('text', 'media', 'read'));
