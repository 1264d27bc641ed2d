"""The number rules the grounding check rests on."""

from __future__ import annotations

import pytest

from salt_ext.responder import fmt_num, numbers_in
from salt_ext.responder.numbers import OPS, canon, compute_len, to_number


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Load 1.6 per CPU core on 2 CPUs", ["1.6", "2"]),
        ("Disk / is 93% full (4.2 GiB free)", ["93", "4.2"]),
        ("python3 (pid 6056, user root)", ["6056"]),
        ("web-01 and demo-db-02", ["01", "02"]),  # ids do contain numbers; they are sourced from the data
        ("SRV003 cpu0 libssl3 x86_64 ext4", []),  # digits glued to an identifier are not numbers
        ("bash 5.2.15-2+b13", ["5.2", "2"]),
        ("average 0.035 ms.", ["0.035"]),
        ("no numbers here", []),
        ("", []),
    ],
)
def test_numbers_in(text: str, expected: list[str]) -> None:
    assert numbers_in(text) == expected


@pytest.mark.parametrize(
    "value, text",
    [
        (95.0, "95"),
        (95, "95"),
        (0.19384765625, "0.2"),
        (1.25, "1.3"),
        (2.05, "2.1"),
        (74.4804655, "74.5"),
        ("13", "13"),
        ("0.035", "0"),
        (20261127173012000001, "20261127173012000001"),
        (6056, "6056"),
    ],
)
def test_fmt_num_one_decimal_half_up_exact_integers(value: object, text: str) -> None:
    assert fmt_num(value) == text


def test_canon_is_idempotent_over_rendered_numbers() -> None:
    for value in (0.04, 1.55, 99.95, 123456.789, 7):
        rendered = fmt_num(value)
        assert canon(rendered) == rendered == canon(canon(rendered))


@pytest.mark.parametrize(
    "raw, number",
    [
        (3.2, 3.2),
        ("13%", 13.0),
        ("24684096", 24684096.0),
        ("24684096 kB", 24684096.0),
        ({"value": "16092", "unit": "kB"}, 16092.0),
        (True, None),
        (None, None),
        ("-", None),
        ("high", None),
        ([1], None),
    ],
)
def test_to_number_reads_salt_values(raw: object, number: float | None) -> None:
    assert to_number(raw) == number


def test_ops_and_len() -> None:
    assert OPS["pct"](1, 4) == 25.0
    assert OPS["ratio"](3.2, 2) == 1.6
    assert OPS["kib_to_gib"](2097152) == 2.0
    assert OPS["add_one"](1) == 2
    assert compute_len({"a": 1, "b": 2}) == 2
    rows = [{"state": "LISTEN"}, {"state": "ESTABLISHED"}, {"state": "LISTEN"}, "x"]
    assert compute_len(rows, {"field": "state", "equals": "LISTEN"}) == 2
    with pytest.raises(TypeError):
        compute_len(5)
