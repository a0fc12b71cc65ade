-- vggserve's durable state. The jobs table is the queue: the worker claims the oldest
-- queued row. Epochs and events are append-only; models are immutable once written.

CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,   -- FIFO order
    id               TEXT    NOT NULL UNIQUE,
    kind             TEXT    NOT NULL,
    dataset          TEXT,
    status           TEXT    NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
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
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_status ON jobs (status, seq);

CREATE TABLE epochs (
    job_id   TEXT    NOT NULL REFERENCES jobs (id),
    epoch    INTEGER NOT NULL,
    loss     REAL    NOT NULL,
    acc      REAL    NOT NULL,
    val_loss REAL,
    val_acc  REAL,
    seconds  REAL    NOT NULL,
    PRIMARY KEY (job_id, epoch)
);

-- What SSE replays: every recorded event of a job, in id order.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     TEXT    NOT NULL REFERENCES jobs (id),
    kind       TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);
CREATE INDEX events_job ON events (job_id, id);

CREATE TABLE models (
    id           TEXT    PRIMARY KEY,
    recipe       TEXT    NOT NULL,
    dataset      TEXT    NOT NULL,
    classes      TEXT    NOT NULL,      -- JSON array, label order
    params       TEXT    NOT NULL,      -- JSON
    metrics      TEXT    NOT NULL,      -- JSON: last epoch
    test_metrics TEXT,                  -- JSON or NULL
    source_job   TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    artifact     TEXT    NOT NULL,      -- path under the data dir
    artifact_sha256 TEXT NOT NULL,
    config       TEXT    NOT NULL,      -- JSON: ModelConfig
    is_default   INTEGER NOT NULL DEFAULT 0
);
