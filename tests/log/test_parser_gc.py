"""parse_log and the cyclic GC: off while the trace is built, restored after, and the trace kept out of young collections."""

from __future__ import annotations

import gc

import pytest

from nandoctor.log.parser import parse_log
from tests.log.conftest import FIXTURES


@pytest.mark.parametrize("enabled", [True, False])
def test_the_callers_gc_setting_is_restored(enabled):
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        parse_log(FIXTURES / "glog_year.log")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_the_trace_goes_to_the_oldest_generation_not_the_young_one():
    """Else the first young collection after a big parse walks every object of the trace."""
    trace = parse_log(FIXTURES / "glog_year.log")
    run = trace.segments[0]  # (its displays are columns, not objects the GC tracks)
    assert any(o is run for o in gc.get_objects(generation=2))
    assert not any(o is run for o in gc.get_objects(generation=0))


def test_objects_the_caller_froze_stay_frozen():
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        assert frozen > 0
        trace = parse_log(FIXTURES / "glog_year.log")
        assert gc.get_freeze_count() == frozen  # unfreeze would have released the caller's objects
        assert trace.segments[0].train
    finally:
        gc.unfreeze()
