DROP INDEX contacts_email_lower;
DROP INDEX contacts_phone;
