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
    NULL, bounded_json, copy_json, copy_line, copy_text, scalar_json, to_json, truncation_marker,
)

STAGE_COLUMNS = ("kind", "jid", "name", "fun", "success", "retcode", "truncated", "at", "t0",
                 "doc", "extra")
KINDS = frozenset("rlLmte")
MAX_ID = 255
MAX_TAG = 1024
_INT32 = (-(2**31), 2**31 - 1)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_JID_TIME = re.compile(r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{6})")
_MISSING = object()


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


@functools.lru_cache(maxsize=8192)
def _jid_columns(jid: Any) -> tuple[str, str | None]:
    """(escaped jid, its start time) — computed once per jid, not once per return."""
    valid = normalize_jid(jid)
    start = jid_epoch(valid)
    return copy_text(valid), (_epoch(start) if start is not None else None)


def jid_columns(jid: Any) -> tuple[str, str | None]:
    try:
        return _jid_columns(jid)
    except TypeError:  # unhashable
        raise BadRecord(f"jid of type {type(jid).__name__} is not a string") from None


@functools.lru_cache(maxsize=65536)
def _minion_column(minion_id: Any) -> str:
    return copy_text(normalize_minion(minion_id))


@functools.lru_cache(maxsize=4096)
def _short_column(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return copy_text(text[:MAX_ID])


def _short(value: Any) -> str:
    if value is None:
        return NULL
    try:
        return _short_column(value)
    except TypeError:
        return copy_text(str(value)[:MAX_ID])


def _int32(value: Any) -> str:
    if type(value) is int and _INT32[0] <= value <= _INT32[1]:
        return str(value)
    return NULL


def _bool(value: Any) -> str:
    return "t" if value is True else "f" if value is False else NULL


def _row(kind: str, jid: Any, *, name: str = NULL, fun: str = NULL, success: str = NULL,
         retcode: str = NULL, truncated: bool = False, at: float | None = None,
         t0: str | None = None, doc: str | None = None, extra: str | None = None) -> bytes:
    """One staging row; text arguments are already COPY-escaped, JSON ones are not."""
    jid_text, start = jid_columns(jid)
    now = _epoch(time.time() if at is None else at)
    return copy_line((kind, jid_text, name, fun, success, retcode, "t" if truncated else "f",
                      now, t0 or start or now,
                      NULL if doc is None else copy_json(doc),
                      NULL if extra is None else copy_json(extra)))


def full_return(load: Mapping[str, Any], limit: int) -> tuple[str, bool]:
    """JSON of what ``get_jid`` answers for one minion (local_cache's keys), and truncated?"""
    ret_json, truncated = bounded_json(load.get("return"), limit)
    parts = ['{"return":', ret_json]
    if "retcode" in load:
        parts += [',"retcode":', scalar_json(load["retcode"])]
    if "success" in load:
        parts += [',"success":', scalar_json(load["success"])]
    if "out" in load:
        parts += [',"out":', to_json(load["out"])]
    parts.append("}")
    return "".join(parts), truncated


def return_row(load: Mapping[str, Any], limit: int, at: float | None = None) -> bytes:
    """The record of one minion return (the ``load`` Salt passes to ``returner``)."""
    jid = load.get("jid")
    jid_columns(jid)  # a malformed jid is refused before any work is done
    try:
        minion = _minion_column(load.get("id"))
    except TypeError:
        raise BadRecord("minion id is not a string") from None
    doc, truncated = full_return(load, limit)
    args = load.get("fun_args", _MISSING)
    if args is _MISSING:
        args_json = None
    elif args == [] or args == ():
        args_json = "[]"
    else:
        args_json, cut = bounded_json(args, limit)
        truncated = truncated or cut
    return _row("r", jid, name=minion, fun=_short(load.get("fun")),
                success=_bool(load.get("success")), retcode=_int32(load.get("retcode")),
                truncated=truncated, at=at, doc=doc, extra=args_json)


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
    doc = to_json(load)
    if limit and len(doc) > 4 * limit:  # keep what job listings show, mark the rest
        kept = {k: load[k] for k in ("fun", "tgt", "tgt_type", "user", "jid", "id") if k in load}
        kept["arg"] = [truncation_marker(doc, limit)]
        doc = to_json(kept)
    return _row("L" if derived else "l", jid, fun=_short(load.get("fun")), doc=doc,
                extra=_minions_json(minions))


def minions_row(jid: Any, minions: Iterable[Any], syndic_id: Any = None) -> bytes:
    return _row("m", jid, name=_short(syndic_id), extra=_minions_json(minions) or "[]")


def endtime_row(jid: Any, endtime: Any) -> bytes:
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
    stamp = _epoch(now)
    return copy_line(("e", event_id(now), copy_text(tag[:MAX_TAG]), _short(master_id), NULL,
                      NULL, "t" if truncated else "f", stamp, stamp, copy_json(doc), NULL))


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
