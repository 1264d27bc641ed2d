-- Proposed write actions: what the assistant suggests and a person must approve.
-- The approval flow (approver, four-eyes, expiry, hash check) builds on this table.

CREATE TABLE actions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id UUID REFERENCES conversations(id) ON DELETE CASCADE,
    message_id UUID REFERENCES messages(id) ON DELETE SET NULL,
    requested_by TEXT,
    function VARCHAR(255) NOT NULL,
    targets JSONB NOT NULL,
    args JSONB NOT NULL DEFAULT '{}',
    label TEXT,
    reason TEXT,
    status VARCHAR(30) NOT NULL DEFAULT 'proposed',
    preview JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ
);
CREATE INDEX idx_actions_tenant_status ON actions(tenant_id, status, created_at DESC);
CREATE INDEX idx_actions_conversation ON actions(conversation_id, created_at);

ALTER TABLE actions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_actions ON actions
    USING (tenant_id = serverflow_current_tenant())
    WITH CHECK (tenant_id = serverflow_current_tenant());
GRANT SELECT, INSERT, UPDATE ON actions TO serverflow_app;

-- Who asked, when users are not yet database rows (CLI, eauth names).
ALTER TABLE conversations ADD COLUMN created_by TEXT;
ALTER TABLE executions ADD COLUMN requested_by TEXT;
ALTER TABLE executions ADD COLUMN message_id UUID REFERENCES messages(id) ON DELETE SET NULL;
