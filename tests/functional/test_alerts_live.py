"""Alerts end to end: a minion stops -> the engine raises a stored alert -> it reaches the live
stream (SSE) of the users of that tenant who may see that server, and nobody else; it comes
back -> the alert is resolved the same way."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid

import pytest

from salt_ext.db import Database
from salt_ext.devstack import salt_daemons, stack
from tests.functional.api_stack import start_api_stack
from tests.functional.saltcli import added_minion, wait_for

pytestmark = pytest.mark.functional

MINION = "sf-alert-1"


class Stream:
    """A live /v1/events subscriber reading frames in a thread until closed."""

    def __init__(self, base: str, token: str, seconds: int = 150) -> None:
        self.events: list[tuple[str, dict]] = []
        req = urllib.request.Request(f"{base}/v1/events?max_seconds={seconds}",
                                     headers={"Authorization": f"Bearer {token}"})
        self.resp = urllib.request.urlopen(req, timeout=seconds + 30)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if not line:
                    if "event" in fields:
                        self.events.append((fields["event"], json.loads(fields["data"])))
                    fields = {}
                elif not line.startswith(":") and ": " in line:
                    key, value = line.split(": ", 1)
                    fields[key] = value
        except Exception:  # noqa: BLE001 - the stream ends when the test closes it (or the server stops)
            pass

    def alerts(self, minion: str, state: str) -> list[dict]:
        return [d for kind, d in self.events if kind == "alert" and d.get("minion_id") == minion
                and d.get("state") == state]

    def close(self) -> None:
        self.resp.close()


@pytest.fixture(scope="module")
def api(salt_stack):
    return start_api_stack(salt_stack)


@pytest.fixture
def alert_minion(salt_stack):
    with added_minion(salt_stack, MINION, ["test", "alerting"]) as listener:
        salt_daemons.start_minion(salt_stack, MINION)
        assert listener.wait(f"serverflow/server/{MINION}/connected", 90) is not None
        yield salt_stack


def test_offline_minion_alert_reaches_its_tenant_and_scope_only(api, alert_minion):
    layout = alert_minion
    settings = stack.settings_for(layout)
    admin_token, scoped_token = api.login("admin")["access_token"], api.login("scoped")["access_token"]
    assert wait_for(lambda: api.request("GET", f"/v1/servers/{MINION}", token=admin_token).status == 200, 30)
    admin, scoped = Stream(api.base, admin_token), Stream(api.base, scoped_token)
    try:
        time.sleep(1)
        # an alert announced for another tenant (same bus) never reaches this tenant's users
        import salt.config
        import salt.utils.event

        opts = salt.config.master_config(str(layout.etc / "master"))
        bus = salt.utils.event.get_master_event(opts, opts["sock_dir"], listen=False)
        foreign = str(uuid.uuid4())
        bus.fire_event({"tenant_id": str(uuid.uuid4()), "minion_id": MINION, "severity": "critical",
                        "title": "another tenant's alert"}, f"serverflow/alert/{foreign}/triggered")
        bus.destroy()

        salt_daemons.stop_minion(layout, MINION)
        raised = wait_for(lambda: admin.alerts(MINION, "triggered"), 90)
        assert raised, f"no alert reached the admin stream: {admin.events[-5:]}"
        alert = raised[0]
        assert alert["severity"] == "critical" and MINION in alert["title"] and alert["metric_name"] == "presence"
        assert alert["alert_id"] != foreign
        # stored, tenant-scoped, listed by the API for the admin, not for the web-scoped operator
        listed = api.request("GET", "/v1/alerts", token=admin_token).json()["data"]
        assert any(a["id"] == alert["alert_id"] and a["status"] == "active" for a in listed)
        scoped_list = api.request("GET", "/v1/alerts?status=all",
                                  token=scoped_token).json()["data"]
        assert all(a["minion_id"] != MINION for a in scoped_list)
        db = Database.from_settings(settings)
        try:
            with db.tenant(settings["tenant_id"]) as conn:
                assert conn.execute("SELECT status FROM alerts WHERE id = %s",
                                    (alert["alert_id"],)).fetchone()["status"] == "active"
            with db.tenant(str(uuid.uuid4())) as conn:  # row-level security: other tenants see nothing
                assert conn.execute("SELECT count(*) AS n FROM alerts").fetchone()["n"] == 0
        finally:
            db.close()

        salt_daemons.start_minion(layout, MINION)
        resolved = wait_for(lambda: admin.alerts(MINION, "resolved"), 90)
        assert resolved and resolved[0]["alert_id"] == alert["alert_id"]
        assert not any(a["id"] == alert["alert_id"] for a in api.request(
            "GET", "/v1/alerts", token=admin_token).json()["data"])
        time.sleep(1)
        assert not [d for _, d in admin.events if d.get("alert_id") == foreign]
        assert not [d for kind, d in scoped.events if kind == "alert" and d.get("minion_id") == MINION]
    finally:
        admin.close()
        scoped.close()
