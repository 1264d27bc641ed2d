-- ServerFlow core schema (spec §4.1), tenant-isolated by row-level security.
-- The product connects as serverflow_app (not the owner) and sets app.tenant_id
-- per transaction; a missing setting reads as NULL and matches no row.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'serverflow_app') THEN
        CREATE ROLE serverflow_app NOLOGIN;
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION serverflow_current_tenant() RETURNS uuid
LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid
$$;

CREATE TABLE tenants (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name VARCHAR(255) NOT NULL,
    slug VARCHAR(100) UNIQUE NOT NULL,
    plan VARCHAR(50) NOT NULL DEFAULT 'free',
    settings JSONB DEFAULT '{}',
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE users (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    email VARCHAR(255) NOT NULL,
    password_hash VARCHAR(255),
    name VARCHAR(255),
    role VARCHAR(50) NOT NULL DEFAULT 'member',
    settings JSONB DEFAULT '{}',
    last_login_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    UNIQUE (tenant_id, email)
);

CREATE TABLE servers (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    minion_id VARCHAR(255) NOT NULL,
    hostname VARCHAR(255),
    ip_addresses JSONB DEFAULT '[]',
    os VARCHAR(100),
    os_family VARCHAR(50),
    os_release VARCHAR(100),
    kernel VARCHAR(100),
    cpu_count INTEGER,
    memory_total BIGINT,
    grains JSONB DEFAULT '{}',
    tags JSONB DEFAULT '[]',
    services JSONB DEFAULT '[]',
    status VARCHAR(50) DEFAULT 'unknown',
    last_seen_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    UNIQUE (tenant_id, minion_id)
);
CREATE INDEX idx_servers_tenant ON servers(tenant_id);
CREATE INDEX idx_servers_status ON servers(tenant_id, status);
CREATE INDEX idx_servers_tags ON servers USING GIN(tags);

CREATE TABLE conversations (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id UUID REFERENCES users(id) ON DELETE CASCADE,
    title VARCHAR(255),
    context JSONB DEFAULT '{}',
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_conversations_tenant ON conversations(tenant_id, updated_at DESC);

-- tenant_id is carried on messages too, so isolation needs no join.
CREATE TABLE messages (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id UUID NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role VARCHAR(20) NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content TEXT NOT NULL,
    metadata JSONB DEFAULT '{}',
    tokens_used INTEGER,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_messages_conversation ON messages(conversation_id, created_at);

CREATE TABLE executions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id UUID REFERENCES users(id),
    conversation_id UUID REFERENCES conversations(id),
    job_id VARCHAR(255),
    targets JSONB NOT NULL,
    module VARCHAR(255) NOT NULL,
    args JSONB DEFAULT '{}',
    results JSONB,
    status VARCHAR(50) NOT NULL DEFAULT 'pending',
    started_at TIMESTAMPTZ,
    completed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_executions_tenant ON executions(tenant_id, created_at DESC);
CREATE INDEX idx_executions_status ON executions(tenant_id, status);
CREATE INDEX idx_executions_job ON executions(job_id);

CREATE TABLE audit_logs (
    id BIGSERIAL PRIMARY KEY,
    tenant_id UUID NOT NULL,
    user_id UUID,
    action VARCHAR(100) NOT NULL,
    resource_type VARCHAR(100),
    resource_id VARCHAR(255),
    details JSONB DEFAULT '{}',
    ip_address INET,
    user_agent TEXT,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_audit_tenant_time ON audit_logs(tenant_id, created_at DESC);

CREATE TABLE alerts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    server_id UUID REFERENCES servers(id) ON DELETE CASCADE,
    severity VARCHAR(20) NOT NULL,
    title VARCHAR(255) NOT NULL,
    description TEXT,
    metric_name VARCHAR(100),
    metric_value NUMERIC,
    threshold NUMERIC,
    status VARCHAR(50) DEFAULT 'active',
    acknowledged_by UUID REFERENCES users(id),
    acknowledged_at TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_alerts_tenant_status ON alerts(tenant_id, status, created_at DESC);

-- Row-level security: every tenant table, reads and writes alike.
ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_tenants ON tenants
    USING (id = serverflow_current_tenant())
    WITH CHECK (id = serverflow_current_tenant());

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'servers', 'conversations', 'messages',
                             'executions', 'audit_logs', 'alerts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation_%s ON %I '
            'USING (tenant_id = serverflow_current_tenant()) '
            'WITH CHECK (tenant_id = serverflow_current_tenant())', t, t);
    END LOOP;
END
$$;

GRANT USAGE ON SCHEMA public TO serverflow_app;
GRANT SELECT, INSERT, UPDATE ON tenants TO serverflow_app;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON users, servers, conversations, messages, executions, alerts TO serverflow_app;
-- The audit trail is append-only for the application.
GRANT SELECT, INSERT ON audit_logs TO serverflow_app;
GRANT USAGE, SELECT ON SEQUENCE audit_logs_id_seq TO serverflow_app;
GRANT EXECUTE ON FUNCTION serverflow_current_tenant() TO serverflow_app;
