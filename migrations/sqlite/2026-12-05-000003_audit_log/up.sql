-- The audit log (sqlite; keep in step with the other backend; docs/audit.md): one row
-- per security- or settings-relevant action, written in the same transaction as the
-- change it describes. at is epoch ms; actor_id is the agent (NULL for an anonymous
-- caller, e.g. a failed login), actor_label its email (or the email a failed login
-- tried, or 'system'); ip the caller's address; before/after JSON with secrets
-- redacted. Append-only: the triggers refuse UPDATE and DELETE.
CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY NOT NULL,
    at          BIGINT NOT NULL,
    actor_id    TEXT,
    actor_label TEXT NOT NULL,
    ip          TEXT,
    action      TEXT NOT NULL,
    target_kind TEXT,
    target_id   TEXT,
    team_id     TEXT,
    "before"    TEXT,
    "after"     TEXT
);
-- Newest first, and newest first within an actor, an action or a target.
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_actor ON audit_log (actor_id, at);
CREATE INDEX audit_log_action ON audit_log (action, at);
CREATE INDEX audit_log_target ON audit_log (target_id, at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
