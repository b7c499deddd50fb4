"""Where a log is cut must not matter: blocks of any size, byte ranges scanned by workers, long lines."""

from __future__ import annotations

import io
from dataclasses import fields, is_dataclass
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nandoctor.log.chunks as C
import nandoctor.log.scan as S
from nandoctor.log.columns import LrSeries, TrainSeries
from nandoctor.log.parser import _Parser, parse_log
from tests.conftest import caffe_runs
from tests.log.conftest import FIXTURES

CORPUS_LOGS = [p for run in caffe_runs() for p in sorted(run.glob("train*.log"))]
FIXTURE_LOGS = [*sorted(FIXTURES.glob("*.log")), FIXTURES / "pasted_issue.md"]
PREFIX = "I20261123 18:43:18.487260 12700 solver.cpp:239] "


def canon(obj):
    """Everything a Trace holds, as plain comparable values (debug ids resolved to names)."""
    if is_dataclass(obj):
        skip = ("_document", "_error", "_parsed")
        return (type(obj).__name__, *((f.name, canon(getattr(obj, f.name))) for f in fields(obj) if f.name not in skip))
    if type(obj).__name__ == "DebugTable":
        names = obj.names
        return (
            list(obj.line), bytes(obj.code), [names[i] for i in obj.layer], [names[i] for i in obj.blob],
            [repr(v) for v in obj.value], list(obj.iteration), bytes(obj.phase), canon(obj.summaries),
        )  # fmt: skip
    if isinstance(obj, float):
        return repr(obj)  # nan == nan
    if isinstance(obj, (list, tuple, TrainSeries, LrSeries)):
        return [canon(x) for x in obj]
    if hasattr(obj, "items"):
        return sorted((k, canon(v)) for k, v in obj.items())
    return obj


def parse_bytes(data: bytes, name: str = "chunked.log"):
    stream = io.BytesIO(data)
    stream.name = name
    return parse_log(stream)


def parse_in_ranges(path, block: int):
    """What ``feed_ranges`` does with a process pool, done in this process (same cuts, same worker function)."""
    data = path.read_bytes()
    parser = _Parser(str(path))
    bare = C.is_bare(data[: C.SAMPLE])
    old, C.BLOCK = C.BLOCK, block
    try:
        for lo, hi in C.cuts(str(path), len(data)):
            parser._merge_packed(C.scan_range_packed(str(path), lo, hi, bare))
    finally:
        C.BLOCK = old
    return parser.finish()


# ---------------------------------------------------------------- blocks of any size
@pytest.mark.parametrize("block", [61, 700, 4096])
@pytest.mark.parametrize("path", FIXTURE_LOGS, ids=lambda p: p.name)
def test_stream_blocks_of_any_size_give_the_same_trace(path, block, monkeypatch):
    whole = canon(parse_log(path))
    monkeypatch.setattr(C, "BLOCK", block)
    assert canon(parse_log(path)) == whole


@pytest.mark.parametrize("block", [97, 5000])
@pytest.mark.parametrize("path", FIXTURE_LOGS, ids=lambda p: p.name)
def test_byte_ranges_give_the_same_trace(path, block):
    assert canon(parse_in_ranges(path, block)) == canon(parse_log(path))


@pytest.mark.parametrize("path", CORPUS_LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_log_in_worker_processes_equals_one_process(path, monkeypatch):
    """Every corpus log, cut into ~10 ranges scanned by 2 worker processes, gives the one-process trace."""
    single = canon(parse_log(path, workers=1))
    monkeypatch.setattr(C, "BLOCK", max(1024, path.stat().st_size // 10))
    assert canon(parse_log(path, workers=2)) == single


def test_repeated_dumps_sent_once_per_worker_give_the_same_trace(tmp_path, monkeypatch):
    """Runs concatenated with the same solver/net dumps: workers send a repeated dump as its digest
    alone, and every run still gets its own solver and nets, equal to the one-process trace."""
    runs = [p for p in CORPUS_LOGS if p.name == "train.log"][:3]
    if not runs:
        pytest.skip("corpus not available")
    unit = b"".join(p.read_bytes() for p in runs)
    path = tmp_path / "repeated.log"
    path.write_bytes(unit * 6)
    single = parse_log(path, workers=1)
    monkeypatch.setattr(C, "BLOCK", max(1024, len(unit) // 3))
    sent = []
    real = S.scan_chunk

    def spy(buf, bare=None, sent_dumps=None):
        scan = real(buf, bare, sent_dumps)
        sent.extend(e[2] is None for e in scan.events if e[0] == S.DUMP)
        return scan

    # in this process: the same worker function with one token, as one worker would see the ranges
    monkeypatch.setattr(C, "scan_chunk", spy)
    parser = _Parser(str(path))
    for lo, hi in C.cuts(str(path), path.stat().st_size):
        parser._merge_packed(C.scan_range_packed(str(path), lo, hi, False, b"token"))
    ranged = parser.finish()
    assert any(sent) and not all(sent)  # later copies went as digests only
    assert canon(ranged) == canon(single)
    assert len(ranged.segments) >= 18 and all(s.solver is not None for s in ranged.segments)
    assert canon(parse_log(path, workers=2)) == canon(single)


# ---------------------------------------------------------------- the cut itself
def test_boundary_moves_to_the_next_line_start(tmp_path):
    f = tmp_path / "a.log"
    f.write_bytes(b"abc\ndef\nghi\n")
    with open(f, "rb") as fh:
        assert [C.boundary(fh, p, 12) for p in range(13)] == [0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12]


def test_cuts_cover_the_file_at_line_starts_and_jump_long_lines_once(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "BLOCK", 100)
    data = b"short line\n" * 30 + b"z" * 5000 + b"\n" + b"tail line\n" * 30
    path = tmp_path / "c.log"
    path.write_bytes(data)
    ranges = list(C.cuts(str(path), len(data)))
    assert ranges[0][0] == 0 and ranges[-1][1] == len(data)
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in pairwise(ranges))
    assert all(data[lo - 1 : lo] == b"\n" for lo, _ in ranges[1:])
    long_start = data.index(b"z")
    assert sum(1 for lo, hi in ranges if lo <= long_start < hi) == 1 and len(ranges) < 15


def test_boundary_never_falls_inside_a_dump(tmp_path):
    head = f"{PREFIX}Solving x\n{PREFIX}Initializing solver from parameters: \n".encode()
    dump = b'base_lr: 0.1\nlr_policy: "fixed"\nweight_decay { }\n'
    tail = f"{PREFIX}Iteration 0, loss = 1\n".encode()
    data = head + dump + tail
    f = tmp_path / "d.log"
    f.write_bytes(data)
    with open(f, "rb") as fh:
        cuts = {C.boundary(fh, p, len(data)) for p in range(len(head) + 1, len(head) + len(dump) + 1)}
    assert cuts == {len(head) + len(dump)}


def test_dump_cut_by_blocks_and_ranges_stays_whole(tmp_path):
    text = (FIXTURES / "glog_year.log").read_bytes()
    path = tmp_path / "g.log"
    path.write_bytes(text)
    whole = parse_log(path)
    for block in range(50, 400, 37):  # cuts fall at every kind of place inside the dumps
        t = parse_in_ranges(path, block)
        assert t.solver.text == whole.solver.text
        assert [n.text for n in t.nets] == [n.text for n in whole.nets]


def test_long_line_inside_a_chunk_is_emptied_and_counted(monkeypatch):
    monkeypatch.setattr(S, "MAX_LINE", 100)
    data = f"{PREFIX}Iteration 1, loss = 2\n{'x' * 150} Iteration 9, loss = 9\n{PREFIX}Iteration 2, loss = 3\n"
    scan = S.scan_chunk(data.encode(), False)
    assert scan.long_lines == 1 and scan.lines == 3
    t = parse_bytes(data.encode())
    assert [(p.iteration, p.line) for p in t.train] == [(1, 1), (2, 3)]
    assert t.stats["long_lines"] == 1


def test_long_line_across_ranges_is_dropped_once(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "MAX_LINE", 300)
    monkeypatch.setattr(C, "BLOCK", 64)  # a range moved far by the long line is read in blocks
    data = f"{PREFIX}Iteration 1, loss = 2\n{'y' * 1000}\n{PREFIX}Iteration 2, loss = 3\n".encode()
    path = tmp_path / "long.log"
    path.write_bytes(data)
    for block in (64, 200, 333, 5000):
        t = parse_in_ranges(path, block)
        assert [(p.iteration, p.line) for p in t.train] == [(1, 1), (2, 3)], block
        assert (t.stats["long_lines"], t.stats["lines"], t.stats["bytes"]) == (1, 3, len(data)), block


def test_bare_or_glog_is_decided_once_per_file(monkeypatch):
    """A mostly prefix-less (pasted) file stays in bare mode in its glog stretch too, whatever the block size."""
    bare_head = "Solving Tiny\nLearning Rate Policy: fixed\n" * 200
    glog_part = "".join(f"{PREFIX}Iteration {i}, loss = 1\n" for i in range(100))
    data = (bare_head + glog_part + "Optimization Done.\n").encode()
    whole = parse_bytes(data)
    assert whole.segments[-1].info["optimization_done_line"] == 501
    monkeypatch.setattr(C, "BLOCK", 256)
    assert canon(parse_bytes(data)) == canon(whole)


# ---------------------------------------------------------------- any text, any cut
PIECES = [
    line + b"\n"
    for name in ("glog_year.log", "debug_info.log", "nvcaffe.log", "crash_stepsize.log")
    for line in (FIXTURES / name).read_bytes().split(b"\n")
] + [b"\r\n", b"> ", b"x" * 90 + b"\n", b"\xff\xfe\n", b"net output #0: a = 1\n", b"n"]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=80), st.integers(16, 600))
def test_chunked_equals_unchunked(tmp_path, pieces, block):
    """Hypothesis: any mix of real lines, cut into blocks (stream) or ranges (workers), parses the same."""
    import nandoctor.log.scan as scan_module

    data = b"".join(pieces)
    old_line = scan_module.MAX_LINE
    scan_module.MAX_LINE = 64  # long lines appear too
    old_block = C.BLOCK
    path = tmp_path / "h.log"
    path.write_bytes(data)
    try:
        whole = canon(parse_bytes(data, str(path)))
        C.BLOCK = block
        assert canon(parse_bytes(data, str(path))) == whole
        assert canon(parse_in_ranges(path, block)) == whole
    finally:
        C.BLOCK = old_block
        scan_module.MAX_LINE = old_line


def test_a_pipe_with_workers_is_read_as_a_stream(tmp_path):
    import os
    import threading

    fifo = tmp_path / "fifo.log"
    os.mkfifo(fifo)
    data = (FIXTURES / "glog_year.log").read_bytes()

    def writer():
        with open(fifo, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=writer)
    thread.start()
    t = parse_log(fifo, workers=2)
    thread.join()
    assert [p.iteration for p in t.train] == [p.iteration for p in parse_log(FIXTURES / "glog_year.log").train]
