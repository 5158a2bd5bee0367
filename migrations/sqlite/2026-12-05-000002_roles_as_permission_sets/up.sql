-- Roles became named permission sets (docs/roles.md; sqlite, keep in step with the
-- other backend): the team lead's role is now called manager, and sales and
-- marketing join. Nothing else about an account changes, so existing sessions keep
-- their access.
--
-- SQLite cannot alter a CHECK constraint; rebuilding `agents` would cascade into
-- every table that references it, so the column is replaced instead: the old one
-- (with its inline CHECK) is renamed, a new checked column is filled from it, and
-- the old one is dropped.
ALTER TABLE agents RENAME COLUMN role TO role_before_permissions;
ALTER TABLE agents ADD COLUMN role TEXT NOT NULL DEFAULT 'agent'
    CHECK (role IN ('admin', 'manager', 'sales', 'agent', 'marketing'));
UPDATE agents SET role = CASE role_before_permissions
    WHEN 'lead' THEN 'manager' ELSE role_before_permissions END;
ALTER TABLE agents DROP COLUMN role_before_permissions;
