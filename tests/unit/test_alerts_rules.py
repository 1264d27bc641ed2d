"""Alert rules (pure) and the hub's tenant filter for alert events."""

from __future__ import annotations

from salt_ext.alerts import rules
from salt_ext.api.events import EventHub, Visibility


def test_presence_offline_raises_back_online_resolves_first_sight_is_quiet():
    down = rules.for_presence("web-1", "online", "offline")
    assert down.active and down.metric == rules.PRESENCE and down.severity == "critical" and "offline" in down.title
    up = rules.for_presence("web-1", "offline", "online")
    assert up is not None and not up.active
    assert rules.for_presence("web-1", "unknown", "online") is None


def test_disk_over_the_limit_raises_under_resolves():
    usage = {"/": {"capacity": "93%", "filesystem": "/dev/sda1"}, "/boot": {"capacity": "40%"}, "bad": "x"}
    found = {c.metric: c for c in rules.for_return("db-1", "disk.usage", usage, cores=2,
                                                   disk_percent=90, load_per_core=1.0)}
    assert found["disk:/"].active and found["disk:/"].value == 93 and found["disk:/"].threshold == 90
    assert not found["disk:/boot"].active and "bad" not in str(found)
    assert rules.for_disk("db-1", {"/": {"capacity": "99%"}}, 90)[0].severity == "critical"


def test_load_against_cores():
    assert rules.for_load("db-1", {"5-min": 3.5}, 2, 1.0)[0].active
    assert not rules.for_load("db-1", {"5-min": 1.5}, 2, 1.0)[0].active
    assert rules.for_load("db-1", {"5-min": 9}, None, 1.0) == []
    assert rules.for_return("db-1", "test.ping", True, cores=2, disk_percent=90, load_per_core=1) == []


class _Who:
    email, permissions, tags = "a@x", frozenset({"ask"}), ()


def test_hub_drops_alerts_of_another_tenant():
    hub = EventHub(Visibility(lambda c: None, lambda a: None, lambda m: set()), tenant_id="t-1")
    assert hub.publish("serverflow/alert/a1/triggered", {"tenant_id": "t-2", "minion_id": "m"}) == []
    made = hub.publish("serverflow/alert/a2/triggered", {"tenant_id": "t-1", "minion_id": "m", "title": "m is offline"})
    assert made[0].type == "alert" and made[0].data["minion_id"] == "m" and made[0].data["state"] == "triggered"
    assert hub.visibility.visible(_Who(), made[0])
