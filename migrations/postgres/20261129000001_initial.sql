-- vggserve's durable state on PostgreSQL, shared by API replicas and workers. The same
-- contract as migrations/sqlite (see src/store/mod.rs), in PostgreSQL's own types. The jobs
-- table is the queue: workers claim the oldest queued row with FOR UPDATE SKIP LOCKED and
-- hold it by lease. Epochs and events are append-only; models are immutable once written.

CREATE TABLE jobs (
    seq              BIGSERIAL   NOT NULL UNIQUE,                -- FIFO order
    id               UUID        PRIMARY KEY,
    kind             TEXT        NOT NULL,
    dataset          TEXT,
    status           TEXT        NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
    params           JSONB       NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    progress_done    BIGINT      NOT NULL DEFAULT 0,
    progress_total   BIGINT      NOT NULL DEFAULT 0,
    progress_unit    TEXT        NOT NULL DEFAULT '',
    result           JSONB,
    model_id         UUID,
    error            TEXT,
    cancel_requested BOOLEAN     NOT NULL DEFAULT false,
    lease_owner      TEXT,                                        -- the worker holding it
    lease_until      TIMESTAMPTZ,                                 -- database clock
    attempts         BIGINT      NOT NULL DEFAULT 0
);
CREATE INDEX jobs_status ON jobs (status, seq);
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE status = 'running';

CREATE TABLE epochs (
    job_id   UUID             NOT NULL REFERENCES jobs (id),
    epoch    BIGINT           NOT NULL,
    loss     DOUBLE PRECISION NOT NULL,
    acc      DOUBLE PRECISION NOT NULL,
    val_loss DOUBLE PRECISION,
    val_acc  DOUBLE PRECISION,
    seconds  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (job_id, epoch)
);

-- What SSE replays. Every transaction that inserts here first takes one advisory lock
-- (src/store/postgres/events.rs), so ids commit in order and a reader of `id > last`
-- never skips one that commits late.
CREATE TABLE events (
    id         BIGSERIAL   PRIMARY KEY,
    job_id     UUID        NOT NULL REFERENCES jobs (id),
    kind       TEXT        NOT NULL,
    data       JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX events_job ON events (job_id, id);

-- Every API replica LISTENs: a recorded event wakes the SSE streams of its job everywhere.
CREATE FUNCTION vggserve_event_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('vggserve_events', NEW.job_id::text || ' ' || NEW.id::text);
    RETURN NEW;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION vggserve_event_notify();

CREATE TABLE models (
    seq             BIGSERIAL   NOT NULL,
    id              UUID        PRIMARY KEY,
    recipe          TEXT        NOT NULL,
    dataset         TEXT        NOT NULL,
    classes         JSONB       NOT NULL,      -- label order
    params          JSONB       NOT NULL,
    metrics         JSONB       NOT NULL,
    test_metrics    JSONB,
    source_job      UUID        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    artifact        TEXT        NOT NULL,      -- key in the artifact store
    artifact_sha256 TEXT        NOT NULL,
    config          JSONB       NOT NULL,
    is_default      BOOLEAN     NOT NULL DEFAULT false
);
