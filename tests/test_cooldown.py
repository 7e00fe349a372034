"""The alert cooldown, in event time."""

from driftwire.stream.alert.publish import Cooldown

KEY = ("m", "v1", "amount", "adwin", "critical")


def test_one_alert_per_cooldown_and_a_count_of_what_it_suppressed():
    c = Cooldown()
    assert c.allow(KEY, 1000.0, 300) == 0
    assert c.allow(KEY, 1100.0, 300) is None
    assert c.allow(KEY, 1299.0, 300) is None
    assert c.allow(KEY, 1300.0, 300) == 2
    assert c.allow(("m", "v1", "other", "adwin", "critical"), 1301.0, 300) == 0


def test_event_times_from_another_partition_may_run_behind():
    c = Cooldown()
    assert c.allow(KEY, 1000.0, 300) == 0
    assert c.allow(KEY, 990.0, 300) is None, "10 s earlier is within the cooldown too"
    assert c.allow(KEY, 600.0, 300) == 1, "far enough back is another episode"
    assert c.allow(KEY, 1200.0, 300) is None, "the cooldown runs from the latest alert"


def test_zero_cooldown_never_suppresses():
    c = Cooldown()
    assert [c.allow(KEY, t, 0) for t in (5.0, 5.0, 1.0, 9.0)] == [0, 0, 0, 0]


def test_checkpointed_entries_are_those_of_the_partition_and_restore_keeps_the_latest():
    from types import SimpleNamespace

    c = Cooldown()
    c.allow(KEY, 1000.0, 300)
    c.allow(("other", "v1", "x", "adwin", "critical"), 1000.0, 300)
    state = c.get_state([SimpleNamespace(model="m", model_version="v1", signal="amount")])
    assert state == [[list(KEY), 1000.0]]
    d = Cooldown()
    d.allow(KEY, 1500.0, 300)
    d.restore(state)
    assert d.last[KEY] == 1500.0
