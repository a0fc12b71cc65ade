-- Job chains: a job may wait on jobs that have not finished (status 'waiting'), and
-- pipelines queue named steps together (see migrations/sqlite for the same contract).
ALTER TABLE jobs DROP CONSTRAINT jobs_status_check;
ALTER TABLE jobs ADD CONSTRAINT jobs_status_check
    CHECK (status IN ('waiting','queued','running','succeeded','failed','cancelled'));
ALTER TABLE jobs ADD COLUMN pipeline UUID;                -- the pipeline that queued it
ALTER TABLE jobs ADD COLUMN step TEXT;                    -- its step's name there
CREATE INDEX jobs_pipeline ON jobs (pipeline, seq);

-- A job's parameter `field` names job `depends_on`, which had not succeeded when the job
-- was queued. `takes_model`: the parameter becomes the model that job registers once it
-- succeeds (from_model, model); otherwise it names the job itself (features).
CREATE TABLE job_dependencies (
    job_id      UUID    NOT NULL REFERENCES jobs (id),
    depends_on  UUID    NOT NULL REFERENCES jobs (id),
    field       TEXT    NOT NULL,
    takes_model BOOLEAN NOT NULL,
    PRIMARY KEY (job_id, field)
);
CREATE INDEX job_dependencies_on ON job_dependencies (depends_on);

CREATE TABLE pipelines (
    seq        BIGSERIAL   NOT NULL UNIQUE,
    id         UUID        PRIMARY KEY,
    recipe     BIGINT,                                    -- 1, 2 or 3; NULL: the user's steps
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
