"""Security: who is asking, what they may do, what happened, and what nobody may see.

=============  ==================================================================
identity       users, sign-in (argon2id, lockout, MFA), the identity behind a Salt user
passwords      argon2id hashing, generated passwords, password policy
mfa            TOTP enrolment/verification (pyotp), one-time recovery codes
apikeys        API keys for automation (hashed, role-scoped, revocable, last use)
tokens         JWT access tokens (15 min) and rotating refresh tokens (reuse detection)
roles          owner/admin/operator/viewer -> ask/propose/approve/administer; ``authorize``
audit          the append-only, hash-chained audit trail: append, search, export, verify
masking        secrets masked before any LLM prompt, log line or audit record
ratelimit      Redis sliding-window limits per user and tenant (RATE001)
admin          what the admin runners do (checks + change + audit in one transaction)
settings       ``serverflow:security:`` defaults and derived keys
=============  ==================================================================

The Salt side is ``_auth/serverflow.py`` (the eauth module) and the admin
functions at the end of ``_runners/serverflow.py``.
"""

from salt_ext.security.identity import Principal
from salt_ext.security.masking import SecretMaskingFilter, mask, mask_pillar, mask_return, mask_text
from salt_ext.security.roles import authorize, authorize_plan

__all__ = ["Principal", "SecretMaskingFilter", "authorize", "authorize_plan", "mask", "mask_pillar",
           "mask_return", "mask_text"]
