"""Result shapes shared by the executor, the responder and persistence."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MinionReturn:
    """What one minion returned for one step."""

    minion_id: str
    ret: Any
    success: bool = True  # Salt's ``success``/retcode == 0
    retcode: int = 0


@dataclass
class StepResult:
    """The outcome of one plan step (one Salt function on a set of minions).

    ``returns`` holds the minions that answered; ``missing`` those that did not
    answer before the timeout (SRV003); ``jid`` is the Salt job id.
    """

    function: str
    args: dict[str, Any]
    targets: list[str]
    jid: str | None = None
    returns: dict[str, MinionReturn] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None  # ErrorInfo.as_dict() when the step failed as a whole
    duration_ms: float | None = None
