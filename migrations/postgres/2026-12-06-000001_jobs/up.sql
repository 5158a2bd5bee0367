-- The durable scheduler's jobs (postgres; keep in step with the other backend).
-- Times are UTC milliseconds since the Unix epoch. See server/src/scheduler/ and
-- docs/scheduler.md.

-- One row per thing that must happen later: claimed by any node with a lease
-- (`lease_owner`, `lease_until`), done exactly once in effect. (kind, key) is the
-- idempotency key: scheduling the same pair twice keeps one row. `payload` is JSON
-- text; `attempts` counts claims of the current occurrence (a recurring job starts
-- again at 0 after each success).
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY NOT NULL,
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    payload     TEXT NOT NULL DEFAULT '{}',
    due_at      BIGINT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT,
    last_error  TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    UNIQUE (kind, key)
);

CREATE INDEX jobs_state_due ON jobs (state, due_at);
