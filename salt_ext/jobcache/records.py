"""Spool records: one COPY text row per job-cache write, built in the caller's thread.

Every record has the columns of the staging table (``STAGE_COLUMNS``); ``kind``
says which job-cache table it lands in:

====  ==========================  ==============================================
kind  written by                  lands in
====  ==========================  ==============================================
r     ``returner``                ``salt_job_returns`` (first return wins)
l     ``save_load`` (publish)     ``salt_jobs.load`` (authoritative, last wins)
L     ``save_load`` (a return)    ``salt_jobs.load`` only where no load is known
m     ``save_minions``            ``salt_jobs.minions`` (union)
t     ``update_endtime``          ``salt_jobs.endtime`` (last wins)
e     ``event_return``            ``salt_bus_events`` (by event id)
====  ==========================  ==============================================
"""

from __future__ import annotations

import calendar
import fnmatch
import functools
import os
import re
import time
import uuid
from typing import Any, Iterable, Mapping

from salt_ext.jobcache.encoding import (
    NULL, bounded_json, copy_json, copy_line, copy_text, to_json, truncation_marker,
)

STAGE_COLUMNS = ("kind", "jid", "name", "fun", "success", "retcode", "truncated", "at", "t0",
                 "doc", "extra")
KINDS = frozenset("rlLmte")
MAX_ID = 255
MAX_TAG = 1024
_INT32 = (-(2**31), 2**31 - 1)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JID_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{6})")
# Keys local_cache keeps per minion (``get_jid``), in Salt's order.
RETURN_KEYS = ("return", "retcode", "success")


class BadRecord(ValueError):
    """The caller's data cannot be stored (malformed jid or minion id); the message says why."""


def _identifier(value: Any, what: str) -> str:
    if isinstance(value, bool) or value is None:
        raise BadRecord(f"{what} {value!r} is not a string")
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise BadRecord(f"{what} of type {type(value).__name__} is not a string")
    if not value or len(value) > MAX_ID or _CONTROL.search(value):
        raise BadRecord(f"{what} {value[:80]!r} is empty, longer than {MAX_ID} characters "
                        "or holds control characters")
    return value


def normalize_jid(jid: Any) -> str:
    """A jid as stored: Salt's jids are strings (the CLI may hand us an int)."""
    return _identifier(jid, "jid")


def normalize_minion(minion_id: Any) -> str:
    return _identifier(minion_id, "minion id")


@functools.lru_cache(maxsize=4096)
def jid_epoch(jid: str) -> float | None:
    """Seconds since the epoch encoded in a Salt jid (UTC), None for a custom jid."""
    match = _JID_TIME.match(jid)
    if not match:
        return None
    year, month, day, hour, minute, second, micro = (int(g) for g in match.groups())
    try:
        return calendar.timegm((year, month, day, hour, minute, second)) + micro / 1e6 \
            if 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 61 \
            else None
    except (OverflowError, ValueError):
        return None


def _epoch(value: float) -> str:
    return f"{value:.6f}"


def _short(value: Any, limit: int = MAX_ID) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return copy_text(text[:limit])


def _int32(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and _INT32[0] <= value <= _INT32[1]:
        return str(value)
    return NULL


def _bool(value: Any) -> str:
    return NULL if not isinstance(value, bool) else ("t" if value else "f")


def _row(kind: str, jid: str, *, name: str | None = None, fun: str | None = None,
         success: str = NULL, retcode: str = NULL, truncated: bool = False,
         at: float | None = None, t0: float | None = None, doc: str | None = None,
         extra: str | None = None) -> bytes:
    now = time.time() if at is None else at
    start = t0 if t0 is not None else (jid_epoch(jid) or now)
    return copy_line((kind, copy_text(jid), name if name is not None else NULL,
                      fun if fun is not None else NULL, success, retcode,
                      "t" if truncated else "f", _epoch(now), _epoch(start),
                      copy_json(doc) if doc is not None else NULL,
                      copy_json(extra) if extra is not None else NULL))


def full_return(load: Mapping[str, Any], limit: int) -> tuple[str, bool]:
    """JSON of what ``get_jid`` answers for one minion (local_cache's keys), and truncated?"""
    ret_json, truncated = bounded_json(load.get("return"), limit)
    parts = ['{"return":', ret_json]
    for key in RETURN_KEYS[1:]:
        if key in load:
            parts += [f',"{key}":', to_json(load[key])]
    if "out" in load:
        parts += [',"out":', to_json(load["out"])]
    parts.append("}")
    return "".join(parts), truncated


def return_row(load: Mapping[str, Any], limit: int, at: float | None = None) -> bytes:
    """The record of one minion return (the ``load`` Salt passes to ``returner``)."""
    jid = normalize_jid(load.get("jid"))
    minion = normalize_minion(load.get("id"))
    doc, truncated = full_return(load, limit)
    args = None
    if "fun_args" in load:
        args, cut = bounded_json(load["fun_args"], limit)
        truncated = truncated or cut
    return _row("r", jid, name=copy_text(minion), fun=_short(load.get("fun")),
                success=_bool(load.get("success")), retcode=_int32(load.get("retcode")),
                truncated=truncated, at=at, doc=doc, extra=args)


def _minions_json(minions: Iterable[Any] | None) -> str | None:
    if minions is None:
        return None
    try:
        names = sorted({str(m) for m in minions})
    except TypeError:
        return None
    return to_json(names)


def load_row(jid: Any, load: Mapping[str, Any], minions: Iterable[Any] | None, limit: int,
             *, derived: bool = False) -> bytes:
    """A job's load: ``derived`` when it comes from a return (stored only if none is known)."""
    jid = normalize_jid(jid)
    doc = to_json(load)
    if limit and len(doc) > 4 * limit:  # keep what job listings show, mark the rest
        kept = {k: load[k] for k in ("fun", "tgt", "tgt_type", "user", "jid", "id") if k in load}
        kept["arg"] = [truncation_marker(doc, limit)]
        doc = to_json(kept)
    return _row("L" if derived else "l", jid, fun=_short(load.get("fun")), doc=doc,
                extra=_minions_json(minions))


def minions_row(jid: Any, minions: Iterable[Any], syndic_id: Any = None) -> bytes:
    jid = normalize_jid(jid)
    return _row("m", jid, name=_short(syndic_id), extra=_minions_json(minions) or "[]")


def endtime_row(jid: Any, endtime: Any) -> bytes:
    jid = normalize_jid(jid)
    return _row("t", jid, doc=to_json(str(endtime)))


def event_id(now: float | None = None) -> str:
    """A time-ordered UUID (version 7 layout): unique per event, so a replay never duplicates."""
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis << 80) | (0x7 << 76) | ((rand >> 62) & 0xFFF) << 64 | (0b10 << 62) | (
        rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def event_row(tag: str, data: Any, master_id: str | None, limit: int,
              at: float | None = None) -> bytes:
    now = time.time() if at is None else at
    doc, truncated = bounded_json(data, limit)
    return _row("e", event_id(now), name=copy_text(tag[:MAX_TAG]), fun=_short(master_id),
                truncated=truncated, at=now, t0=now, doc=doc)


class TagFilter:
    """fnmatch allow list, then deny list, on event tags (one compiled regex each)."""

    def __init__(self, allow: Iterable[str] | None, deny: Iterable[str] | None) -> None:
        self._allow = self._compile(allow)
        self._deny = self._compile(deny)

    @staticmethod
    def _compile(patterns: Iterable[str] | None) -> re.Pattern[str] | None:
        items = [str(p) for p in (patterns or []) if str(p)]
        if not items:
            return None
        return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in items))

    def __call__(self, tag: str) -> bool:
        if self._allow is not None and not self._allow.match(tag):
            return False
        return self._deny is None or not self._deny.match(tag)
