-- Approval decisions on proposed actions: who decided, when, what ran, and the hash that
-- pins an action to exactly what was proposed and previewed.

ALTER TABLE actions ADD COLUMN action_hash TEXT;
ALTER TABLE actions ADD COLUMN decided_by TEXT;
ALTER TABLE actions ADD COLUMN decided_at TIMESTAMPTZ;
ALTER TABLE actions ADD COLUMN decision_reason TEXT;
ALTER TABLE actions ADD COLUMN executed_at TIMESTAMPTZ;
ALTER TABLE actions ADD COLUMN job_id VARCHAR(255);
ALTER TABLE actions ADD COLUMN result JSONB;
