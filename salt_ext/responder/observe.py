"""Sort step results into usable observations, errors and silent minions.

Nothing here raises on a strange return: an error string, a non-zero
retcode, a shape the rules do not expect or a minion that never answered all
become findings, and only well-shaped data reaches the rules.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from salt_ext.errors import ERROR_CODES
from salt_ext.execution.model import StepResult
from salt_ext.responder.evidence import Obs
from salt_ext.responder.model import Evidence, Finding, Severity

# Salt function → the shape name the rules understand.
KIND_BY_FUNCTION: dict[str, str] = {
    "status.loadavg": "loadavg",
    "status.cpustats": "cpustats",
    "status.cpuinfo": "cpuinfo",
    "status.meminfo": "meminfo",
    "status.uptime": "uptime",
    "status.diskusage": "diskusage_bytes",
    "disk.usage": "disk",
    "disk.inodeusage": "inodes",
    "ps.top": "top",
    "service.status": "service_status",
    "service.get_all": "services",
    "pkg.list_pkgs": "pkgs",
    "pkg.list_upgrades": "upgrades",
    "network.ping": "ping",
    "grains.items": "grains",
    "network.interfaces": "interfaces",
    "network.netstat": "netstat",
    "user.list_users": "users",
}

# Parts of ``status.all_status`` that have a rule, with their shape name.
ALL_STATUS_PARTS: dict[str, str] = {
    "loadavg": "loadavg",
    "cpustats": "cpustats",
    "cpuinfo": "cpuinfo",
    "meminfo": "meminfo",
    "uptime": "uptime",
    "diskusage": "diskusage_bytes",
}

# The Python types each shape may have.
SHAPES: dict[str, tuple[type, ...]] = {
    "loadavg": (dict,),
    "cpustats": (dict,),
    "cpuinfo": (dict,),
    "meminfo": (dict,),
    "uptime": (dict, int, float, str),
    "diskusage_bytes": (dict,),
    "disk": (dict,),
    "inodes": (dict,),
    "top": (list,),
    "service_status": (bool, dict),
    "services": (list,),
    "pkgs": (dict,),
    "upgrades": (dict,),
    "ping": (str, bool),
    "grains": (dict,),
    "interfaces": (dict,),
    "netstat": (list,),
    "users": (list,),
}

_ERROR_MARKERS = (
    re.compile(r"^ERROR\b"),
    re.compile(r"is not available\.?"),
    re.compile(r"^The minion function caused an exception"),
    re.compile(r"^Passed invalid arguments"),
    re.compile(r"^Command required for '"),
    re.compile(r"^Function '.*' is not supported"),
)
_GLOB_CHARS = set("*?[],@:")


def error_message(ret: Any) -> tuple[str, tuple[Any, ...]] | None:
    """(the error Salt put in place of a return, where it is) if ``ret`` is one."""
    if isinstance(ret, str):
        text = ret.strip()
        if any(marker.search(text) for marker in _ERROR_MARKERS):
            return text, ()
        return None
    if isinstance(ret, dict):  # a missing function with look-alike docs: {fn: "'fn' is not available."}
        for key, value in ret.items():
            if isinstance(value, str) and value.strip().endswith("is not available."):
                return value.strip(), (key,)
    return None


def first_line(text: str, limit: int = 240) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass
class Observations:
    """Usable returns by minion and shape, in the order they arrived."""

    by_key: dict[tuple[str, str], list[Obs]] = field(default_factory=lambda: defaultdict(list))
    minions: list[str] = field(default_factory=list)  # every minion that returned something usable
    other: list[Obs] = field(default_factory=list)  # functions without a dedicated rule

    def add(self, obs: Obs) -> None:
        if obs.minion_id not in self.minions:
            self.minions.append(obs.minion_id)
        if obs.kind == "other":
            self.other.append(obs)
        else:
            self.by_key[(obs.minion_id, obs.kind)].append(obs)

    def all(self, minion_id: str, kind: str) -> list[Obs]:
        return self.by_key.get((minion_id, kind), [])

    def first(self, minion_id: str, kind: str) -> Obs | None:
        found = self.all(minion_id, kind)
        return found[0] if found else None

    def last(self, minion_id: str, kind: str) -> Obs | None:
        found = self.all(minion_id, kind)
        return found[-1] if found else None

    def of_kind(self, kind: str) -> list[Obs]:
        return [obs for (_, k), items in self.by_key.items() if k == kind for obs in items]


@dataclass
class Intake:
    """What :func:`intake` made of the results."""

    observations: Observations
    findings: list[Finding]
    unanswered: list[str]
    failed: dict[str, list[str]]  # minion → functions that returned an error
    recommendations: list[str]


def _is_minion_id(target: str) -> bool:
    return bool(target) and not (set(target) & _GLOB_CHARS)


def intake(results: list[StepResult]) -> Intake:
    obs = Observations()
    findings: list[Finding] = []
    failed: dict[str, list[str]] = defaultdict(list)
    silent: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    answered_any: set[str] = set()
    recommendations: list[str] = []

    for order, step in enumerate(results or []):
        if not isinstance(step, StepResult):
            findings.append(
                Finding(
                    "warning",
                    "A result could not be read",
                    "One step result is not a StepResult; it was skipped.",
                    topic="health",
                )
            )
            continue
        function = step.function or "?"
        args = step.args if isinstance(step.args, dict) else {}
        returns = step.returns if isinstance(step.returns, dict) else {}

        if step.error:
            findings.append(_step_error(step))

        missing = [m for m in (step.missing or []) if isinstance(m, str)]
        if not step.error:
            missing += [
                t
                for t in (step.targets or [])
                if isinstance(t, str) and _is_minion_id(t) and t not in returns
            ]
        for minion_id in dict.fromkeys(missing):
            if minion_id not in returns:
                silent[minion_id].append((function, step.jid))

        for minion_id, mret in returns.items():
            answered_any.add(minion_id)
            finding, usable = _classify(function, step.jid, minion_id, mret)
            if finding is not None:
                findings.append(finding)
                if finding.code == "EXEC001":
                    failed[minion_id].append(function)
            if usable is None:
                continue
            kind = KIND_BY_FUNCTION.get(function, "other")
            if function == "status.all_status" and isinstance(usable, dict):
                for part, part_kind in ALL_STATUS_PARTS.items():
                    if isinstance(usable.get(part), SHAPES[part_kind]):
                        obs.add(
                            Obs(minion_id, function, step.jid, usable[part], part_kind, (part,), args, order)
                        )
                continue
            if kind != "other" and not isinstance(usable, SHAPES[kind]):
                findings.append(
                    Finding(
                        "warning",
                        f"{function} returned data in an unexpected shape",
                        f"Expected {' or '.join(t.__name__ for t in SHAPES[kind])}, "
                        f"got {type(usable).__name__}; "
                        "this part of the answer is missing.",
                        minion_id=minion_id,
                        topic="health",
                        code="EXEC001",
                    )
                )
                failed[minion_id].append(function)
                continue
            obs.add(Obs(minion_id, function, step.jid, usable, kind, (), args, order))

    for minion_id in sorted(silent):
        calls = silent[minion_id]
        listed = ", ".join(f"{fn} (jid {jid})" if jid else fn for fn, jid in calls)
        severity: Severity = "critical" if minion_id not in answered_any else "warning"
        findings.append(
            Finding(
                severity,
                "Did not answer",
                f"No return for {listed} before the timeout ({ERROR_CODES['SRV003'].lower()}). "
                "The server may be offline, overloaded or its salt-minion stopped.",
                minion_id=minion_id,
                topic="health",
                code="SRV003",
                brief="no answer",
            )
        )
        recommendations.append(
            f"Check that {minion_id} is up and its salt-minion is running and connected to the master "
            f"(`salt {minion_id} test.ping`)."
        )
    # A minion that answered some steps but not others gets a finding above;
    # only the fully silent ones are "unanswered".
    unanswered = [m for m in sorted(silent) if m not in answered_any]
    return Intake(obs, findings, unanswered, dict(failed), recommendations)


def _step_error(step: StepResult) -> Finding:
    error = step.error if isinstance(step.error, dict) else {"message": str(step.error)}
    code = str(error.get("code")) if error.get("code") in ERROR_CODES else "EXEC001"
    message = str(error.get("message") or ERROR_CODES[code])
    return Finding(
        "warning",
        f"{step.function} could not run",
        f"{ERROR_CODES[code]}: {first_line(message)}",
        topic="health",
        code=code,
        brief=f"{step.function} could not run",
    )


def _classify(function: str, jid: str | None, minion_id: str, mret: Any) -> tuple[Finding | None, Any]:
    """(a finding about this return if any, the data to give the rules or None)."""
    ret = getattr(mret, "ret", mret)
    success = getattr(mret, "success", True)
    retcode = getattr(mret, "retcode", 0)
    found = error_message(ret)
    bad_code = not success or (retcode not in (0, None))
    if found is not None or (bad_code and isinstance(ret, str)):
        message, where = found if found is not None else (str(ret).strip(), ())
        full = message.splitlines()[0] if message else ""
        text = first_line(message)
        hint = ""
        if "is not available" in text:
            hint = (
                " The module is not loaded on this minion (missing dependency, or not supported on its OS)."
            )
        elif "caused an exception" in text:
            hint = " The function crashed on the minion; its log has the traceback."
        return (
            Finding(
                "warning",
                f"{function} failed",
                f"{ERROR_CODES['EXEC001']}: {text.rstrip('.')}.{hint}",
                evidence=[Evidence(minion_id, function, jid, where, full)] if full else [],
                minion_id=minion_id,
                topic="health",
                code="EXEC001",
                brief=f"{function} failed",
            ),
            None,
        )
    if bad_code:
        return (
            Finding(
                "warning",
                f"{function} reported an error",
                f"The minion returned data but flagged the call as failed (retcode {retcode}); "
                "the data below may be incomplete.",
                minion_id=minion_id,
                topic="health",
                code="EXEC001",
            ),
            ret,
        )
    return None, ret
