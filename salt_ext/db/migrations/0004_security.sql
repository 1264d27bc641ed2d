-- Identity, API keys, refresh tokens and the tamper-evident audit trail (issue #5, spec §6.1).
--
-- Secrets at rest:
--   users.password_hash        argon2id PHC string (salted, parameters inside)
--   users.mfa_secret_enc       the TOTP secret, AES-256-GCM encrypted with a key derived from
--                              serverflow:security:secret_key and bound to tenant+user (it must
--                              be recoverable to check codes, so it cannot be hashed)
--   users.mfa_recovery_hashes  HMAC-SHA256 (peppered with a derived key) of each unused
--                              one-time recovery code; a used code is removed
--   api_keys.secret_hash       HMAC-SHA256 of the key's secret part (high-entropy, peppered)
--   refresh_tokens.token_hash  SHA-256 of the opaque refresh token (high-entropy)
-- No plaintext secret is stored anywhere.

-- -- users ---------------------------------------------------------------------------------
ALTER TABLE users
    ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN disabled_at TIMESTAMPTZ,
    ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN locked_until TIMESTAMPTZ,
    ADD COLUMN last_failed_login_at TIMESTAMPTZ,
    ADD COLUMN password_changed_at TIMESTAMPTZ,
    ADD COLUMN mfa_enabled BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN mfa_secret_enc TEXT,
    ADD COLUMN mfa_pending_secret_enc TEXT,
    ADD COLUMN mfa_last_step BIGINT,
    ADD COLUMN mfa_recovery_hashes TEXT[] NOT NULL DEFAULT '{}',
    ADD COLUMN mfa_pending_recovery_hashes TEXT[];
-- One account per e-mail address and tenant, whatever its case.
CREATE UNIQUE INDEX idx_users_tenant_email_ci ON users (tenant_id, lower(email));

-- -- API keys for automation ------------------------------------------------------------------
-- The key handed out once is "sfk_<key_id>_<secret>"; key_id is public (shown in listings,
-- audit records), only an HMAC of the secret is kept.
CREATE TABLE api_keys (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key_id VARCHAR(32) NOT NULL,
    secret_hash VARCHAR(64) NOT NULL,
    name VARCHAR(255),
    role VARCHAR(50) NOT NULL,
    scope_tags JSONB NOT NULL DEFAULT '[]',
    created_by TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    revoked_by TEXT,
    UNIQUE (tenant_id, key_id)
);
CREATE INDEX idx_api_keys_user ON api_keys (tenant_id, user_id);

-- -- refresh tokens (rotation with reuse detection) ---------------------------------------------
-- Every sign-in starts a family; each refresh marks its token used and issues a successor in
-- the same family. Presenting a used token again revokes the whole family.
CREATE TABLE refresh_tokens (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id UUID NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    user_id UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    family_id UUID NOT NULL,
    parent_id UUID,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    issued_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    family_expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    revoked_reason VARCHAR(64),
    ip_address INET,
    user_agent TEXT
);
CREATE INDEX idx_refresh_tokens_family ON refresh_tokens (tenant_id, family_id);
CREATE INDEX idx_refresh_tokens_user ON refresh_tokens (tenant_id, user_id);

ALTER TABLE api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_api_keys ON api_keys
    USING (tenant_id = serverflow_current_tenant())
    WITH CHECK (tenant_id = serverflow_current_tenant());
ALTER TABLE refresh_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_refresh_tokens ON refresh_tokens
    USING (tenant_id = serverflow_current_tenant())
    WITH CHECK (tenant_id = serverflow_current_tenant());

GRANT SELECT, INSERT, UPDATE ON api_keys TO serverflow_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON refresh_tokens TO serverflow_app;

-- -- audit_logs: hash chain per tenant, and a trigger as the second wall -------------------------
-- hash = sha256(prev_hash || canonical(row)); prev_hash of a tenant's first row is 64 zeros.
-- canonical(row) is PostgreSQL's own jsonb text of the row's fields, so it is exactly
-- reproducible from what is stored (`salt-run serverflow.audit_verify` recomputes it in Python).
ALTER TABLE audit_logs
    ADD COLUMN prev_hash CHAR(64),
    ADD COLUMN hash CHAR(64);
CREATE INDEX idx_audit_tenant_id ON audit_logs (tenant_id, id);
CREATE INDEX idx_audit_tenant_action ON audit_logs (tenant_id, action, created_at DESC);

CREATE OR REPLACE FUNCTION serverflow_audit_canonical(
    p_id BIGINT, p_tenant UUID, p_user UUID, p_action TEXT, p_resource_type TEXT,
    p_resource_id TEXT, p_details JSONB, p_ip INET, p_user_agent TEXT, p_created_at TIMESTAMPTZ
) RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_array(
        p_id, p_tenant::text, p_user::text, p_action, p_resource_type, p_resource_id,
        p_details, p_ip::text, p_user_agent,
        to_char(p_created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text
$$;

-- BEFORE INSERT: serialise the tenant's chain (advisory lock held to commit), take the id
-- only now so ids follow chain order, stamp the time, link to the previous row and hash.
-- SECURITY DEFINER: the link is computed the same way whoever inserts.
CREATE OR REPLACE FUNCTION serverflow_audit_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    previous CHAR(64);
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('serverflow.audit:' || NEW.tenant_id::text, 0));
    NEW.id := nextval(pg_get_serial_sequence('public.audit_logs', 'id'));
    NEW.created_at := clock_timestamp();
    NEW.details := COALESCE(NEW.details, '{}'::jsonb);
    SELECT a.hash INTO previous FROM audit_logs a
     WHERE a.tenant_id = NEW.tenant_id ORDER BY a.id DESC LIMIT 1;
    NEW.prev_hash := COALESCE(previous, repeat('0', 64));
    NEW.hash := encode(digest(NEW.prev_hash || serverflow_audit_canonical(
        NEW.id, NEW.tenant_id, NEW.user_id, NEW.action, NEW.resource_type, NEW.resource_id,
        NEW.details, NEW.ip_address, NEW.user_agent, NEW.created_at), 'sha256'), 'hex');
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION serverflow_audit_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_logs is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'audit rows are never changed or removed; append a correcting entry instead';
END
$$;

-- Rows written before this migration join the chain, in id order, before the walls go up.
DO $$
DECLARE
    r RECORD;
    previous CHAR(64);
    current_tenant UUID;
BEGIN
    FOR r IN SELECT * FROM audit_logs ORDER BY tenant_id, id LOOP
        IF current_tenant IS DISTINCT FROM r.tenant_id THEN
            current_tenant := r.tenant_id;
            previous := repeat('0', 64);
        END IF;
        UPDATE audit_logs SET details = COALESCE(r.details, '{}'::jsonb), prev_hash = previous,
               hash = encode(digest(previous || serverflow_audit_canonical(
                   r.id, r.tenant_id, r.user_id, r.action, r.resource_type, r.resource_id,
                   COALESCE(r.details, '{}'::jsonb), r.ip_address, r.user_agent, r.created_at),
                   'sha256'), 'hex')
         WHERE id = r.id
        RETURNING hash INTO previous;
    END LOOP;
END
$$;

CREATE TRIGGER audit_logs_chain BEFORE INSERT ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION serverflow_audit_chain();
CREATE TRIGGER audit_logs_no_update_delete BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION serverflow_audit_immutable();
CREATE TRIGGER audit_logs_no_truncate BEFORE TRUNCATE ON audit_logs
    FOR EACH STATEMENT EXECUTE FUNCTION serverflow_audit_immutable();

REVOKE ALL ON FUNCTION serverflow_audit_chain() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION serverflow_audit_canonical(BIGINT, UUID, UUID, TEXT, TEXT, TEXT, JSONB, INET, TEXT, TIMESTAMPTZ)
    TO serverflow_app;
