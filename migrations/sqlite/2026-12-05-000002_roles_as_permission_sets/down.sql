ALTER TABLE agents RENAME COLUMN role TO role_with_permissions;
ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent'
    CHECK (role IN ('agent', 'lead', 'admin'));
UPDATE agents SET role = CASE role_with_permissions
    WHEN 'manager' THEN 'lead' WHEN 'admin' THEN 'admin' ELSE 'agent' END;
ALTER TABLE agents DROP COLUMN role_with_permissions;
