-- Salt job cache and event store (the `serverflow` returner, spec §2.3 and §4.1).
--
-- Tenant handling: jobs belong to the tenant of the master that ran them
-- (serverflow:tenant_id). Every table carries tenant_id under the same row-level
-- security as the core tables, so one shared database never shows one tenant's
-- jobs, returns or events to another. There is deliberately no foreign key to
-- tenants: the returner must accept returns before the engine has created the
-- tenant row, and an FK check per row would slow ingestion.
--
-- Names avoid Salt's pgjsonb tables (jids, salt_returns, salt_events), so both
-- can live in one database while a site migrates.

CREATE TABLE salt_jobs (
    tenant_id UUID NOT NULL,
    jid VARCHAR(255) NOT NULL,
    fun VARCHAR(255),
    load JSONB,                         -- the load as Salt saved it; NULL until one is known
    load_source VARCHAR(16),            -- 'publish' (authoritative) or 'return' (derived)
    minions TEXT[] NOT NULL DEFAULT '{}',
    started_at TIMESTAMPTZ NOT NULL,    -- from the jid, else when first seen
    endtime TEXT,                       -- update_endtime (job_cache_store_endtime)
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, jid)
);
CREATE INDEX idx_salt_jobs_started ON salt_jobs (tenant_id, started_at);
CREATE INDEX idx_salt_jobs_fun ON salt_jobs (tenant_id, fun, started_at DESC);

CREATE TABLE salt_job_returns (
    tenant_id UUID NOT NULL,
    jid VARCHAR(255) NOT NULL,
    minion_id VARCHAR(255) NOT NULL,
    fun VARCHAR(255),
    fun_args JSONB,
    success BOOLEAN,
    retcode INTEGER,
    full_ret JSONB NOT NULL,            -- what get_jid answers: return, retcode, success, out
    truncated BOOLEAN NOT NULL DEFAULT false,
    returned_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, jid, minion_id)
);
CREATE INDEX idx_salt_job_returns_minion ON salt_job_returns (tenant_id, minion_id, returned_at DESC);
CREATE INDEX idx_salt_job_returns_fun ON salt_job_returns (tenant_id, fun, returned_at DESC);

CREATE TABLE salt_bus_events (
    tenant_id UUID NOT NULL,
    id UUID NOT NULL,                   -- time-ordered, generated when the event is spooled
    tag TEXT NOT NULL,
    data JSONB NOT NULL,
    master_id VARCHAR(255),
    truncated BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX idx_salt_bus_events_time ON salt_bus_events (tenant_id, created_at);
CREATE INDEX idx_salt_bus_events_tag ON salt_bus_events (tenant_id, tag text_pattern_ops, created_at);

-- clean_old_jobs moves expired rows here when serverflow:returner:archive is true.
CREATE TABLE salt_jobs_archive (LIKE salt_jobs INCLUDING DEFAULTS, PRIMARY KEY (tenant_id, jid));
CREATE TABLE salt_job_returns_archive (LIKE salt_job_returns INCLUDING DEFAULTS,
                                       PRIMARY KEY (tenant_id, jid, minion_id));
CREATE TABLE salt_bus_events_archive (LIKE salt_bus_events INCLUDING DEFAULTS,
                                      PRIMARY KEY (tenant_id, id));

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['salt_jobs', 'salt_job_returns', 'salt_bus_events',
                             'salt_jobs_archive', 'salt_job_returns_archive',
                             'salt_bus_events_archive'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation_%s ON %I '
            'USING (tenant_id = serverflow_current_tenant()) '
            'WITH CHECK (tenant_id = serverflow_current_tenant())', t, t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO serverflow_app', t);
    END LOOP;
END
$$;

-- Sorted union of two minion lists (save_minions merges, like local_cache).
CREATE FUNCTION serverflow_text_union(a TEXT[], b TEXT[]) RETURNS TEXT[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT COALESCE(array_agg(DISTINCT x ORDER BY x), '{}') FROM unnest(a || b) AS x
$$;

-- Progress of an execution from its returns; states set by someone else are kept.
CREATE FUNCTION serverflow_execution_status(current_status TEXT, expected INTEGER,
                                            got INTEGER, failed BOOLEAN) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN current_status IS NOT NULL AND current_status NOT IN ('pending', 'running')
            THEN current_status
        WHEN expected > 0 AND got >= expected
            THEN CASE WHEN failed THEN 'failed' ELSE 'completed' END
        ELSE 'running'
    END
$$;

-- An execution row and its job's returns meet whichever arrives first: inserting the
-- row (or setting its job_id) folds in the returns already stored, and the returner
-- touches job_id after storing new returns.
CREATE FUNCTION serverflow_link_execution() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    agg RECORD;
    expected INTEGER;
BEGIN
    IF NEW.job_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT jsonb_object_agg(r.minion_id, r.full_ret) AS results, count(*)::int AS got,
           COALESCE(bool_or(r.success IS FALSE), false) AS failed
      INTO agg
      FROM salt_job_returns r
     WHERE r.tenant_id = NEW.tenant_id AND r.jid = NEW.job_id;
    IF agg.got = 0 THEN
        RETURN NEW;
    END IF;
    SELECT NULLIF(cardinality(j.minions), 0) INTO expected
      FROM salt_jobs j WHERE j.tenant_id = NEW.tenant_id AND j.jid = NEW.job_id;
    IF expected IS NULL AND jsonb_typeof(NEW.targets) = 'array' THEN
        expected := jsonb_array_length(NEW.targets);
    END IF;
    NEW.results := COALESCE(NEW.results, '{}'::jsonb) || agg.results;
    NEW.status := serverflow_execution_status(NEW.status, COALESCE(expected, 0), agg.got,
                                              agg.failed);
    NEW.started_at := COALESCE(NEW.started_at,
        (SELECT j.started_at FROM salt_jobs j
          WHERE j.tenant_id = NEW.tenant_id AND j.jid = NEW.job_id));
    IF NEW.status IN ('completed', 'failed') THEN
        NEW.completed_at := COALESCE(NEW.completed_at, now());
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER executions_link_returns
    BEFORE INSERT OR UPDATE OF job_id ON executions
    FOR EACH ROW EXECUTE FUNCTION serverflow_link_execution();

GRANT EXECUTE ON FUNCTION serverflow_text_union(TEXT[], TEXT[]) TO serverflow_app;
GRANT EXECUTE ON FUNCTION serverflow_execution_status(TEXT, INTEGER, INTEGER, BOOLEAN)
    TO serverflow_app;
GRANT EXECUTE ON FUNCTION serverflow_link_execution() TO serverflow_app;
