ALTER TABLE agents DROP COLUMN token_epoch;
