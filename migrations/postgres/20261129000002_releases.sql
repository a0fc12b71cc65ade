-- Claims given back at shutdown (not lost): `attempts - releases` is how often a worker
-- was lost, which --max-attempts bounds; `attempts` itself only grows, so every claim has
-- a number (and a checkpoint folder) of its own.
ALTER TABLE jobs ADD COLUMN releases BIGINT NOT NULL DEFAULT 0;
