from datetime import datetime, timedelta, timezone

from salt_ext.inventory.model import Server
from salt_ext.inventory.tracker import OFFLINE, ONLINE, InventoryTracker

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_transitions_fire_only_on_change():
    tracker = InventoryTracker()
    first = tracker.mark(["a"], ONLINE, T0)
    assert [(t.minion_id, t.old, t.new, t.event) for t in first] == [("a", "unknown", "online", "connected")]
    assert first[0].tag == "serverflow/server/a/connected"
    assert tracker.mark(["a"], ONLINE, T0 + timedelta(seconds=1)) == []
    gone = tracker.mark(["a"], OFFLINE, T0 + timedelta(seconds=2))
    assert gone[0].tag == "serverflow/server/a/disconnected" and gone[0].data()["previous"] == "online"


def test_sweep_marks_silent_expected_minions_offline():
    tracker = InventoryTracker()
    tracker.mark(["a", "b"], ONLINE, T0)
    changes = tracker.sweep(expected=["a", "b", "c"], answered=["a"], now=T0)
    assert sorted((t.minion_id, t.new) for t in changes) == [("b", "offline"), ("c", "offline")]
    assert tracker.status("a") == ONLINE and tracker.status("b") == OFFLINE


def test_pending_survives_failed_writes_and_clears_after_success():
    tracker = InventoryTracker()
    tracker.saw_facts(Server(minion_id="a", os="Debian"))
    tracker.mark(["a"], ONLINE, T0)
    snapshot = tracker.pending()
    assert [s.minion_id for s in snapshot.facts] == ["a"]
    assert snapshot.statuses == [("a", ONLINE, T0)]
    # a write that failed leaves everything pending
    assert tracker.pending().statuses == snapshot.statuses
    # a change after the snapshot stays pending after the snapshot is written
    tracker.mark(["a"], OFFLINE, T0 + timedelta(seconds=5))
    tracker.written(snapshot)
    left = tracker.pending()
    assert left.facts == [] and left.statuses == [("a", OFFLINE, T0)]
    tracker.written(left)
    assert not tracker.pending()


def test_load_seeds_without_dirtying():
    tracker = InventoryTracker()
    tracker.load({"a": "online", "b": "offline"})
    assert tracker.known() == {"a", "b"} and not tracker.pending()
    assert tracker.mark(["b"], ONLINE, T0)[0].old == "offline"


def test_offline_needs_consecutive_misses():
    tracker = InventoryTracker(misses_before_offline=2)
    tracker.mark(["a"], ONLINE, T0)
    assert tracker.sweep(["a"], [], T0) == []          # one slow answer is not an outage
    assert tracker.sweep(["a"], ["a"], T0) == []       # answering resets the count
    assert tracker.sweep(["a"], [], T0) == []
    (gone,) = tracker.sweep(["a"], [], T0)
    assert gone.new == OFFLINE
    # a minion never seen before is offline at its first silent sweep
    (new,) = tracker.sweep(["b"], [], T0)
    assert (new.minion_id, new.new) == ("b", OFFLINE)
