"""Two-factor authentication in the web app, in headless Chromium against the real stack:
enrol from the Security view (otpauth URI, secret, recovery codes; confirm with a pyotp code),
sign out, sign in again: the password alone asks for the code, the password + a pyotp code
signs in."""

from __future__ import annotations

import json
import subprocess
import time

import pyotp
import pytest

from salt_ext.db import Database
from salt_ext.devstack import stack
from salt_ext.security import identity
from tests.functional.api_stack import PASSWORD, start_api_stack

pytestmark = pytest.mark.functional

EMAIL = "mfa-web@api.test"


def test_enrol_then_sign_in_with_a_code(browser_ready, salt_stack):
    api = start_api_stack(salt_stack)
    settings = stack.settings_for(salt_stack)
    db = Database.from_settings(settings)
    try:
        with db.tenant(settings["tenant_id"]) as conn:
            user = identity.get_user(conn, EMAIL)
            if user is None:
                identity.add_user(conn, settings, EMAIL, "operator", name="mfa web", password=PASSWORD)
            else:  # a rerun on a kept database: start without MFA
                from salt_ext.security import mfa

                mfa.disable(conn, str(user["id"]))
    finally:
        db.close()
    proc = subprocess.Popen(["node", str(browser_ready / "mfa.mjs"), api.base,
                             json.dumps({"email": EMAIL, "password": PASSWORD})],
                            cwd=browser_ready, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    used_step = None
    result = None
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        msg = json.loads(line)
        if "need_code" not in msg:
            result = msg
            break
        totp = pyotp.TOTP(msg["need_code"])
        # a code is accepted once: the sign-in code must come from a later 30 s step
        while used_step is not None and int(time.time() // totp.interval) <= used_step:
            assert time.monotonic() < deadline
            time.sleep(0.5)
        used_step = int(time.time() // totp.interval)
        proc.stdin.write(totp.now() + "\n")
        proc.stdin.flush()
    proc.wait(60)
    assert result is not None, proc.stderr.read()
    assert result["ok"], result.get("error")
    assert result["uri"].startswith("otpauth://totp/") and "secret=" in result["uri"]
    assert result["recovery_codes"] >= 5
    assert "Two-factor authentication is on" in result["enrolled_text"] and result["secret_cleared"]
    assert "AUTH004" in result["mfa_prompt"] and result["signed_in_without_code"] == 0
    assert result["signed_in"] and result["dialogs"] == [] and result["console_errors"] == []
