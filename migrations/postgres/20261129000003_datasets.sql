-- Datasets uploaded to the shared artifact store (--artifacts-url): the name users give, the
-- version whose files are under datasets/<version>/<name>/ in the store, and the splits'
-- classes and image counts (so listing downloads nothing). A name is taken once.
CREATE TABLE datasets (
    name TEXT PRIMARY KEY,
    version UUID NOT NULL UNIQUE,
    splits JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
