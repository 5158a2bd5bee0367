-- Roles became named permission sets (docs/roles.md; postgres, keep in step with the
-- other backend): the team lead's role is now called manager, and sales and
-- marketing join. Nothing else about an account changes, so existing sessions keep
-- their access.
ALTER TABLE agents DROP CONSTRAINT agents_role_check;
UPDATE agents SET role = 'manager' WHERE role = 'lead';
ALTER TABLE agents ADD CONSTRAINT agents_role_check
    CHECK (role IN ('admin', 'manager', 'sales', 'agent', 'marketing'));
