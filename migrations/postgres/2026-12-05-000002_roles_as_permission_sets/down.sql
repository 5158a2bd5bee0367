ALTER TABLE agents DROP CONSTRAINT agents_role_check;
UPDATE agents SET role = 'lead' WHERE role = 'manager';
UPDATE agents SET role = 'agent' WHERE role IN ('sales', 'marketing');
ALTER TABLE agents ADD CONSTRAINT agents_role_check CHECK (role IN ('agent', 'lead', 'admin'));
