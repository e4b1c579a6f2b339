"""The batch handlers see each partition's messages in offset order from its commit (streams/inorder.py)."""
from streams.inorder import HandledOffsets

TP = ("sensor.events", 0)


def test_nothing_is_handled_before_the_partition_is_started():
    h = HandledOffsets()
    assert not h.admit(TP, 0)
    h.start({TP: 1016})
    assert h.admit(TP, 1016) and h.next(TP) == 1017


def test_a_fetch_from_past_the_next_offset_is_refused_until_the_run_before_it_came():
    """What lost minute counts: offsets 1200.. handled first, then 1016..1199 skipped as already counted."""
    h = HandledOffsets()
    h.start({TP: 1016})
    assert not any(h.admit(TP, o) for o in range(1200, 1212))
    assert h.next(TP) == 1016
    assert all(h.admit(TP, o) for o in range(1016, 1212))
    assert h.next(TP) == 1212


def test_replays_are_admitted_and_do_not_move_the_next_offset():
    h = HandledOffsets()
    h.start({TP: 10})
    assert all(h.admit(TP, o) for o in range(10, 20))
    assert all(h.admit(TP, o) for o in range(5, 20))   # read again from an older commit
    assert h.next(TP) == 20


def test_a_dropped_batch_is_next_again_and_a_rebalance_forgets_every_partition():
    h = HandledOffsets()
    h.start({TP: 10})
    assert all(h.admit(TP, o) for o in range(10, 20))
    h.unhandle(TP, 15)
    assert h.next(TP) == 15 and not h.admit(TP, 16)
    h.clear()
    assert h.next(TP) is None and not h.admit(TP, 15)
