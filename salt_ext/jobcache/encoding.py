"""Turning whatever a minion returned into JSON PostgreSQL accepts, and rows into COPY text.

``to_json`` never raises: bytes, sets, exceptions, NaN, NUL characters, lone
surrogates, non-string keys and cycles all become valid ``jsonb`` input. The
fast path is one ``json.dumps``; the sanitising walk only runs when that fails
or produced something PostgreSQL would refuse.

COPY text format (one row per line, tab-separated, ``\\N`` for NULL) is both
what the spool stores and what the flusher streams to PostgreSQL, so a spooled
record is never serialised twice.
"""

from __future__ import annotations

import base64
import datetime
import json
import math
import re
from typing import Any, Iterable, Sequence

# A return whose JSON is larger than the limit is replaced by this marker.
TRUNCATED_KEY = "__serverflow_truncated__"
_MAX_DEPTH = 64
_PREVIEW_CHARS = 2048
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _default(value: Any) -> Any:
    """``json.dumps`` hook for the common non-JSON types of Salt returns."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _bytes(bytes(value))
    if isinstance(value, (set, frozenset)):
        return _sorted(value)
    if isinstance(value, BaseException):
        return {"__exception__": type(value).__name__, "message": str(value)}
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    return repr(value)


def _bytes(raw: bytes) -> Any:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"__bytes_base64__": base64.b64encode(raw).decode("ascii")}


def _sorted(items: Iterable[Any]) -> list[Any]:
    values = list(items)
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=repr)


def _clean_text(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if _LONE_SURROGATE.search(text):
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _key(key: Any) -> str:
    if isinstance(key, str):
        return _clean_text(key)
    if isinstance(key, (bytes, bytearray)):
        decoded = _bytes(bytes(key))
        return _clean_text(decoded) if isinstance(decoded, str) else repr(bytes(key))
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key) if not isinstance(key, float) or math.isfinite(key) else str(key)
    return _clean_text(repr(key))


def jsonable(value: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
    """A copy of ``value`` made of JSON types only, safe for PostgreSQL ``jsonb``."""
    if depth > _MAX_DEPTH:
        return "<max depth>"
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        if id(value) in seen:
            return "<cycle>"
        inner = seen | {id(value)}
        return {_key(k): jsonable(v, depth + 1, inner) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if id(value) in seen:
            return "<cycle>"
        inner = seen | {id(value)}
        return [jsonable(v, depth + 1, inner) for v in value]
    return jsonable(_default(value), depth + 1, seen)


_ENCODER = json.JSONEncoder(default=_default, allow_nan=False, separators=(",", ":"))
_PLAIN = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def to_json(value: Any) -> str:
    """Compact, ASCII-only JSON of ``value`` that PostgreSQL's ``jsonb`` accepts. Never raises."""
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError):
        text = ""
    if text and "\\u" not in text:
        return text  # the common case: nothing PostgreSQL could refuse
    if text and "\\u0000" not in text and not _has_lone_surrogate(text):
        return text  # non-ASCII, or surrogate pairs of astral characters (emoji): fine
    return _PLAIN.encode(jsonable(value))


def scalar_json(value: Any) -> str:
    """``to_json`` with a shortcut for the booleans, None and ints of retcode/success."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    return to_json(value)


# A high surrogate escape (optionally followed by its low half), or a lone low one.
_ESCAPED_SURROGATE = re.compile(r"(\\+)u(d[89ab][0-9a-f]{2})(\\u(d[c-f][0-9a-f]{2}))?"
                                r"|(\\+)u(d[c-f][0-9a-f]{2})")


def _has_lone_surrogate(text: str) -> bool:
    for match in _ESCAPED_SURROGATE.finditer(text):
        slashes = match.group(1) or match.group(5)
        if len(slashes) % 2 == 0:
            continue  # an escaped backslash followed by literal "ud..."
        if match.group(2) and not match.group(3):
            return True
        if match.group(6):
            return True
    return False


def truncation_marker(text: str, limit: int) -> str:
    """The JSON stored instead of a value whose JSON ``text`` exceeds ``limit`` bytes."""
    preview = text[: min(_PREVIEW_CHARS, max(0, limit // 2))]
    return to_json({TRUNCATED_KEY: True, "bytes": len(text), "limit": limit, "preview": preview})


def bounded_json(value: Any, limit: int) -> tuple[str, bool]:
    """``(json, truncated)``: the value's JSON, or a marker when it is larger than ``limit``."""
    text = to_json(value)
    if limit and len(text) > limit:
        return truncation_marker(text, limit), True
    return text, False


# -- COPY text format ----------------------------------------------------------------
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r",
                               "\x00": "\ufffd"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r\x00]")
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "b": "\b", "f": "\f", "v": "\v"}
_COPY_UNESCAPE = re.compile(r"\\(.)")
NULL = "\\N"


def copy_text(value: str | None) -> str:
    """One COPY text field: ``\\N`` for None, special characters escaped."""
    if value is None:
        return NULL
    return value.translate(_COPY_ESCAPES) if _COPY_SPECIAL.search(value) else value


def copy_json(text: str) -> str:
    """A COPY field holding ASCII JSON (only backslashes need escaping)."""
    return text.replace("\\", "\\\\") if "\\" in text else text


def copy_line(fields: Sequence[str]) -> bytes:
    """Already-escaped fields joined into one COPY row (with its newline)."""
    return ("\t".join(fields) + "\n").encode("utf-8", "replace")


def parse_copy_line(line: bytes) -> list[str | None]:
    """The fields of one COPY text row (the inverse of ``copy_line``)."""
    text = line.decode("utf-8", "replace").rstrip("\n")
    return [None if field == NULL else _COPY_UNESCAPE.sub(
        lambda m: _UNESCAPES.get(m.group(1), m.group(1)), field) for field in text.split("\t")]
