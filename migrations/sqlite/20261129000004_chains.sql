-- Job chains: a job may wait on jobs that have not finished (status 'waiting'), and
-- pipelines queue named steps together. SQLite cannot alter a CHECK, so the jobs table is
-- rebuilt inside the migration's transaction: its rows are copied aside, the table is
-- dropped and created anew under its own name, and the rows go back. Foreign keys are
-- checked at commit (deferred), when every epoch and event has its job again.
PRAGMA defer_foreign_keys = ON;
CREATE TABLE jobs_copy AS SELECT * FROM jobs;
DROP TABLE jobs;
CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,   -- FIFO order
    id               TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    dataset          TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('waiting','queued','running','succeeded','failed','cancelled')),
    params           TEXT    NOT NULL,                    -- JSON, every hyper-parameter resolved
    created_at       TEXT    NOT NULL,
    started_at       TEXT,
    finished_at      TEXT,
    progress_done    INTEGER NOT NULL DEFAULT 0,
    progress_total   INTEGER NOT NULL DEFAULT 0,
    progress_unit    TEXT    NOT NULL DEFAULT '',
    result           TEXT,                                -- JSON
    model_id         TEXT,
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_until      INTEGER,
    attempts         INTEGER NOT NULL DEFAULT 0,
    releases         INTEGER NOT NULL DEFAULT 0,
    pipeline         TEXT,                                -- the pipeline that queued it
    step             TEXT                                 -- its step's name there
);
INSERT INTO jobs (seq, id, kind, dataset, status, params, created_at, started_at,
    finished_at, progress_done, progress_total, progress_unit, result, model_id, error,
    cancel_requested, lease_owner, lease_until, attempts, releases)
  SELECT seq, id, kind, dataset, status, params, created_at, started_at, finished_at,
    progress_done, progress_total, progress_unit, result, model_id, error, cancel_requested,
    lease_owner, lease_until, attempts, releases FROM jobs_copy;
DROP TABLE jobs_copy;
CREATE INDEX jobs_status ON jobs (status, seq);
CREATE INDEX jobs_lease ON jobs (status, lease_until);
CREATE INDEX jobs_pipeline ON jobs (pipeline, seq);

-- A job's parameter `field` names job `depends_on`, which had not succeeded when the job
-- was queued. `takes_model`: the parameter becomes the model that job registers once it
-- succeeds (from_model, model); otherwise it names the job itself (features).
CREATE TABLE job_dependencies (
    job_id      TEXT    NOT NULL REFERENCES jobs (id),
    depends_on  TEXT    NOT NULL REFERENCES jobs (id),
    field       TEXT    NOT NULL,
    takes_model INTEGER NOT NULL,
    PRIMARY KEY (job_id, field)
);
CREATE INDEX job_dependencies_on ON job_dependencies (depends_on);

CREATE TABLE pipelines (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    recipe     INTEGER,                                   -- 1, 2 or 3; NULL: the user's steps
    created_at TEXT    NOT NULL
);
