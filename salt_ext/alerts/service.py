"""The engine side of alerts: apply the rules, store, and announce on the master bus.

Runs on one worker thread of its own (``Engine``), so the raise and the resolve of
one minion keep their order. A database failure loses the stored row, never the
live event: the alert is still announced (``stored: false``).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Callable

from salt_ext.alerts import rules, store

log = logging.getLogger(__name__)


class AlertService:
    def __init__(self, settings: dict[str, Any], db: Any, fire: Callable[[str, dict[str, Any]], None]) -> None:
        self.settings = settings
        self.conf = settings["alerts"]
        self.tenant_id = str(settings["tenant_id"])
        self.db = db
        self.fire = fire

    @property
    def enabled(self) -> bool:
        return bool(self.conf.get("enabled", True))

    def on_presence(self, minion_id: str, old: str, new: str) -> None:
        crossing = rules.for_presence(minion_id, old, new, self.conf["offline_severity"])
        if crossing is not None:
            self.apply(crossing)

    def on_retired(self, minion_id: str) -> None:
        """The minion's key was deleted: resolve every alert still active for it."""
        with self.db.tenant(self.tenant_id) as conn:
            metrics = [r["metric_name"] for r in conn.execute(
                "SELECT DISTINCT a.metric_name FROM alerts a JOIN servers s ON s.id = a.server_id"
                " WHERE s.minion_id = %s AND a.status = 'active'", (minion_id,)).fetchall()]
        for metric in metrics:
            self.apply(rules.Crossing(minion_id, metric, False, title=f"{minion_id} was removed from the master",
                                      description=f"the key of {minion_id} was deleted"))

    def on_return(self, minion_id: str, function: str, result: Any) -> None:
        if function not in rules.WATCHED_FUNCTIONS:
            return
        cores = None
        if function == "status.loadavg":
            with self.db.tenant(self.tenant_id) as conn:
                row = conn.execute("SELECT cpu_count FROM servers WHERE minion_id = %s", (minion_id,)).fetchone()
            cores = row["cpu_count"] if row else None
        for crossing in rules.for_return(minion_id, function, result, cores=cores,
                                         disk_percent=float(self.conf["disk_percent"]),
                                         load_per_core=float(self.conf["load_per_core"])):
            self.apply(crossing)

    def apply(self, crossing: rules.Crossing) -> None:
        try:
            with self.db.tenant(self.tenant_id) as conn:
                if crossing.active:
                    found = store.raise_alert(conn, self.tenant_id, crossing)
                    changed = [found] if found else []
                else:
                    changed = store.resolve_alerts(conn, crossing)
        except Exception as exc:  # the database is down: announce anyway
            log.warning("serverflow: could not store the alert %r: %s", crossing.title, exc)
            if not crossing.active:
                return  # nothing known to resolve
            changed = [{"id": str(uuid.uuid4()), "minion_id": crossing.minion_id, "server_id": None,
                        "severity": crossing.severity, "title": crossing.title,
                        "description": crossing.description, "metric_name": crossing.metric,
                        "metric_value": crossing.value, "threshold": crossing.threshold,
                        "status": "active", "stored": False}]
        verb = "triggered" if crossing.active else "resolved"
        for alert in changed:
            log.info("serverflow: alert %s %s: %s", alert["id"], verb, alert["title"])
            if not crossing.active:
                alert = {**alert, "resolution": crossing.title}
            self.fire(f"serverflow/alert/{alert['id']}/{verb}",
                      {"tenant_id": self.tenant_id, "stored": alert.get("stored", True), **alert})
