"""What pins an action: a hash over everything that decides what it does."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def action_hash(tenant_id: str, function: str, targets: list[str], args: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of (tenant, function, sorted targets, args)."""
    body = json.dumps({"tenant": str(tenant_id), "function": function, "targets": sorted(targets),
                       "args": args}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()
