-- Leases: the worker running a job holds it until `lease_until` (Unix milliseconds) and
-- extends it by heartbeat; every write for the job is fenced on (lease_owner, attempts).
-- `attempts` counts claims: a job whose worker was lost too often fails with the reason.
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_until INTEGER;
ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- Jobs left `running` by a version without leases: expired, so the next worker settles them.
UPDATE jobs SET lease_owner = '', lease_until = 0 WHERE status = 'running';
CREATE INDEX jobs_lease ON jobs (status, lease_until);
