DROP INDEX conversations_contact_number;
CREATE UNIQUE INDEX conversations_contact_whatsapp ON conversations (contact_id, channel)
    WHERE channel IN ('whatsapp', 'waha');
ALTER TABLE conversations DROP COLUMN number_id;
DROP TABLE whatsapp_numbers;
