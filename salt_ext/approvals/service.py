"""Approve, reject and run proposed actions.

The checks, in order, all on the master side: the action exists in this tenant
and is still ``proposed``; it has not expired; the approver's role may approve
and may act on every target; four-eyes (approver != requester) when configured;
the stored action still hashes to what was proposed; the policy still allows it.
Only then is it claimed (``proposed -> approved`` in one UPDATE, so it runs once)
and executed with the stored function, arguments and targets.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from salt_ext.approvals.model import action_hash
from salt_ext.chat import store as chat_store
from salt_ext.errors import ErrorInfo, ServerFlowError
from salt_ext.pipeline import PlanResult, PlanStep, check_plan
from salt_ext.inventory import store as inventory_store
from salt_ext.registry import salt_call
from salt_ext.security import audit as audit_log
from salt_ext.security.identity import Principal
from salt_ext.security.roles import authorizer

log = logging.getLogger(__name__)

Authorize = Callable[[Principal, str, list[str]], "ErrorInfo | None"]
Fire = Callable[[str, dict[str, Any]], None]


class ApprovalService:
    def __init__(self, settings: dict[str, Any], db: Any, client_factory: Callable[[], Any], *,
                 authorize: Authorize | None = None, fire: Fire | None = None,
                 audit: Callable[..., Any] | None = None) -> None:
        self.settings = settings
        self.tenant_id = settings["tenant_id"]
        self.db = db
        self.client_factory = client_factory
        # roles and tag scopes against this tenant's inventory (EXEC005 outside it)
        self.authorize = authorize or authorizer(self._inventory)
        self.fire = fire or (lambda tag, data: None)
        self.audit = audit or audit_log.Auditor(db, self.tenant_id)
        self.four_eyes = bool(settings["approvals"]["four_eyes"])
        self.timeout = float(settings["approvals"]["execute_timeout"])

    def _inventory(self) -> list[Any]:
        with self.db.tenant(self.tenant_id) as conn:
            return inventory_store.list_servers(conn)[0]

    # -- reads ------------------------------------------------------------------------
    def pending(self) -> list[dict[str, Any]]:
        with self.db.tenant(self.tenant_id) as conn:
            conn.execute("UPDATE actions SET status = 'expired' WHERE status = 'proposed'"
                         " AND expires_at < now()")
            rows = conn.execute(
                "SELECT id, conversation_id, requested_by, function, targets, args, label, reason,"
                " preview, created_at, expires_at FROM actions WHERE status = 'proposed'"
                " ORDER BY created_at").fetchall()
        return [chat_store.clean_row(r) for r in rows]

    def _load(self, conn: Any, action_id: str) -> dict[str, Any]:
        row = conn.execute("SELECT *, expires_at < now() AS expired FROM actions WHERE id::text = %s"
                           " FOR UPDATE", (str(action_id),)).fetchone()
        if row is None:
            raise ServerFlowError("EXEC004", f"no pending action {action_id}")
        return row

    # -- decisions ----------------------------------------------------------------------
    def reject(self, action_id: str, actor: Principal, reason: str = "") -> dict[str, Any]:
        with self.db.tenant(self.tenant_id) as conn:
            row = self._load(conn, action_id)
            if row["status"] != "proposed":
                raise ServerFlowError("EXEC004", f"action {action_id} is {row['status']}, not pending")
            denied = self.authorize(actor, "approve", list(row["targets"]))
            if denied:
                raise ServerFlowError(denied.code, denied.message)
            conn.execute("UPDATE actions SET status = 'rejected', decided_by = %s, decided_at = now(),"
                         " decision_reason = %s WHERE id = %s", (actor.name, reason[:500], row["id"]))
        self.audit(action="action.rejected", user=actor.name, resource_id=str(row["id"]),
                   details={"function": row["function"], "targets": row["targets"], "reason": reason})
        self.fire(f"serverflow/action/{row['id']}/rejected", {"action_id": str(row["id"]), "by": actor.name})
        return {"action_id": str(row["id"]), "status": "rejected"}

    def approve(self, action_id: str, actor: Principal) -> dict[str, Any]:
        """Check, claim and run an action; returns its result (errors raise ServerFlowError)."""
        with self.db.tenant(self.tenant_id) as conn:
            row = self._load(conn, action_id)
            refusal = self._refusal(row, actor)
            if refusal is not None and row["status"] == "proposed" and row["expired"]:
                conn.execute("UPDATE actions SET status = 'expired' WHERE id = %s", (row["id"],))
            if refusal is None:
                claimed = conn.execute(
                    "UPDATE actions SET status = 'approved', decided_by = %s, decided_at = now()"
                    " WHERE id = %s AND status = 'proposed' RETURNING id",
                    (actor.name, row["id"])).fetchone()
                if claimed is None:
                    refusal = ErrorInfo("EXEC004", f"action {action_id} was decided meanwhile")
        if refusal is not None:
            self.audit(action="action.approval_refused", user=actor.name, resource_id=str(row["id"]),
                       details={"code": refusal.code, "reason": refusal.message})
            raise ServerFlowError(refusal.code, refusal.message)
        self.audit(action="action.approved", user=actor.name, resource_id=str(row["id"]),
                   details={"function": row["function"], "targets": row["targets"], "args": row["args"],
                            "requested_by": row["requested_by"]})
        self.fire(f"serverflow/action/{row['id']}/approved", {"action_id": str(row["id"]), "by": actor.name})
        return self._run(row, actor)

    def _refusal(self, row: dict[str, Any], actor: Principal) -> ErrorInfo | None:
        if row["status"] != "proposed":
            return ErrorInfo("EXEC004", f"action {row['id']} is {row['status']}, not pending; "
                             "an action runs once")
        if row["expired"]:
            return ErrorInfo("EXEC004", f"action {row['id']} expired at {row['expires_at']:%Y-%m-%d %H:%M:%S}"
                             " UTC; ask again to get a fresh proposal")
        targets = list(row["targets"])
        denied = self.authorize(actor, "approve", targets)
        if denied:
            return denied
        if self.four_eyes and row["requested_by"] and row["requested_by"] == actor.name:
            return ErrorInfo("AUTH003", "four-eyes policy: an action must be approved by someone "
                             "other than the person who asked for it")
        expected = action_hash(self.tenant_id, row["function"], targets, dict(row["args"]))
        if row["action_hash"] != expected:
            return ErrorInfo("EXEC004", f"action {row['id']} no longer matches what was proposed "
                             "(function, targets or arguments changed); refusing to run it")
        step = PlanStep(function=row["function"], targets=targets, args=dict(row["args"]))
        checked = check_plan(PlanResult(question="", steps=[step], targets=targets))
        if checked.refused or not checked.steps:
            return checked.error or ErrorInfo("EXEC003", f"{row['function']} is not allowed")
        return None

    def _run(self, row: dict[str, Any], actor: Principal) -> dict[str, Any]:
        call = salt_call(row["function"], dict(row["args"]))
        client = self.client_factory()
        started = time.monotonic()
        try:
            pub = client.run_job(list(row["targets"]), call.fun, arg=call.arg, kwarg=call.kwarg,
                                 tgt_type="list", timeout=self.timeout, listen=True)
            jid = str(pub["jid"]) if pub and pub.get("jid") else None
            returns: dict[str, Any] = {}
            if jid:
                for ret in client.get_iter_returns(jid, pub["minions"], timeout=self.timeout,
                                                   tgt=list(row["targets"]), tgt_type="list"):
                    for minion, data in (ret or {}).items():
                        returns[minion] = {"ret": data.get("ret"), "retcode": data.get("retcode", 0)}
        finally:
            destroy = getattr(client, "destroy", None)
            if destroy:
                destroy()
        missing = sorted(set(row["targets"]) - set(returns))
        ok = bool(jid) and not missing and all(not r.get("retcode") for r in returns.values())
        status = "executed" if ok else "failed"
        result = {"returns": returns, "missing": missing, "duration_ms": round((time.monotonic() - started) * 1000, 1)}
        with self.db.tenant(self.tenant_id) as conn:
            conn.execute("UPDATE actions SET status = %s, executed_at = now(), job_id = %s,"
                         " result = %s::jsonb WHERE id = %s", (status, jid, chat_store.to_json(result), row["id"]))
            execution = chat_store.start_execution(
                conn, self.tenant_id, conversation_id=str(row["conversation_id"]) if row["conversation_id"] else None,
                jid=jid or "", targets=list(row["targets"]), function=row["function"], args=dict(row["args"]),
                requested_by=actor.name)
            chat_store.finish_execution(conn, execution, status="completed" if ok else "failed",
                                        results={m: r["ret"] for m, r in returns.items()})
        self.audit(action="action.executed", user=actor.name, resource_id=str(row["id"]),
                   details={"jid": jid, "status": status, "missing": missing})
        self.fire(f"serverflow/action/{row['id']}/executed",
                  {"action_id": str(row["id"]), "jid": jid, "status": status, "by": actor.name})
        return {"action_id": str(row["id"]), "status": status, "jid": jid, **result}
