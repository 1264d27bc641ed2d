"""Errors as values: a code from the specification (§10.2) and a sentence a person can act on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR_CODES: dict[str, str] = {
    "AUTH001": "Invalid credentials",
    "AUTH002": "Token expired",
    "AUTH003": "Insufficient permissions",
    "AUTH004": "MFA required",
    "SRV001": "Server not found",
    "SRV002": "Server offline",
    "SRV003": "Server connection timeout",
    "SRV004": "Agent version mismatch",
    "EXEC001": "Execution failed",
    "EXEC002": "Execution timeout",
    "EXEC003": "Module not allowed",
    "EXEC004": "Approval required",
    "EXEC005": "Target validation failed",
    "AI001": "Query parsing failed",
    "AI002": "LLM service unavailable",
    "AI003": "Context limit exceeded",
    "AI004": "Unsafe operation detected",
    "RATE001": "Rate limit exceeded",
    "RATE002": "Quota exceeded",
    "INT001": "Integration not configured",
    "INT002": "Integration authentication failed",
    "INT003": "Integration rate limited",
    # Not in the specification's table: infrastructure the product itself depends on.
    "SYS001": "Database unavailable",
    "SYS002": "Redis unavailable",
    "SYS003": "Configuration invalid",
}


@dataclass(frozen=True)
class ErrorInfo:
    """A reportable error: spec code, human message and optional details."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.code not in ERROR_CODES:
            raise ValueError(f"unknown error code {self.code!r}")

    @property
    def title(self) -> str:
        return ERROR_CODES[self.code]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return f"{self.code} {self.title}: {self.message}"


class ServerFlowError(Exception):
    """Raised where an error has to cross a call boundary; carries an ErrorInfo."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        self.info = ErrorInfo(code, message, details)
        super().__init__(str(self.info))

    @property
    def code(self) -> str:
        return self.info.code

    def as_dict(self) -> dict[str, Any]:
        return self.info.as_dict()
