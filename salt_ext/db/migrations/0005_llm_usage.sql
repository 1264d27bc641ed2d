-- LLM token accounting (salt_ext.llm.budget): one row per provider call, with its cost estimate.
-- Per message: message_id (also summed into messages.tokens_used); per conversation and
-- per tenant: sums over these rows (salt_ext.llm.budget.usage_totals).

CREATE TABLE llm_usage (
    id BIGSERIAL PRIMARY KEY,
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    conversation_id UUID REFERENCES conversations(id) ON DELETE CASCADE,
    message_id UUID REFERENCES messages(id) ON DELETE SET NULL,
    request_id TEXT,
    purpose VARCHAR(20) NOT NULL,          -- plan | answer | chat
    provider VARCHAR(100) NOT NULL,
    model VARCHAR(200) NOT NULL,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd NUMERIC(12, 6) NOT NULL DEFAULT 0,
    latency_ms REAL,
    cached BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_llm_usage_tenant ON llm_usage(tenant_id, created_at DESC);
CREATE INDEX idx_llm_usage_conversation ON llm_usage(conversation_id, created_at);
CREATE INDEX idx_llm_usage_message ON llm_usage(message_id);

ALTER TABLE llm_usage ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_llm_usage ON llm_usage
    USING (tenant_id = serverflow_current_tenant())
    WITH CHECK (tenant_id = serverflow_current_tenant());
-- Accounting is append-only for the application.
GRANT SELECT, INSERT ON llm_usage TO serverflow_app;
GRANT USAGE, SELECT ON SEQUENCE llm_usage_id_seq TO serverflow_app;
