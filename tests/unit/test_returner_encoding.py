"""Returner hot path without daemons: JSON safety, truncation, COPY rows, jids, tag filters."""

from __future__ import annotations

import json
import math
import uuid

import pytest

from salt_ext.jobcache import records
from salt_ext.jobcache.encoding import (
    TRUNCATED_KEY, bounded_json, copy_text, parse_copy_line, to_json,
)
from salt_ext.jobcache.queries import Pending
from salt_ext.jobcache.records import BadRecord, TagFilter


def _jsonb_safe(text: str) -> None:
    """What PostgreSQL's jsonb refuses: NaN/Infinity, \\u0000, unpaired surrogates."""
    assert text.isascii()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert "\\u0000" not in text
    decoded = json.loads(text)
    for piece in _strings(decoded):
        assert not any(0xD800 <= ord(ch) <= 0xDFFF for ch in piece), piece


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


class Weird:
    def __repr__(self) -> str:
        return "<Weird>"


@pytest.mark.parametrize("value, expected", [
    (b"plain bytes", "plain bytes"),
    (b"\xff\xfe\x00", {"__bytes_base64__": "//4A"}),
    ({3, 1, 2}, [1, 2, 3]),
    (frozenset({"b", "a"}), ["a", "b"]),
    ({1, "a"}, [1, "a"]),  # unorderable: sorted by repr
    (ValueError("boom"), {"__exception__": "ValueError", "message": "boom"}),
    (float("nan"), "nan"),
    ({"x": float("inf"), "y": -float("inf")}, {"x": "inf", "y": "-inf"}),
    ("a\x00b", "a\ufffdb"),
    ({"k\x00": 1}, {"k\ufffd": 1}),
    ({(1, 2): "tuple key", 3: "int key", None: "none"}, {"(1, 2)": "tuple key", "3": "int key",
                                                        "null": "none"}),
    ("lone \udcff surrogate", "lone ? surrogate"),
    ("emoji \U0001F600 stays", "emoji \U0001F600 stays"),
    (Weird(), "<Weird>"),
])
def test_anything_a_minion_returns_becomes_jsonb_safe(value, expected):
    text = to_json(value)
    _jsonb_safe(text)
    decoded = json.loads(text)
    if isinstance(expected, list) and isinstance(decoded, list) and len(expected) == 2 and \
            not all(isinstance(v, type(expected[0])) for v in expected):
        assert sorted(map(repr, decoded)) == sorted(map(repr, expected))
    else:
        assert decoded == expected


def test_cycles_and_depth_do_not_raise():
    loop: dict = {"a": 1}
    loop["self"] = loop
    text = to_json(loop)
    _jsonb_safe(text)
    assert json.loads(text) == {"a": 1, "self": "<cycle>"}
    deep: list = []
    cur = deep
    for _ in range(5000):
        cur.append([])
        cur = cur[0]
    _jsonb_safe(to_json(deep))


def test_escaped_backslash_u_is_not_mistaken_for_a_surrogate():
    value = {"path": "C:\\ud800\\x", "text": "\\u0000 literally"}
    assert json.loads(to_json(value)) == value


def test_large_values_are_replaced_by_a_marker():
    big = {"lines": ["x" * 100] * 1000}
    text, truncated = bounded_json(big, 10_000)
    assert truncated and len(text) < 10_000
    marker = json.loads(text)
    assert marker[TRUNCATED_KEY] is True and marker["bytes"] > 100_000
    assert marker["limit"] == 10_000 and marker["preview"].startswith('{"lines":["xxx')
    same, cut = bounded_json(big, 0)
    assert not cut and json.loads(same) == big


@pytest.mark.parametrize("text", ["plain", "tab\there", "new\nline", "cr\rx", "back\\slash",
                                  "\\N", "ünïcødé", "nul\x00byte", ""])
def test_copy_text_round_trips(text):
    line = ("\t".join(["r", copy_text(text), copy_text(None)]) + "\n").encode()
    kind, back, null = parse_copy_line(line)
    assert kind == "r" and null is None
    assert back == text.replace("\x00", "\ufffd")


def _return_load(**over):
    load = {"jid": "20240131235959123456", "id": "web-1", "fun": "test.arg",
            "fun_args": ["a", {"k": "v"}], "return": {"ok": True}, "retcode": 0,
            "success": True, "cmd": "_return", "_stamp": "2024-01-31T23:59:59.2"}
    load.update(over)
    return load


def test_return_row_holds_what_local_cache_keeps():
    fields = parse_copy_line(records.return_row(_return_load(out="highstate"), 1 << 20,
                                                at=1706745600.5))
    row = dict(zip(records.STAGE_COLUMNS, fields))
    assert row["kind"] == "r" and row["jid"] == "20240131235959123456"
    assert row["name"] == "web-1" and row["fun"] == "test.arg"
    assert row["success"] == "t" and row["retcode"] == "0" and row["truncated"] == "f"
    assert float(row["at"]) == 1706745600.5
    assert float(row["t0"]) == pytest.approx(1706745599.123456)
    assert json.loads(row["doc"]) == {"return": {"ok": True}, "retcode": 0, "success": True,
                                      "out": "highstate"}
    assert json.loads(row["extra"]) == ["a", {"k": "v"}]


def test_return_row_keeps_only_the_keys_present():
    load = _return_load()
    del load["retcode"], load["success"], load["fun_args"]
    row = dict(zip(records.STAGE_COLUMNS, parse_copy_line(records.return_row(load, 0))))
    assert json.loads(row["doc"]) == {"return": {"ok": True}}
    assert row["success"] is None and row["retcode"] is None and row["extra"] is None


def test_odd_retcodes_do_not_break_the_row():
    for retcode in (2**40, "3", {"a": 1}, True):
        row = dict(zip(records.STAGE_COLUMNS,
                       parse_copy_line(records.return_row(_return_load(retcode=retcode), 0))))
        assert row["retcode"] is None
        assert json.loads(row["doc"])["retcode"] == json.loads(to_json(retcode))


def test_huge_return_is_truncated_not_refused():
    load = _return_load(**{"return": "y" * 3_000_000})
    row = dict(zip(records.STAGE_COLUMNS, parse_copy_line(records.return_row(load, 1 << 20))))
    assert row["truncated"] == "t"
    doc = json.loads(row["doc"])
    assert doc["return"][TRUNCATED_KEY] is True and doc["return"]["bytes"] == 3_000_002
    assert doc["retcode"] == 0 and doc["success"] is True


@pytest.mark.parametrize("jid", [None, "", "x" * 256, "bad\njid", "tab\tjid", ["list"],
                                 {"a": 1}, True, 3.5])
def test_malformed_jids_are_refused(jid):
    with pytest.raises(BadRecord):
        records.return_row(_return_load(jid=jid), 0)


@pytest.mark.parametrize("minion", [None, "", "m" * 300, "evil\nid", 42.0, ["m"]])
def test_malformed_minion_ids_are_refused(minion):
    with pytest.raises(BadRecord):
        records.return_row(_return_load(id=minion), 0)


def test_integer_jids_from_the_cli_are_strings():
    assert records.normalize_jid(20240131235959123456) == "20240131235959123456"
    row = parse_copy_line(records.return_row(_return_load(jid=20240131235959123456), 0))
    assert row[1] == "20240131235959123456"


@pytest.mark.parametrize("jid, epoch", [
    ("20240131235959123456", 1706745599.123456),
    ("20240131235959123456_4242", 1706745599.123456),
    ("custom-job", None),
    ("20241399000000000000", None),  # month 13
])
def test_jid_time(jid, epoch):
    got = records.jid_epoch(jid)
    assert got == (pytest.approx(epoch) if epoch is not None else None)


def test_custom_jid_starts_when_first_seen():
    row = dict(zip(records.STAGE_COLUMNS, parse_copy_line(
        records.return_row(_return_load(jid="my-job"), 0, at=1000.25))))
    assert float(row["t0"]) == 1000.25


def test_load_rows_and_minion_lists():
    load = {"fun": "test.ping", "arg": [], "tgt": "*", "tgt_type": "glob", "user": "root"}
    row = dict(zip(records.STAGE_COLUMNS,
                   parse_copy_line(records.load_row("20240101000000000001", load, ["b", "a", "b"],
                                                    0))))
    assert row["kind"] == "l" and json.loads(row["doc"]) == load
    assert json.loads(row["extra"]) == ["a", "b"]
    derived = parse_copy_line(records.load_row("20240101000000000001", load, None, 0,
                                               derived=True))
    assert derived[0] == "L" and derived[10] is None
    minions = parse_copy_line(records.minions_row("20240101000000000001", {"x"}, "syndic-1"))
    assert minions[0] == "m" and minions[2] == "syndic-1" and json.loads(minions[10]) == ["x"]


def test_oversized_load_keeps_what_listings_show():
    load = {"fun": "state.apply", "tgt": "web*", "tgt_type": "glob", "user": "ops",
            "arg": ["z" * 5000]}
    doc = json.loads(parse_copy_line(records.load_row("20240101000000000002", load, None,
                                                      1000))[9])
    assert doc["fun"] == "state.apply" and doc["tgt"] == "web*" and doc["user"] == "ops"
    assert json.loads(doc["arg"][0])[TRUNCATED_KEY] is True


def test_event_ids_are_unique_time_ordered_uuid7():
    ids = [records.event_id(1_700_000_000 + i / 1000) for i in range(200)]
    assert len(set(ids)) == 200
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)
    row = parse_copy_line(records.event_row("salt/job/1/new", {"b": b"x"}, "m1", 0, at=5.0))
    assert row[0] == "e" and row[2] == "salt/job/1/new" and row[3] == "m1"
    assert json.loads(row[9]) == {"b": "x"} and float(row[7]) == 5.0


def test_tag_filter_allow_then_deny():
    keep = TagFilter(["salt/job/*", "serverflow/*"], ["salt/job/*/ret/*"])
    assert keep("salt/job/123/new") and keep("serverflow/chat/1/done")
    assert not keep("salt/job/123/ret/web-1")
    assert not keep("salt/auth")
    everything = TagFilter(None, None)
    assert everything("anything/at/all")
    defaults = TagFilter(["*"], ["salt/auth", "minion_ping", "salt/job/*/ret/*"])
    assert not defaults("salt/auth") and not defaults("minion_ping")
    assert defaults("salt/presence/present") and defaults("salt/job/1/new")


def test_pending_rows_fold_like_the_database():
    pending = Pending()

    def add(row: bytes) -> None:
        pending.add(parse_copy_line(row))

    jid = "20240101000000000003"
    add(records.load_row(jid, {"fun": "derived"}, ["m1"], 0, derived=True))
    add(records.load_row(jid, {"fun": "first"}, ["m2"], 0))
    add(records.load_row(jid, {"fun": "second"}, None, 0))
    add(records.minions_row(jid, ["m3"]))
    add(records.return_row(_return_load(jid=jid, id="m1", **{"return": 1}), 0))
    add(records.return_row(_return_load(jid=jid, id="m1", **{"return": 2}), 0))
    add(records.endtime_row(jid, "2024, Jan 01 00:00:01.000000"))
    assert pending.load(jid)["fun"] == "second"  # publish loads: the last wins
    assert pending.minions[jid] == {"m1", "m2", "m3"}
    assert pending.returns[jid]["m1"]["return"] == 1  # returns: the first wins
    assert pending.endtimes[jid] == "2024, Jan 01 00:00:01.000000"
    assert math.isclose(len(pending.all_loads()), 1)
