"""A log of any number of runs keeps the first and last ones in full and only counts the others."""

from __future__ import annotations

import pytest

import nandoctor.log.parser as parser_module
from nandoctor.log.parser import parse_log
from tests.log.conftest import FIXTURES
from tests.log.test_chunking import canon, parse_bytes, parse_in_ranges

RUNS = b"".join((FIXTURES / name).read_bytes() for name in ("glog_year.log", "debug_info.log", "nvcaffe.log"))


@pytest.fixture
def small_window(monkeypatch):
    monkeypatch.setattr(parser_module, "KEEP_FIRST_RUNS", 3)
    monkeypatch.setattr(parser_module, "KEEP_LAST_RUNS", 4)


def _uncapped(data: bytes):
    old = parser_module.KEEP_FIRST_RUNS, parser_module.KEEP_LAST_RUNS
    parser_module.KEEP_FIRST_RUNS = parser_module.KEEP_LAST_RUNS = 10**9
    try:
        return parse_bytes(data)
    finally:
        parser_module.KEEP_FIRST_RUNS, parser_module.KEEP_LAST_RUNS = old


@pytest.mark.parametrize("copies", [1, 3, 9])
def test_the_kept_runs_are_exactly_the_runs_an_uncapped_parse_gives(small_window, copies):
    data = RUNS * copies
    full = _uncapped(data)
    capped = parse_bytes(data)
    n = len(full.segments)
    assert capped.stats["runs"] == n
    tail = len(capped.segments) - 3
    keep = list(range(n)) if n <= 7 else [*range(3), *range(n - tail, n)]
    assert n <= 7 or 4 <= tail < 8  # the last runs are kept in batches: between one and two windows
    assert [s.index for s in capped.segments] == keep
    assert capped.stats["runs_dropped"] == n - len(capped.segments)
    assert canon(capped.segments) == canon([full.segments[i] for i in keep])
    # the kept runs' displays are again one unbroken range of the columns
    assert canon(capped.train) == canon([p for s in capped.segments for p in s.train])


def test_the_window_does_not_depend_on_where_the_log_is_cut(small_window, tmp_path):
    path = tmp_path / "runs.log"
    path.write_bytes(RUNS * 9)
    whole = parse_log(path)
    for block in (4096, 50_000):
        cut = parse_in_ranges(path, block)
        assert canon(cut.segments) == canon(whole.segments)
        assert cut.stats["runs_dropped"] == whole.stats["runs_dropped"] > 0


def test_a_restart_on_every_line_costs_a_bounded_trace(small_window):
    """Bare ``Iteration 10, loss = nan`` lines: each one is a new run (the counter did not advance)."""
    trace = parse_bytes(b"Iteration 10, loss = nan\n" * 5000)
    assert trace.stats["runs"] == 5000
    assert len(trace.segments) <= 3 + 2 * 4
    store = trace.segments[0].train.store
    assert len(store) == len(trace.segments)  # the dropped runs' displays are gone from the columns too
    assert [p.line for p in trace.train] == [s.start_line for s in trace.segments]
    assert trace.segments[-1].train[0].line == 5000
